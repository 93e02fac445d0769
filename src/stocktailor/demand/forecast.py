"""The forecast step: fit the demand model, then predict in partitions through an engine.

:func:`forecast_parts` yields the weekly forecast one style group at a time (a caller that
writes each part out forecasts networks whose forecast does not fit in memory);
:func:`forecast` concatenates the parts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from stocktailor.censoring import velocity_forecast
from stocktailor.config import Settings
from stocktailor.contract import FORECAST_SCHEMA, Tables
from stocktailor.demand.baselines import baseline_forecast
from stocktailor.demand.forecaster import DemandForecaster
from stocktailor.demand.history import DemandHistory
from stocktailor.demand.model import DemandModel, HistoryTooShortError
from stocktailor.demand.prices import future_prices
from stocktailor.sizecurves import SizeCurveEstimator

__all__ = ["forecast", "forecast_parts"]

Progress = Callable[[int], None]

PART_SHARES = 200_000
"""Store x SKU series per prediction partition at most (about 3M weekly rows, 250 MB)."""


Forecaster = DemandModel | DemandForecaster


def _predict_part(
    styles: list[str], *, model: Forecaster, until: dt.date | None, price_plan: pl.DataFrame | None
) -> pl.DataFrame:
    return model.predict(until, price_plan=price_plan, styles=styles)


def forecast_parts(
    tables: Tables,
    as_of: dt.date,
    settings: Settings,
    clusters: pl.DataFrame | None = None,
    engine: Any | None = None,
    progress: Progress | None = None,
    *,
    model: Forecaster | None = None,
    size_curves: SizeCurveEstimator | None = None,
    history: DemandHistory | None = None,
) -> Iterator[pl.DataFrame]:
    """Fit (or reuse) the demand model, then yield the forecast one style group at a time.

    The model is fitted before this returns; prediction runs through ``engine.imap``
    (in-process by default), so at most a few partitions are held at once: a caller that
    writes each part out (e.g. :func:`stocktailor.workspace.write_parts`) forecasts networks
    whose weekly forecast does not fit in memory. Parts cover disjoint styles and are each
    sorted by ``store_id, sku, week_start``.

    Parameters
    ----------
    model
        A :class:`DemandForecaster` or :class:`DemandModel` to fit (or, fitted, to reuse);
        default: the one ``settings.demand.model`` names. A fitted forecaster's
        ``validation_`` says what was chosen.
    size_curves
        Fitted size curves to split styles into sizes (a plan fits them once).
    history
        The prepared history of ``tables`` at ``as_of`` when already built.

    Yields
    ------
    pl.DataFrame
        ``store_id, sku, week_start, mean, var, p10, p50, p90`` (units per week).
    """
    from stocktailor.engine import LocalEngine

    cfg = settings.demand
    if cfg.model == "baseline":
        return iter(
            [
                baseline_forecast(
                    tables, as_of, method="auto_ets", horizon_weeks=settings.season.horizon_weeks
                )
            ]
        )
    m: Forecaster
    if model is not None:
        m = model
    elif cfg.model == "lightgbm":
        m = DemandModel.from_config(cfg, horizon_weeks=settings.season.horizon_weeks)
    else:
        m = DemandForecaster.from_config(cfg, horizon_weeks=settings.season.horizon_weeks)
    fitted = hasattr(m, "booster_") or hasattr(m, "choice_")
    if isinstance(m, DemandModel) and fitted and m.as_of_ != as_of:
        m.update(tables, as_of, clusters=clusters, size_curves=size_curves, history=history)
    elif not fitted or m.as_of_ != as_of:
        try:
            m.fit(
                tables,
                as_of,
                clusters=clusters,
                progress=progress,
                size_curves=size_curves,
                history=history,
            )
        except HistoryTooShortError:
            # Nothing to learn from yet: censoring-aware velocity (shapes fallback).
            return iter(
                [
                    velocity_forecast(
                        tables,
                        as_of,
                        clusters=clusters,
                        horizon_weeks=settings.season.horizon_weeks,
                    )
                ]
            )
    plan = future_prices(tables, as_of, settings.season.markdown_calendar)
    styles = sorted(tables.products["style"].unique().to_list())
    by_size = math.ceil(m.shares_.height / PART_SHARES)
    n_parts = max(1, min(max(settings.engine.partitions, by_size), len(styles)))
    parts = [styles[i::n_parts] for i in range(n_parts)]
    eng = engine if engine is not None else LocalEngine()
    return eng.imap(
        _predict_part,
        parts,
        progress=progress,
        model=m.for_prediction(),
        until=None,
        price_plan=plan,
    )


def forecast(
    tables: Tables,
    as_of: dt.date,
    settings: Settings,
    clusters: pl.DataFrame | None = None,
    engine: Any | None = None,
    progress: Progress | None = None,
    *,
    model: Forecaster | None = None,
    size_curves: SizeCurveEstimator | None = None,
    history: DemandHistory | None = None,
) -> pl.DataFrame:
    """Fit (or reuse) the demand model and forecast every store x SKU to season end.

    Prediction is partitioned by style group through the engine (in-process by default),
    see :func:`forecast_parts`.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, week_start, mean, var, p10, p50, p90`` (units per week).
    """
    parts = forecast_parts(
        tables,
        as_of,
        settings,
        clusters,
        engine,
        progress,
        model=model,
        size_curves=size_curves,
        history=history,
    )
    res = [r for r in parts if r.height]
    if not res:
        return pl.DataFrame(schema=FORECAST_SCHEMA)
    return pl.concat(res).sort("store_id", "sku", "week_start")
