"""A plan run: what should move where, now, for a network as of a date.

:func:`run_plan` chains the core steps (clustering, demand, size curves, allocation,
rebalancing) over validated :class:`~stocktailor.contract.Tables`; :class:`PlanResult` carries
every output frame so the edges (CLI files, the workflow database, the dashboard) can use them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import Tables
from stocktailor.engine import Engine, LocalEngine
from stocktailor.posts import post_signals, rising_signals, with_post_trends

__all__ = [
    "PlanResult",
    "cluster_step",
    "demand_forecaster",
    "demand_history",
    "fit_clusterer",
    "fit_size_curves",
    "forecast_prices",
    "forecast_step",
    "headline_kpis",
    "plan_moves",
    "plan_summary",
    "run_plan",
    "size_curve_step",
    "transfer_kpis",
]


@dataclass(frozen=True)
class PlanResult:
    """Outputs of one plan run.

    Attributes
    ----------
    as_of
        The date the plan is made for (positions at or before it, forecasts after it).
    clusters
        ``store_id, cluster_id, cluster_name`` plus distinguishing features (clusters.csv).
    forecast
        ``store_id, sku, week_start, mean, p10, p50, p90`` (+ ``var``), units per week.
    allocation
        ``sku, from_id, to_id, units, expected_gain, reason`` (allocation.csv) + the columns of
        :data:`stocktailor.transfers.ALLOCATION_COLUMNS` and ``CONTEXT_COLUMNS``.
    transfers
        The transfers.csv columns of the contract (+ ``gain_p10, gain_p90`` band and the
        context columns). Allocation and transfers are one joint plan
        (:func:`stocktailor.transfers.plan_network`).
    kpis
        Headline figures (name -> number), e.g. units moved, lanes, expected net benefit.
    settings
        The settings used, as a JSON-able dict.
    data_fingerprint
        Hash of the workspace tables the plan read.
    recommendations
        The lines grouped by style-colour x lane with the size breakdown and cluster-level
        groups (:func:`stocktailor.transfers.summarise_recommendations`).
    validation
        The forecast's validation on the workspace's own history (one row per group x
        candidate, ``chosen`` true for one per group: see
        :class:`~stocktailor.demand.DemandForecaster`); empty with ``demand.model`` other than
        ``select``.
    candidate_forecasts
        Every candidate's own forecast (name -> forecast frame), only with
        ``demand.keep_candidate_forecasts`` (benchmarks).
    signals
        The post series rising on ``as_of`` (:func:`stocktailor.posts.rising_signals`):
        ``None`` when the network has no posts (or posts are off).
    """

    as_of: dt.date
    clusters: pl.DataFrame
    forecast: pl.DataFrame
    allocation: pl.DataFrame
    transfers: pl.DataFrame
    kpis: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    validation: pl.DataFrame = field(default_factory=pl.DataFrame)
    candidate_forecasts: dict[str, pl.DataFrame] = field(default_factory=dict)
    data_fingerprint: str = ""
    recommendations: pl.DataFrame = field(default_factory=pl.DataFrame)
    signals: pl.DataFrame | None = None


ProgressFactory = Callable[[str, int | None], AbstractContextManager[Callable[[int], None]]]
"""Makes a progress callback for a step: ``with factory("forecast", total) as advance: ...``."""


@contextlib.contextmanager
def _no_progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    del description, total
    yield lambda n: None


def fit_clusterer(tables: Tables, as_of: dt.date, settings: Settings) -> Any:
    """A :class:`~stocktailor.clustering.StoreClusterer` fitted with ``settings.clustering``."""
    from stocktailor.clustering import StoreClusterer

    return StoreClusterer.from_config(settings.clustering).fit(tables, as_of)


def cluster_step(tables: Tables, as_of: dt.date, settings: Settings) -> pl.DataFrame:
    """Store clusters (``store_id, cluster_id, cluster_name`` + features) as of a date."""
    labels: pl.DataFrame = fit_clusterer(tables, as_of, settings).labels_
    return labels


def demand_history(
    tables: Tables, as_of: dt.date, settings: Settings, *, clusters: pl.DataFrame | None = None
) -> Any:
    """The prepared demand history (:class:`~stocktailor.demand.DemandHistory`) at ``as_of``
    with the window and censoring of ``settings.demand``: built once per plan and handed to
    the size curves and the forecast."""
    from stocktailor.demand import prepare_history

    cfg = settings.demand
    days = cfg.history_days
    if cfg.model == "select":
        days = max(days, cfg.seasonal_history_days)
    return prepare_history(
        tables,
        as_of,
        clusters=clusters,
        history_days=days,
        threshold_units=cfg.censor_threshold_units,
        prior_days=cfg.censor_prior_days,
    )


def demand_forecaster(settings: Settings) -> Any | None:
    """An unfitted :class:`~stocktailor.demand.DemandForecaster` with ``settings.demand``
    (None when ``demand.model`` is not ``select``)."""
    from stocktailor.demand import DemandForecaster

    if settings.demand.model != "select":
        return None
    return DemandForecaster.from_config(
        settings.demand, horizon_weeks=settings.season.horizon_weeks
    )


def forecast_prices(tables: Tables, as_of: dt.date, settings: Settings) -> pl.DataFrame | None:
    """The future price factors the forecast assumes (price plan, declared calendar)."""
    from stocktailor.demand import future_prices

    return future_prices(tables, as_of, settings.season.markdown_calendar)


def fit_size_curves(
    tables: Tables,
    as_of: dt.date,
    settings: Settings,
    *,
    clusters: pl.DataFrame | None = None,
    history: Any | None = None,
) -> Any:
    """The plan's one :class:`~stocktailor.sizecurves.SizeCurveEstimator`, used by both the
    forecast (style -> size split) and the allocation.

    Prior weight ``settings.demand.size_prior_strength`` (None: empirical Bayes); the window is
    the demand history's (its stock events are reused when ``history`` still holds them).
    """
    from stocktailor.sizecurves import SizeCurveEstimator

    cfg = settings.demand
    events = history.events if history is not None else None
    days = (as_of - history.start).days + 1 if history is not None else cfg.history_days
    return SizeCurveEstimator(
        prior_strength=cfg.size_prior_strength,
        history_days=days,
        threshold_units=cfg.censor_threshold_units,
        random_state=cfg.random_state,
    ).fit(tables, as_of, clusters=clusters, events=events)


def forecast_step(
    tables: Tables,
    as_of: dt.date,
    settings: Settings,
    *,
    clusters: pl.DataFrame | None = None,
    engine: Engine | None = None,
    progress_factory: ProgressFactory | None = None,
    size_curves: Any | None = None,
    history: Any | None = None,
    model: Any | None = None,
) -> pl.DataFrame:
    """Weekly demand forecast per store x SKU (units per week) to season end.

    ``size_curves`` and ``history`` (from :func:`fit_size_curves`, :func:`demand_history`)
    are reused when given, else built here. ``model`` (e.g. an unfitted
    :class:`~stocktailor.demand.DemandForecaster`) is fitted and used instead of the one
    ``settings.demand.model`` names; its ``validation_`` then says what was chosen.
    """
    from stocktailor.demand import forecast

    factory = progress_factory or _no_progress
    with factory("forecasting demand", None) as advance:
        frame: pl.DataFrame = forecast(
            tables,
            as_of,
            settings,
            clusters=clusters,
            engine=engine,
            progress=advance,
            size_curves=size_curves,
            history=history,
            model=model,
        )
    return frame


def size_curve_step(
    tables: Tables, as_of: dt.date, settings: Settings, *, clusters: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Size curves per store, cluster and network (shares per size group), as
    :func:`fit_size_curves` fits them."""
    curves: pl.DataFrame = fit_size_curves(tables, as_of, settings, clusters=clusters).curves_
    return curves


def run_plan(
    tables: Tables,
    as_of: dt.date,
    settings: Settings,
    *,
    engine: Engine | None = None,
    progress_factory: ProgressFactory | None = None,
    data_fingerprint: str = "",
    clusterer: Any | None = None,
    lane_premiums: pl.DataFrame | None = None,
) -> PlanResult:
    """One plan run: clusters, forecast, size curves, allocation and transfers.

    Parameters
    ----------
    tables
        Validated tables of the network.
    as_of
        Plan date: positions at or before it, demand after it.
    settings
        All settings (built once at the edge).
    engine
        Where partitioned work runs (default in-process).
    progress_factory
        Makes progress callbacks for the slow steps (the CLI passes Rich bars).
    data_fingerprint
        Hash of the input tables, recorded with the run.
    clusterer
        An already fitted store clusterer to reuse (default: fit one with the settings).
    lane_premiums
        ``from_id, to_id, premium`` added to those lanes' fixed costs while planning (see
        :func:`plan_moves`).
    """
    engine = engine or LocalEngine()
    tables, signals = _with_posts(tables, as_of, settings)
    fitted = clusterer if clusterer is not None else fit_clusterer(tables, as_of, settings)
    clusters: pl.DataFrame = fitted.labels_
    # One prepared history and one size-curve fit serve the forecast and the allocation.
    history = demand_history(tables, as_of, settings, clusters=clusters)
    estimator = fit_size_curves(tables, as_of, settings, clusters=clusters, history=history)
    forecaster = demand_forecaster(settings)
    fc = forecast_step(
        tables,
        as_of,
        settings,
        clusters=clusters,
        engine=engine,
        progress_factory=progress_factory,
        size_curves=estimator,
        history=history,
        model=forecaster,
    )
    del history
    validation: pl.DataFrame = getattr(forecaster, "validation_", pl.DataFrame())
    candidates: dict[str, pl.DataFrame] = {}
    if forecaster is not None and settings.demand.keep_candidate_forecasts:
        candidates = forecaster.candidate_forecasts(
            price_plan=forecast_prices(tables, as_of, settings)
        )
    # the forecast is already split over sizes with the plan's one size-curve fit: the joint
    # plan uses it as it is (one demand for the warehouse's and the stores' moves)
    allocation, transfers, recommendations, plan_kpis = plan_moves(
        tables, as_of, fc, settings, clusters=clusters, engine=engine, lane_premiums=lane_premiums
    )
    kpis = headline_kpis(
        allocation,
        transfers,
        plan_kpis,
        forecast_units=float(fc["mean"].sum() or 0.0),
        stores=tables.store_ids.len(),
        clusters=clusters["cluster_id"].n_unique(),
    )
    return PlanResult(
        as_of=as_of,
        clusters=clusters,
        forecast=fc,
        allocation=allocation,
        transfers=transfers,
        kpis=kpis,
        settings=settings.model_dump(mode="json"),
        data_fingerprint=data_fingerprint,
        recommendations=recommendations,
        validation=validation,
        candidate_forecasts=candidates,
        signals=signals,
    )


def _with_posts(
    tables: Tables, as_of: dt.date, settings: Settings
) -> tuple[Tables, pl.DataFrame | None]:
    """The tables with the posts' derived trend rows, and the series rising on ``as_of``
    (one post index serves both)."""
    posts = tables.posts
    if not settings.posts.enabled or posts is None or posts.is_empty():
        return tables, None
    index = post_signals(tables, as_of, settings.posts)
    derived = with_post_trends(tables, as_of, settings.posts, index=index)
    return derived, rising_signals(tables, as_of, settings.posts, index=index)


def transfer_kpis(transfers: pl.DataFrame) -> dict[str, float]:
    """The headline figures of transfer lines: ``transfer_lines``, ``transfer_units``,
    ``transfer_lanes``, ``transfer_cost`` and ``expected_net_benefit`` (currency)."""
    return {
        "transfer_lines": float(transfers.height),
        "transfer_units": float(transfers["units"].sum() or 0),
        "transfer_lanes": float(transfers.select("from_id", "to_id").unique().height),
        "transfer_cost": float(transfers["transfer_cost"].sum() or 0.0),
        "expected_net_benefit": float(transfers["net_benefit"].sum() or 0.0),
    }


def headline_kpis(
    allocation: pl.DataFrame,
    transfers: pl.DataFrame,
    plan_kpis: dict[str, float],
    *,
    forecast_units: float,
    stores: int,
    clusters: int,
) -> dict[str, float]:
    """The plan's headline figures (``PlanResult.kpis``): lines, units, costs, net benefit."""
    return {
        **transfer_kpis(transfers),
        "allocation_units": float(allocation["units"].sum() or 0),
        **plan_kpis,
        "forecast_units_to_season_end": forecast_units,
        "stores": float(stores),
        "clusters": float(clusters),
    }


def plan_moves(
    tables: Tables,
    as_of: dt.date,
    forecast: pl.DataFrame | pl.LazyFrame,
    settings: Settings,
    *,
    clusters: pl.DataFrame,
    engine: Engine,
    progress: Callable[[int], None] | None = None,
    lane_premiums: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, float]]:
    """The joint allocation + transfer plan: its two halves, recommendations and figures.

    ``forecast`` may be a scan of a forecast written in parts (the pipeline's).
    ``lane_premiums`` (``from_id, to_id, premium``, currency per shipment) raises those lanes'
    fixed costs while the plan is chosen (:func:`stocktailor.transfers.plan_network`).
    """
    from stocktailor.transfers import plan_network

    plan = plan_network(
        tables,
        as_of,
        forecast,
        settings,
        clusters=clusters,
        engine=engine,
        progress=progress,
        lane_premiums=lane_premiums,
    )
    allocation, transfers, objective = plan.allocation, plan.transfers, plan.objective
    del plan  # the array instance and solution: only the lines are needed from here on
    recs, kpis = plan_summary(allocation, transfers, objective, tables, settings, clusters=clusters)
    return allocation, transfers, recs, kpis


def plan_summary(
    allocation: pl.DataFrame,
    transfers: pl.DataFrame,
    objective: float,
    tables: Tables,
    settings: Settings,
    *,
    clusters: pl.DataFrame,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """The recommendations and figures of a joint plan's lines (the end of :func:`plan_moves`).

    Reads only the stores and products of ``tables``; ``objective`` is the plan's
    (:attr:`stocktailor.transfers.NetworkPlan.objective`).
    """
    from stocktailor.transfers import summarise_recommendations

    recs = summarise_recommendations(
        allocation,
        transfers,
        clusters=clusters,
        stores=tables.stores,
        size_order=tables.products.select("sku", "size_order")
        if "size_order" in tables.products.columns
        else None,
        currency=settings.economics.currency,
    )
    lines_net = float(allocation["net_benefit"].sum() or 0.0) + float(
        transfers["net_benefit"].sum() or 0.0
    )
    kpis = {
        "allocation_net_benefit": float(allocation["net_benefit"].sum() or 0.0),
        "plan_objective": objective,
        "plan_lines_net_benefit": lines_net,
        "recommendations": float(recs.height),
    }
    return recs, kpis
