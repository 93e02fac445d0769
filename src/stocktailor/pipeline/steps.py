"""The steps of a plan run, each a function of stored inputs that writes one stored output.

=============  ============  =====================================  ================================
step           dated on      reads                                  writes
=============  ============  =====================================  ================================
clusters       refit day     tables                                 labels.parquet, model.pkl
demand         refit day     tables, clusters                       curves.parquet (size curves),
                                                                    forecast/ parts, model.pkl,
                                                                    validation.parquet
forecast       as-of date    tables, demand                         forecast/ parts (sensed), or
                                                                    the demand parts on a refit day
plan           as-of date    tables, forecast, clusters             allocation.parquet,
                                                                    transfers.parquet,
                                                                    recommendations.parquet
=============  ============  =====================================  ================================

The demand step fits the size curves and the demand model on one prepared history and the
plan step plans allocation and transfers in one optimisation, as
:func:`stocktailor.plan.run_plan` does. A step reads the tables as they were known on its
date (:func:`tables_at`): dated observations after it are cut off and weather after it counts
as forecast, so a step's output depends on the data up to its date only, whenever it runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import TABLE_SPECS, Tables
from stocktailor.engine import Engine
from stocktailor.partstore import Part, is_dated, read_parts, scan_parts
from stocktailor.pipeline.store import StoredOutput
from stocktailor.plan import ProgressFactory
from stocktailor.posts import with_post_trends
from stocktailor.workspace import Workspace, write_parts

__all__ = [
    "LANE_PREMIUM_FILE",
    "STEPS",
    "Context",
    "Step",
    "forecast_scan",
    "read_output",
    "release_memos",
    "tables_at",
]

LANE_PREMIUM_FILE = "lane_premiums.parquet"
"""The plan step's record of the lane premiums it planned with (and its lines per lane)."""

logger = logging.getLogger(__name__)


def _read_upto(ws: Workspace, parts: Sequence[Part], last: dt.date) -> pl.DataFrame:
    """The rows of a dated table's parts dated on or before ``last`` (later parts unread)."""
    known = [p for p in parts if p.min_date is None or p.min_date <= last]
    if not known:
        return scan_parts(ws.tables_dir, parts[:1]).head(0).collect()
    if all(p.max_date is not None and p.max_date <= last for p in known):
        frame = read_parts(ws.tables_dir, known)
        assert frame is not None
        return frame
    scan = scan_parts(ws.tables_dir, known)
    return scan.filter(pl.col("date") <= pl.lit(last, dtype=pl.Date)).collect()


def tables_at(ws: Workspace, day: dt.date, weather_days: int = 14) -> Tables:
    """The workspace tables as known at the end of ``day``.

    Dated observations (sales, inventory, trends, economy, ...) are read up to ``day`` (parts
    starting later are not read at all); weather up to ``weather_days`` after it, the rows
    after ``day`` flagged ``is_forecast``; undated tables are read whole. Dated tables come
    sorted by their key (date first), so the order in which days were appended does not
    matter.
    """
    index = ws.parts_index()
    frames: dict[str, pl.DataFrame | None] = {}
    for name in TABLE_SPECS:
        parts = index.get(name, [])
        if not parts or not is_dated(name):
            frames[name] = read_parts(ws.tables_dir, parts)
            continue
        if name == "weather":
            frame = _read_upto(ws, parts, day + dt.timedelta(days=weather_days))
            later = pl.col("date") > pl.lit(day, dtype=pl.Date)
            frame = frame.with_columns(pl.col("is_forecast").fill_null(False) | later)
        else:
            frame = _read_upto(ws, parts, day)
        frames[name] = frame.sort(list(TABLE_SPECS[name].key), maintain_order=True)
    return Tables(**frames)  # type: ignore[arg-type]


@dataclass
class Context:
    """What a step gets: the workspace, settings, engine, dates and the tables on demand.

    Attributes
    ----------
    day
        The run's as-of date.
    refit_day
        The refit day the model steps are dated on (on or before ``day``).
    lane_premiums
        Premiums of lanes planners keep rejecting (``from_id, to_id, premium``, currency per
        shipment), added to those lanes' fixed costs by the plan step.
    """

    ws: Workspace
    settings: Settings
    engine: Engine
    progress: ProgressFactory
    day: dt.date
    refit_day: dt.date
    lane_premiums: pl.DataFrame | None = None
    _tables: tuple[dt.date, Tables] | None = field(default=None, repr=False)

    def tables(self, at: dt.date) -> Tables:
        """The tables as known on ``at`` (one date is held at a time)."""
        if self._tables is None or self._tables[0] != at:
            self.release()  # free the other date's tables before reading
            weather = self.settings.pipeline.weather_forecast_days
            tables = tables_at(self.ws, at, weather)
            # posts become derived trend series (embeddings cached in the workspace)
            cache = self.ws.path / "cache" / "posts"
            tables = with_post_trends(tables, at, self.settings.posts, cache_dir=cache)
            self._tables = (at, tables)
        return self._tables[1]

    def release(self) -> None:
        """Drop the tables held, and the memos built from them."""
        self._tables = None
        release_memos()


def release_memos() -> None:
    """Forget the memos of the demand view and the stock reconstruction.

    They hold the tables they were built from (a date's sales and inventory and sorted
    copies, over 1 GB at 1,000 stores x 20,000 SKU-sizes), so a memo left by one step would
    keep them alive through the next steps.
    """
    from stocktailor.demand import clear_memos

    clear_memos()


Compute = Callable[[Context, Mapping[str, StoredOutput], Path, dict[str, Any]], None]


@dataclass(frozen=True)
class Step:
    """One step: its name, date, inputs, the settings it reads and how it computes.

    Attributes
    ----------
    on_refit_day
        Dated on the refit day (models) rather than the as-of date.
    needs
        Upstream steps whose outputs it reads (their keys are part of its key).
    sections
        Settings sections that change its output (part of its key).
    revision
        Bumped when the step's code changes its output for the same inputs.
    """

    name: str
    on_refit_day: bool
    needs: tuple[str, ...]
    sections: tuple[str, ...]
    revision: int
    compute: Compute
    description: str


def read_output(output: StoredOutput, name: str) -> pl.DataFrame:
    """A Parquet file of a stored output."""
    return pl.read_parquet(output.file(name))


def forecast_scan(output: StoredOutput) -> pl.LazyFrame:
    """The weekly forecast of a ``demand`` or ``forecast`` output, as a scan of its parts."""
    folder = output.path / output.meta.get("forecast_dir", "forecast")
    files = sorted(folder.glob("part-*.parquet"))
    if not files:
        return pl.LazyFrame(schema=_forecast_schema())
    return pl.scan_parquet(files)


def _forecast_schema() -> dict[str, pl.DataType]:
    from stocktailor.contract import FORECAST_SCHEMA

    return dict(FORECAST_SCHEMA)


def _pickle(obj: object, path: Path) -> None:
    with path.open("wb") as handle:
        pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)


# --------------------------------------------------------------------------- refit-day steps


def _clusters(
    ctx: Context, up: Mapping[str, StoredOutput], out: Path, meta: dict[str, Any]
) -> None:
    from stocktailor.plan import fit_clusterer

    del up
    with ctx.progress("clustering stores", 1) as advance:
        model = fit_clusterer(ctx.tables(ctx.refit_day), ctx.refit_day, ctx.settings)
        advance(1)
    labels: pl.DataFrame = model.labels_
    labels.write_parquet(out / "labels.parquet")
    _pickle(model, out / "model.pkl")
    meta["rows"] = labels.height


def _demand(ctx: Context, up: Mapping[str, StoredOutput], out: Path, meta: dict[str, Any]) -> None:
    """One prepared history serves the size curves and the demand model (as in ``run_plan``)."""
    from stocktailor.demand import DemandModel, forecast_parts
    from stocktailor.plan import demand_forecaster, demand_history, fit_size_curves

    cfg = ctx.settings.demand
    clusters = read_output(up["clusters"], "labels.parquet")
    tables, day = ctx.tables(ctx.refit_day), ctx.refit_day
    with ctx.progress("fitting size curves", 1) as advance:
        history = demand_history(tables, day, ctx.settings, clusters=clusters)
        curves = fit_size_curves(tables, day, ctx.settings, clusters=clusters, history=history)
        advance(1)
    curves.curves_.write_parquet(out / "curves.parquet")
    model: Any = None
    if cfg.model == "select":
        model = demand_forecaster(ctx.settings)
    elif cfg.model == "lightgbm":
        model = DemandModel.from_config(cfg, horizon_weeks=ctx.settings.season.horizon_weeks)
    with ctx.progress("forecasting demand (fit, then parts)", None) as advance:
        parts = forecast_parts(
            tables,
            day,
            ctx.settings,
            clusters,
            ctx.engine,
            advance,
            model=model,
            size_curves=curves,
            history=history,
        )
        # The model is fitted and ``parts`` predicts with a slim copy: keep only what is
        # stored, so that the history, the tables and the fitted model's copies of them
        # (several GB at 1,000 stores x 20,000 SKU-sizes) are freed before predicting.
        slim: Any = None
        validation: Any = None
        if model is not None and hasattr(model, "for_prediction"):
            slim = model.for_prediction()
            validation = getattr(model, "validation_", None)
        del history, curves, tables, model
        ctx.release()
        scan = write_parts(parts, out / "forecast")
    meta["rows"] = int(scan.select(pl.len()).collect().item())
    if meta["rows"] == 0:
        # a plan from an empty forecast moves nothing; say so rather than look like "no need"
        logger.warning(
            "demand: no store x SKU pair to forecast as of the refit day %s (no stock count "
            "or sale on or before it); the plan of this run moves nothing",
            day,
        )
    if slim is not None:
        _pickle(slim, out / "model.pkl")
        if isinstance(validation, pl.DataFrame):
            validation.write_parquet(out / "validation.parquet")


# --------------------------------------------------------------------------- as-of-date steps


def _forecast(
    ctx: Context, up: Mapping[str, StoredOutput], out: Path, meta: dict[str, Any]
) -> None:
    from stocktailor.pipeline.sensing import redate_part, sensing_ratios, weekday_profile

    demand = up["demand"]
    if ctx.day == ctx.refit_day:
        # the refit day's forecast is the demand step's: point at it instead of copying it
        meta["forecast_dir"] = str(Path("..", "..", "demand", demand.path.name, "forecast"))
        meta["rows"] = demand.meta.get("rows", 0)
        meta["sensed"] = False
        return
    tables = ctx.tables(ctx.day)
    base = forecast_scan(demand)
    profile = weekday_profile(tables, ctx.refit_day)
    meta["weekday_profile"] = [round(p, 6) for p in profile]
    ratios = sensing_ratios(tables, base, ctx.refit_day, ctx.day, ctx.settings, profile)
    ratios.write_parquet(out / "ratios.parquet")
    sources = sorted((demand.path / "forecast").glob("part-*.parquet"))
    (out / "forecast").mkdir()
    styles = tables.products.select("sku", "style")
    ctx.release()
    with ctx.progress("updating the forecast (demand sensing)", len(sources)) as advance:
        rows = ctx.engine.map(
            redate_part,
            [str(p) for p in sources],
            progress=advance,
            target_dir=str(out / "forecast"),
            fitted_on=ctx.refit_day,
            day=ctx.day,
            ratios=ratios.select("store_id", "style", "ratio"),
            styles=styles,
            quantiles=tuple(ctx.settings.demand.quantiles),
            profile=profile,
        )
    meta["rows"] = int(sum(rows))
    meta["sensed"] = True


def _plan(ctx: Context, up: Mapping[str, StoredOutput], out: Path, meta: dict[str, Any]) -> None:
    """Allocation and transfers: one optimisation of warehouse and store stock (the joint plan)."""
    from stocktailor.plan import plan_summary
    from stocktailor.transfers import build_instance, plan_network

    tables = ctx.tables(ctx.day)
    clusters = read_output(up["clusters"], "labels.parquet")
    forecast = forecast_scan(up["forecast"])
    with ctx.progress("planning allocation and transfers", None) as advance:
        # plan_moves, with the instance built here: the solve and what follows read only
        # products and stores, so the sales and inventory (1.5 GB resident at 1,000 stores x
        # 20,000 SKU-sizes) are dropped before the solve, and the instance after it
        instance = build_instance(tables, ctx.day, forecast, ctx.settings)
        tables = tables.replace(sales=tables.sales.clear(), inventory=tables.inventory.clear())
        ctx.release()
        plan = plan_network(
            tables,
            ctx.day,
            forecast,
            ctx.settings,
            clusters=clusters,
            engine=ctx.engine,
            progress=advance,
            lane_premiums=ctx.lane_premiums,
            instance=instance,
        )
        del instance
        allocation, transfers, objective = plan.allocation, plan.transfers, plan.objective
        del plan
        recommendations, kpis = plan_summary(
            allocation, transfers, objective, tables, ctx.settings, clusters=clusters
        )
    if ctx.lane_premiums is not None and ctx.lane_premiums.height:
        on_lane = pl.concat(
            [allocation.select("from_id", "to_id"), transfers.select("from_id", "to_id")]
        )
        counts = on_lane.group_by("from_id", "to_id").agg(pl.len().cast(pl.Int64).alias("lines"))
        record = ctx.lane_premiums.join(counts, on=["from_id", "to_id"], how="left")
        record.with_columns(pl.col("lines").fill_null(0)).write_parquet(out / LANE_PREMIUM_FILE)
    allocation.write_parquet(out / "allocation.parquet")
    transfers.write_parquet(out / "transfers.parquet")
    recommendations.write_parquet(out / "recommendations.parquet")
    meta["rows"] = allocation.height + transfers.height
    meta["kpis"] = kpis


_PLAN_SECTIONS = ("economics", "constraints", "solver", "season")

STEPS: dict[str, Step] = {
    s.name: s
    for s in (
        Step("clusters", True, (), ("clustering",), 1, _clusters, "store clusters"),
        Step(
            "demand",
            True,
            ("clusters",),
            ("demand", "season"),
            3,
            _demand,
            "size curves, demand model and its forecast",
        ),
        Step(
            "forecast",
            False,
            ("demand",),
            ("pipeline.sensing_prior_units", "pipeline.sensing_bounds", "demand.quantiles"),
            1,
            _forecast,
            "forecast as of the day (sensed between refits)",
        ),
        Step(
            "plan",
            False,
            ("forecast", "clusters"),
            _PLAN_SECTIONS,
            1,
            _plan,
            "allocation and transfers (one optimisation)",
        ),
    )
}
"""Every step, upstream first."""
