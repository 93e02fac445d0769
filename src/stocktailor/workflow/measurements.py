"""``stocktailor measure``: what a run's executed lines earned, stored and written out.

The edge around the pure ledger (:mod:`stocktailor.measure.ledger`): it reads the run's
executed lines (:class:`~stocktailor.workflow.models.Execution` rows with units shipped) and
the workspace's sales and stock, measures every line, every style x lane and the whole run
against the stock-ledger counterfactual, and stores a
:class:`~stocktailor.workflow.models.MeasurementBatch` with its
:class:`~stocktailor.workflow.models.MeasuredLine` rows in one transaction.

What a line counts:

- units: ``received_units``, or ``shipped_units`` while ``in_transit`` (they will arrive);
  units shipped but never received leave the source all the same (the ledger sends them to
  :data:`LOST`);
- days: the execution's ``ship_date`` and ``receive_date``; without a ship date the
  recommendation's, without a receive date (in transit) the ship date plus the planned lead
  time (``arrival_date - ship_date`` of the recommendation);
- ``estimated``: the recommendation's net benefit at approval x units moved / units approved;
  its transfer cost x units shipped / units approved (the measured value is net of it).

The ledger opens on the day after the run's as-of date with the workspace's stock position at
the end of that day (:func:`stocktailor.positions.position_at`, units on hand); its moves are
every executed line of any run (other runs' lines move stock too), its sales the workspace's.
Aggregates are measured again at their own level (an interval of a sum is not a sum of
intervals).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Engine, insert, select

from stocktailor.config import Settings
from stocktailor.measure import build_ledger, ledger_uplift
from stocktailor.measure.ledger import Ledger
from stocktailor.pipeline.steps import tables_at
from stocktailor.positions import position_at
from stocktailor.workflow.common import audit, jsonable, now_utc
from stocktailor.workflow.db import write_engine
from stocktailor.workflow.models import (
    Execution,
    MeasuredLine,
    MeasurementBatch,
    PlanRun,
    Recommendation,
)
from stocktailor.workflow.results import latest_batch_ids
from stocktailor.workspace import Workspace

__all__ = [
    "LOST",
    "RESULT_COLUMNS",
    "MeasureResult",
    "calibration_lines",
    "executed_lines",
    "ledger_rows",
    "measure_executions",
    "measurement_steps",
]

RESULT_COLUMNS = (
    "level",
    "run_id",
    "recommendation_id",
    "sku",
    "style",
    "from_id",
    "to_id",
    "lines",
    "units",
    "cost",
    "estimated",
    "measured",
    "measured_low",
    "measured_high",
)
"""Columns of ``results.csv``: ``level`` is ``line``, ``style_lane`` or ``run``; money in
currency units; ``recommendation_id`` and ``sku`` only on lines, ``style, from_id, to_id``
on lines and style x lane rows."""

_CHUNK = 50
"""Lines measured per progress step."""


@dataclass(frozen=True)
class MeasureResult:
    """A stored measurement: its batch id and the rows of ``results.csv``."""

    batch_id: int
    run_id: int
    start: dt.date
    until: dt.date
    results: pl.DataFrame

    def total(self) -> dict[str, Any]:
        """The run row (lines, units, cost, estimated, measured and its interval)."""
        row: dict[str, Any] = self.results.filter(pl.col("level") == "run").row(0, named=True)
        return row


def _moved(status: str, shipped: int, received: int) -> int:
    return shipped if status == "in_transit" else received


def _days(x: Any) -> tuple[dt.date | None, dt.date | None]:
    """Ship and arrival day of an execution row: as reported, else as planned (an unreported
    arrival keeps the planned lead time from the reported ship day)."""
    ship = x.ship_date or x.planned_ship
    if x.receive_date is not None:
        return ship, x.receive_date
    if ship is None:
        return None, None
    lead = (
        x.planned_arrival - x.planned_ship
        if x.planned_arrival is not None and x.planned_ship is not None
        else dt.timedelta(0)
    )
    return ship, ship + max(lead, dt.timedelta(0))


def executed_lines(engine: Engine, run_id: int | None = None) -> pl.DataFrame:
    """Executed lines (units shipped > 0) of one run, or of every run.

    Returns
    -------
    polars.DataFrame
        ``recommendation_id, run_id, status, sku, style, from_id, to_id, units`` (moved:
        received, or shipped while in transit), ``shipped, lost`` (shipped but never received,
        0 while in transit), ``approved_units, ship_date, arrival_date``, ``cost`` (the
        transfer cost x shipped / approved units: a shipped unit is paid for) and
        ``estimated`` (the net benefit at approval x moved / approved units), currency.
    """
    e, r = Execution, Recommendation
    q = (
        select(
            e.recommendation_id,
            e.run_id,
            e.status,
            e.shipped_units,
            e.received_units,
            e.ship_date,
            e.receive_date,
            r.ship_date.label("planned_ship"),
            r.arrival_date.label("planned_arrival"),
            r.sku,
            r.style,
            r.from_id,
            r.to_id,
            r.units.label("approved_units"),
            r.transfer_cost,
            r.net_benefit,
        )
        .join(r, r.id == e.recommendation_id)
        .where(e.shipped_units > 0)
        .order_by(e.recommendation_id)
    )
    if run_id is not None:
        q = q.where(e.run_id == run_id)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    recs = []
    for x in rows:
        units = _moved(x.status, int(x.shipped_units), int(x.received_units))
        ship, arrival = _days(x)
        if ship is None:
            continue
        shipped = int(x.shipped_units)
        approved = max(int(x.approved_units), 1)
        recs.append(
            {
                "recommendation_id": int(x.recommendation_id),
                "run_id": int(x.run_id),
                "status": x.status,
                "sku": x.sku,
                "style": x.style if x.style is not None else x.sku,
                "from_id": x.from_id,
                "to_id": x.to_id,
                "units": units,
                "shipped": shipped,
                "lost": shipped - units,
                "approved_units": int(x.approved_units),
                "ship_date": ship,
                "arrival_date": arrival,
                "cost": float(x.transfer_cost) * shipped / approved,
                "estimated": float(x.net_benefit) * units / approved,
            }
        )
    schema = {
        "recommendation_id": pl.Int64,
        "run_id": pl.Int64,
        "status": pl.String,
        "sku": pl.String,
        "style": pl.String,
        "from_id": pl.String,
        "to_id": pl.String,
        "units": pl.Int64,
        "shipped": pl.Int64,
        "lost": pl.Int64,
        "approved_units": pl.Int64,
        "ship_date": pl.Date,
        "arrival_date": pl.Date,
        "cost": pl.Float64,
        "estimated": pl.Float64,
    }
    return pl.DataFrame(recs, schema=schema)


LOST = "(lost in transit)"
"""Where the ledger sends units shipped but never received (a location without customers)."""


def ledger_rows(lines: pl.DataFrame) -> pl.DataFrame:
    """The ledger's moves of executed lines: each line's moved units from source to destination
    and, for units shipped but never received, a second row of those units from the source to
    :data:`LOST` (no cost, no estimate: the line carries both), so the source's counterfactual
    keeps every unit that left it."""
    lost = lines.filter(pl.col("lost") > 0).with_columns(
        pl.lit(LOST).alias("to_id"),
        pl.col("lost").alias("units"),
        pl.lit(0.0).alias("cost"),
        pl.lit(0.0).alias("estimated"),
    )
    return pl.concat([lines, lost])


def _last_sales_day(ws: Workspace) -> dt.date:
    days = [p.max_date for p in ws.parts("sales") if p.max_date is not None]
    if not days:
        msg = f"{ws.path}: the workspace has no sales"
        raise ValueError(msg)
    return max(days)


def _run_as_of(engine: Engine, run_id: int) -> dt.date:
    with engine.connect() as conn:
        as_of = conn.execute(select(PlanRun.as_of).where(PlanRun.id == run_id)).scalar_one_or_none()
    if as_of is None:
        msg = f"measure: no run {run_id} in the workflow database"
        raise ValueError(msg)
    return as_of


def _ledger(
    ws: Workspace,
    settings: Settings,
    moves: pl.DataFrame,
    skus: list[str],
    as_of: dt.date,
    until: dt.date,
) -> Ledger:
    """The ledger of ``skus`` from the day after ``as_of`` to ``until``."""
    tables = tables_at(ws, until)
    start = as_of + dt.timedelta(days=1)
    stock = (
        position_at(tables, as_of, settings)
        .filter(pl.col("sku").is_in(skus), pl.col("on_hand") > 0)
        .select("store_id", "sku", pl.col("on_hand").alias("units"))
    )
    sales = tables.sales.filter(pl.col("sku").is_in(skus), pl.col("date") >= start)
    stores = tables.stores.filter(pl.col("kind") == "store")["store_id"].to_list()
    cfg = settings.measure
    return build_ledger(
        moves,
        sales,
        stock,
        tables.products,
        stores,
        start,
        until,
        skus=skus,
        prior_strength=cfg.prior_strength,
        rate_window_days=cfg.rate_window_days,
        rate_prior_cell_days=cfg.rate_prior_cell_days,
    )


def _measure(
    ledger: Ledger,
    lines: pl.DataFrame,
    group: str,
    settings: Settings,
    progress: Callable[[int], None] | None,
    seed: int,
) -> pl.DataFrame:
    """:func:`ledger_uplift` by ``group``, in chunks of groups (one progress step each);
    ``lines`` and ``units`` count the executed lines (not the ledger's rows of lost units)."""
    cfg = settings.measure
    keys = lines[group].unique(maintain_order=True).to_list()
    rows = ledger_rows(lines)
    parts = []
    for i in range(0, max(len(keys), 1), _CHUNK):
        part = rows.filter(pl.col(group).is_in(keys[i : i + _CHUNK]))
        parts.append(
            ledger_uplift(
                ledger,
                part,
                group=group,
                replicates=cfg.replicates,
                level=cfg.interval,
                random_state=cfg.random_state + seed + i,
                propagate=cfg.propagate_moves,
            )
        )
        if progress is not None:
            progress(1)
    counts = lines.group_by(group).agg(
        pl.len().cast(pl.Int64).alias("lines"), pl.col("units").sum().cast(pl.Int64)
    )
    return pl.concat(parts).drop("lines", "units").join(counts, on=group, how="left")


def measurement_steps(lines: pl.DataFrame) -> int:
    """Progress steps of measuring ``lines`` (from :func:`executed_lines`): chunks of lines,
    chunks of style x lane groups, and the run."""
    lanes = lines.select("style", "from_id", "to_id").unique().height

    def chunks(n: int) -> int:
        return -(-max(n, 1) // _CHUNK)

    return chunks(lines.height) + chunks(lanes) + 1


def _results(
    run_id: int,
    lines: pl.DataFrame,
    per_line: pl.DataFrame,
    per_lane: pl.DataFrame,
    per_run: pl.DataFrame,
) -> pl.DataFrame:
    """The rows of ``results.csv`` (:data:`RESULT_COLUMNS`)."""
    money = ("cost", "estimated", "measured", "measured_low", "measured_high")
    line_rows = per_line.join(
        lines.select("recommendation_id", "sku", "style", "from_id", "to_id"),
        on="recommendation_id",
    ).with_columns(pl.lit("line").alias("level"))
    lane_keys = lines.select("lane_key", "style", "from_id", "to_id").unique("lane_key")
    lane_rows = per_lane.join(lane_keys, on="lane_key").with_columns(
        pl.lit("style_lane").alias("level"),
        pl.lit(None, dtype=pl.Int64).alias("recommendation_id"),
        pl.lit(None, dtype=pl.String).alias("sku"),
    )
    run_rows = per_run.with_columns(
        pl.lit("run").alias("level"),
        pl.lit(None, dtype=pl.Int64).alias("recommendation_id"),
        *(pl.lit(None, dtype=pl.String).alias(c) for c in ("sku", "style", "from_id", "to_id")),
    )
    cols = [c for c in RESULT_COLUMNS if c != "run_id"]
    out = pl.concat(
        [
            line_rows.sort("recommendation_id").select(cols),
            lane_rows.sort("style", "from_id", "to_id").select(cols),
            run_rows.select(cols),
        ]
    )
    return out.with_columns(
        pl.lit(run_id, dtype=pl.Int64).alias("run_id"),
        *(pl.col(c).cast(pl.Float64) for c in money),
    ).select(RESULT_COLUMNS)


def measure_executions(
    engine: Engine,
    ws: Workspace,
    run_id: int,
    until: dt.date,
    settings: Settings,
    *,
    user: str | None,
    progress: Callable[[int], None] | None = None,
    executed: pl.DataFrame | None = None,
) -> MeasureResult:
    """Measure a run's executed lines up to ``until`` and store the batch.

    Parameters
    ----------
    engine
        The workflow database (the run and its executions).
    ws
        The workspace with the sales and inventory of the measured days.
    run_id
        The published run.
    until
        Last measured day (at most the workspace's last sales day).
    settings
        ``measure`` (replicates, interval, prior) and ``constraints`` (positions).
    user
        Who measured (``created_by`` and the audit log).
    progress
        Advanced by one per step (:func:`measurement_steps` steps).
    executed
        Every run's executed lines (:func:`executed_lines` of the engine) when the caller
        has read them already; read here when None.

    Returns
    -------
    MeasureResult
        The stored batch's id and the result rows (:data:`RESULT_COLUMNS`).
    """
    as_of = _run_as_of(engine, run_id)
    last = _last_sales_day(ws)
    if until > last:
        msg = f"measure: --until {until} is after the workspace's last sales day {last}"
        raise ValueError(msg)
    start = as_of + dt.timedelta(days=1)
    if until < start:
        msg = f"measure: --until {until} is not after run {run_id}'s as-of date {as_of}"
        raise ValueError(msg)
    every = executed_lines(engine) if executed is None else executed
    lines = every.filter(pl.col("run_id") == run_id)
    if lines.height == 0:
        msg = (
            f"measure: run {run_id} has no executed lines; import the warehouse's file with "
            "`stocktailor executions import FILE`"
        )
        raise ValueError(msg)
    skus = sorted(set(lines["sku"].to_list()))
    moves = ledger_rows(every.filter(pl.col("sku").is_in(skus)))
    ledger = _ledger(ws, settings, moves, skus, as_of, until)
    lines = lines.with_columns(
        pl.concat_str("style", "from_id", "to_id", separator="|").alias("lane_key"),
        pl.lit(run_id, dtype=pl.Int64).alias("run_key"),
    )
    per_line = _measure(ledger, lines, "recommendation_id", settings, progress, 0)
    per_lane = _measure(ledger, lines, "lane_key", settings, progress, 100_000)
    per_run = _measure(ledger, lines, "run_key", settings, progress, 200_000)
    results = _results(run_id, lines, per_line, per_lane, per_run)
    batch_id = _store(engine, run_id, start, until, settings, results, user)
    return MeasureResult(batch_id, run_id, start, until, results)


def _store(
    engine: Engine,
    run_id: int,
    start: dt.date,
    until: dt.date,
    settings: Settings,
    results: pl.DataFrame,
    user: str | None,
) -> int:
    """Insert the batch and its lines in one transaction; returns the batch id."""
    cfg = settings.measure
    run = results.filter(pl.col("level") == "run").row(0, named=True)
    lanes = results.filter(pl.col("level") == "style_lane").drop(
        "level", "run_id", "recommendation_id", "sku"
    )
    summary = {
        "start": start,
        "until": until,
        "replicates": cfg.replicates,
        **{k: run[k] for k in ("lines", "units", "cost", "estimated", "measured")},
        "measured_low": run["measured_low"],
        "measured_high": run["measured_high"],
        "style_lanes": lanes.to_dicts(),
    }
    line_rows = results.filter(pl.col("level") == "line")
    with write_engine(engine).begin() as conn:
        batch_id = conn.execute(
            insert(MeasurementBatch)
            .values(
                run_id=run_id,
                until=until,
                method="ledger",
                level=cfg.interval,
                created_at=now_utc(),
                created_by=user,
                summary=jsonable(summary),
            )
            .returning(MeasurementBatch.id)
        ).scalar_one()
        conn.execute(
            insert(MeasuredLine),
            [
                {
                    "batch_id": batch_id,
                    "recommendation_id": int(r["recommendation_id"]),
                    "units": int(r["units"]),
                    "estimated": float(r["estimated"]),
                    "measured": float(r["measured"]),
                    "measured_low": float(r["measured_low"]),
                    "measured_high": float(r["measured_high"]),
                }
                for r in line_rows.iter_rows(named=True)
            ],
        )
        detail = {k: summary[k] for k in ("until", "lines", "units", "estimated", "measured")}
        audit(conn, user, "measure", f"run:{run_id}", "applied", {**detail, "batch": batch_id})
    return int(batch_id)


def calibration_lines(engine: Engine) -> pl.DataFrame:
    """The measured transfer lines of each run's newest ledger batch
    (:func:`~stocktailor.workflow.results.latest_batch_ids`), with what calibration
    groups and filters them by (:mod:`stocktailor.measure.calibration`).

    Returns
    -------
    polars.DataFrame
        ``recommendation_id, sku, as_of`` (the run's), ``until`` (the batch's last day),
        ``estimated, measured`` (currency), ``category, to_cluster, loss_probability,
        net_p10``.
    """
    b, m, r = MeasurementBatch, MeasuredLine, Recommendation
    with engine.connect() as conn:
        latest = latest_batch_ids(conn, method="ledger")
    q = (
        select(
            m.recommendation_id,
            r.sku,
            PlanRun.as_of,
            b.until,
            m.estimated,
            m.measured,
            r.category,
            r.to_cluster,
            r.loss_probability,
            r.net_p10,
        )
        .join(b, b.id == m.batch_id)
        .join(PlanRun, PlanRun.id == b.run_id)
        .join(r, r.id == m.recommendation_id)
        .where(r.kind == "transfer", m.batch_id.in_(latest))
        .order_by(m.recommendation_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all() if latest else []
    schema = {
        "recommendation_id": pl.Int64,
        "sku": pl.String,
        "as_of": pl.Date,
        "until": pl.Date,
        "estimated": pl.Float64,
        "measured": pl.Float64,
        "category": pl.String,
        "to_cluster": pl.String,
        "loss_probability": pl.Float64,
        "net_p10": pl.Float64,
    }
    return pl.DataFrame([tuple(x) for x in rows], schema=schema, orient="row")
