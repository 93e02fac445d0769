"""What approved transfers really earned (issue 15): read queries of the Results page and API.

The measurements are written by ``stocktailor measure`` (table ``measurement_batches``, one row
per measurement of a run up to a date, and ``measured_lines``, one row per executed line of a
batch); the warehouse's executions by ``stocktailor executions import`` (table
``executions``). This module only reads them. Per run only the **latest** batch counts (the
latest ``until``, then the latest ``created_at``, then the highest id): an older batch of the
same run measured fewer days.

Money is in currency units: ``estimated`` is a line's net benefit at approval scaled to the
units that moved, ``measured`` the realised incremental margin less the transfer cost, with
its interval ``measured_low`` .. ``measured_high`` at the batch's ``level`` (coverage, e.g.
0.9).

The interval of a sum is not the sum of the lines' intervals. A run's total takes the
batch's own interval when its ``summary`` carries one (see :data:`SUMMARY_TOTAL_KEYS`);
otherwise, and for any other sum (a week, several runs), the interval shown is the sum of the
parts' bounds: conservative (wider than the interval of the sum unless the parts' errors are
perfectly correlated) and approximate. ``interval`` says which: ``"batch"``, ``"lines"``
(sum of line intervals) or ``"runs"`` (sum of the runs' intervals).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl
from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from stocktailor.workflow.common import NotFound
from stocktailor.workflow.models import (
    Execution,
    MeasuredLine,
    MeasurementBatch,
    PlanRun,
    Recommendation,
    RunStore,
)

__all__ = [
    "EXECUTION_ORDER",
    "HOLDBACK_KEYS",
    "INTERVAL_BASES",
    "RESULTS_CSV_COLUMNS",
    "SUMMARY_TOTAL_KEYS",
    "latest_batch_ids",
    "latest_batches",
    "results_csv",
    "run_results",
    "week_start",
]

APPROVED = ("approved", "edited")
"""Recommendation statuses that send a line to the warehouse."""

EXECUTION_ORDER = ("received", "partial", "in_transit", "failed", "not_reported")
"""Execution statuses in the order shown; ``not_reported``: an approved line without a row in
``executions`` (the warehouse has not reported it yet)."""

INTERVAL_BASES = ("batch", "lines", "runs")
"""Where a total's interval comes from: the batch's own interval of the run total (from its
``summary``), the sum of the lines' interval bounds, or the sum of the runs' intervals (both
sums conservative and approximate)."""

SUMMARY_TOTAL_KEYS: dict[str, tuple[str, ...]] = {
    "measured": ("measured", "total"),
    "low": ("measured_low", "low"),
    "high": ("measured_high", "high"),
}
"""Keys read from a batch's ``summary`` (top level, or under ``"totals"``) for the run-level
measured total and its interval, first key found wins. Both bounds are needed to use them;
without a total the sum of the lines' values is the point estimate."""

HOLDBACK_KEYS = (
    "executed",
    "held_back",
    "effect_per_line",
    "total",
    "low",
    "high",
    "sd",
    "ledger_total",
)
"""Keys read from ``summary["holdback"]`` (all optional): executed and held-back line counts,
the effect per line, the total with its interval and standard deviation, and the ledger's
total for the same lines (currency units)."""

RESULTS_CSV_COLUMNS = (
    "table",
    "run_id",
    "until",
    "method",
    "level",
    "week_start",
    "category",
    "to_cluster",
    "cluster_name",
    "status",
    "lines",
    "held_back",
    "units",
    "shipped_units",
    "received_units",
    "estimated",
    "measured",
    "measured_low",
    "measured_high",
    "ratio",
    "interval",
    "currency",
)
"""Columns of :func:`results_csv`: one file, the page's tables told apart by ``table``
(``total``, ``run``, ``week``, ``calibration``, ``execution``, ``holdback``); a column that
does not apply to a table is empty."""


def week_start(day: dt.date) -> dt.date:
    """The Monday starting ``day``'s week (ISO weeks)."""
    return day - dt.timedelta(days=day.weekday())


def _number(value: Any) -> float | None:
    """A finite number from JSON (bools and text are not numbers), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _first(summary: Mapping[str, Any], keys: Iterable[str]) -> float | None:
    for key in keys:
        number = _number(summary.get(key))
        if number is not None:
            return number
    return None


def summary_interval(summary: Any) -> tuple[float | None, float, float] | None:
    """The run-level ``(measured total or None, low, high)`` a batch summary carries, if any.

    Parameters
    ----------
    summary
        The batch's ``summary`` JSON (any key may be missing; see :data:`SUMMARY_TOTAL_KEYS`).

    Returns
    -------
    tuple or None
        Currency units; ``None`` unless both bounds are finite numbers with low <= high.
    """
    if not isinstance(summary, Mapping):
        return None
    for where in (summary, summary.get("totals")):
        if not isinstance(where, Mapping):
            continue
        low = _first(where, SUMMARY_TOTAL_KEYS["low"])
        high = _first(where, SUMMARY_TOTAL_KEYS["high"])
        if low is not None and high is not None and low <= high:
            return _first(where, SUMMARY_TOTAL_KEYS["measured"]), low, high
    return None


def holdback_of(summary: Any) -> dict[str, Any] | None:
    """The holdback comparison of a batch summary (``summary["holdback"]``), if any.

    Returns
    -------
    dict or None
        :data:`HOLDBACK_KEYS`, each a number or None (``executed``, ``held_back`` line counts
        as int; the rest in currency units); None without a ``holdback`` mapping.
    """
    hb = summary.get("holdback") if isinstance(summary, Mapping) else None
    if not isinstance(hb, Mapping):
        return None
    out: dict[str, Any] = {k: _number(hb.get(k)) for k in HOLDBACK_KEYS}
    for k in ("executed", "held_back"):
        out[k] = None if out[k] is None else round(out[k])
    return out


def _ratio(measured: float | None, estimated: float | None) -> float | None:
    """measured / estimated, None unless the estimate is above 0."""
    if measured is None or estimated is None or estimated <= 0:
        return None
    return measured / estimated


def latest_batch_ids(
    conn: Connection, run_id: int | None = None, *, method: str | None = None
) -> list[int]:
    """Id of each run's newest measurement batch (of run ``run_id`` only, of ``method`` only,
    when given), in run id order. Newest: the latest ``until``, then ``created_at``, then id;
    only these columns are read (a batch's summary can be large)."""
    b = MeasurementBatch
    query = select(b.id, b.run_id, b.until, b.created_at)
    if run_id is not None:
        query = query.where(b.run_id == run_id)
    if method is not None:
        query = query.where(b.method == method)
    newest: dict[int, tuple[dt.date, dt.datetime, int]] = {}
    for row in conn.execute(query).all():
        key = (row.until, row.created_at, row.id)
        if row.run_id not in newest or key > newest[row.run_id]:
            newest[row.run_id] = key
    return [newest[r][2] for r in sorted(newest)]


def _latest(conn: Connection, run_id: int | None) -> list[dict[str, Any]]:
    ids = latest_batch_ids(conn, run_id)
    if not ids:
        return []
    query = select(MeasurementBatch.__table__).where(MeasurementBatch.id.in_(ids))
    out = []
    for row in conn.execute(query).all():
        b = dict(row._mapping)
        b["summary"] = dict(b["summary"]) if isinstance(b["summary"], Mapping) else {}
        out.append(b)
    return sorted(out, key=lambda b: b["run_id"])


def latest_batches(engine: Engine, run_id: int | None = None) -> list[dict[str, Any]]:
    """The newest measurement batch of each run (of run ``run_id`` only when given).

    Returns
    -------
    list of dict
        In run id order: ``id, run_id, until, method, level, created_at, created_by,
        summary``. Newest: the latest ``until``, then ``created_at``, then id.
    """
    with engine.connect() as conn:
        return _latest(conn, run_id)


_SUMS = (
    func.count(),
    func.coalesce(func.sum(MeasuredLine.units), 0),
    func.coalesce(func.sum(MeasuredLine.estimated), 0.0),
    func.coalesce(func.sum(MeasuredLine.measured), 0.0),
    func.coalesce(func.sum(MeasuredLine.measured_low), 0.0),
    func.coalesce(func.sum(MeasuredLine.measured_high), 0.0),
)


def _sums(row: Sequence[Any]) -> dict[str, Any]:
    """The line sums of a grouped row: its last six columns (see ``_SUMS``)."""
    n, units, est, meas, low, high = row[-6:]
    return {
        "lines": int(n),
        "units": int(units),
        "estimated": float(est),
        "measured": float(meas),
        "measured_low": float(low),
        "measured_high": float(high),
        "ratio": _ratio(float(meas), float(est)),
    }


def _grouped(conn: Connection, batch_ids: list[int], *keys: Any) -> list[Sequence[Any]]:
    """Line sums of the batches' measured lines grouped by ``keys`` (recommendation columns)."""
    query = (
        select(*keys, *_SUMS)
        .select_from(MeasuredLine)
        .join(Recommendation, Recommendation.id == MeasuredLine.recommendation_id)
        .where(MeasuredLine.batch_id.in_(batch_ids))
    )
    if keys:
        query = query.group_by(*keys)
    return list(conn.execute(query).all())


def _run_rows(
    conn: Connection, batches: list[dict[str, Any]], as_of: dict[int, dt.date]
) -> list[dict[str, Any]]:
    """One row per run's latest batch: its line sums and the interval of its total."""
    ids = [b["id"] for b in batches]
    sums = {row[0]: _sums(row) for row in _grouped(conn, ids, MeasuredLine.batch_id)} if ids else {}
    empty = _sums((0, 0, 0.0, 0.0, 0.0, 0.0))
    rows = []
    for b in batches:
        row = {
            "run_id": b["run_id"],
            "as_of": as_of.get(b["run_id"]),
            "batch_id": b["id"],
            "until": b["until"],
            "method": b["method"],
            "level": b["level"],
            "created_at": b["created_at"],
            "created_by": b["created_by"],
            **sums.get(b["id"], empty),
            "interval": "lines",
        }
        found = summary_interval(b["summary"])
        if found is not None:
            total, low, high = found
            if total is not None:
                row["measured"] = total
                row["ratio"] = _ratio(total, row["estimated"])
            row["measured_low"], row["measured_high"] = low, high
            row["interval"] = "batch"
        rows.append(row)
    return rows


def _total(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of the runs' rows; one run keeps its own interval, several sum theirs."""
    if len(runs) == 1:
        return {k: runs[0][k] for k in _TOTAL_KEYS}
    est = sum(r["estimated"] for r in runs)
    meas = sum(r["measured"] for r in runs)
    levels = {r["level"] for r in runs}
    return {
        "lines": sum(r["lines"] for r in runs),
        "units": sum(r["units"] for r in runs),
        "estimated": est,
        "measured": meas,
        "measured_low": sum(r["measured_low"] for r in runs),
        "measured_high": sum(r["measured_high"] for r in runs),
        "ratio": _ratio(meas, est),
        "interval": "runs" if runs else "lines",
        "level": levels.pop() if len(levels) == 1 else None,
    }


_TOTAL_KEYS = (
    "lines",
    "units",
    "estimated",
    "measured",
    "measured_low",
    "measured_high",
    "ratio",
    "interval",
    "level",
)


def _weeks(conn: Connection, batch_ids: list[int]) -> list[dict[str, Any]]:
    """Line sums per week of the lines' planned ship date (Monday start; no date: last)."""
    weeks: dict[dt.date | None, list[float]] = {}
    for row in _grouped(conn, batch_ids, Recommendation.ship_date):
        day = row[0]
        key = None if day is None else week_start(day)
        acc = weeks.setdefault(key, [0.0] * 6)
        for i, v in enumerate(row[1:]):
            acc[i] += float(v)
    out = []
    for key in sorted(weeks, key=lambda d: (d is None, d or dt.date.min)):
        out.append({"week_start": key, **_sums(weeks[key]), "interval": "lines"})
    return out


def _cluster_names(conn: Connection, run_ids: list[int]) -> dict[str, str]:
    """Cluster id -> its name(s) in the runs (several names joined with `` / ``)."""
    names: dict[str, set[str]] = {}
    query = (
        select(RunStore.cluster_id, RunStore.cluster_name)
        .where(RunStore.run_id.in_(run_ids), RunStore.cluster_id.is_not(None))
        .distinct()
    )
    for cid, name in conn.execute(query).all():
        names.setdefault(str(cid), set()).add(str(name or cid))
    return {cid: " / ".join(sorted(ns)) for cid, ns in names.items()}


def _calibration(
    conn: Connection, batch_ids: list[int], run_ids: list[int]
) -> list[dict[str, Any]]:
    """Raw measured / estimated per category x destination cluster, with line counts."""
    names = _cluster_names(conn, run_ids)
    rows = _grouped(conn, batch_ids, Recommendation.category, Recommendation.to_cluster)
    out = []
    for row in rows:
        cluster = row[1]
        name = None if cluster is None else names.get(str(cluster), str(cluster))
        out.append({"category": row[0], "to_cluster": cluster, "cluster_name": name} | _sums(row))
    out.sort(key=lambda r: (r["category"] is None, r["category"] or "", r["to_cluster"] or ""))
    return out


def _executions(conn: Connection, run_id: int | None) -> list[dict[str, Any]]:
    """Line counts and units by execution status (approved lines not reported included)."""
    status = func.coalesce(Execution.status, "not_reported")
    where: list[ColumnElement[bool]] = [
        or_(Recommendation.status.in_(APPROVED), Execution.recommendation_id.is_not(None))
    ]
    if run_id is not None:
        where.append(Recommendation.run_id == run_id)
    query = (
        select(
            status,
            func.count(),
            func.coalesce(func.sum(Recommendation.units), 0),
            func.coalesce(func.sum(Execution.shipped_units), 0),
            func.coalesce(func.sum(Execution.received_units), 0),
        )
        .select_from(Recommendation)
        .outerjoin(Execution, Execution.recommendation_id == Recommendation.id)
        .where(and_(*where))
        .group_by(status)
    )
    found = {row[0]: row for row in conn.execute(query).all()}
    order = [*EXECUTION_ORDER, *sorted(set(found) - set(EXECUTION_ORDER))]
    return [
        {
            "status": s,
            "lines": int(found[s][1]) if s in found else 0,
            "units": int(found[s][2]) if s in found else 0,
            "shipped_units": int(found[s][3]) if s in found else 0,
            "received_units": int(found[s][4]) if s in found else 0,
        }
        for s in order
    ]


def _holdbacks(batches: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The holdback comparison of each batch whose summary has one, with the ledger's total."""
    measured = {r["run_id"]: r["measured"] for r in runs}
    out = []
    for b in batches:
        hb = holdback_of(b["summary"])
        if hb is None:
            continue
        if hb["ledger_total"] is None:
            hb["ledger_total"] = measured.get(b["run_id"])
        out.append(
            {"run_id": b["run_id"], "until": b["until"], "method": b["method"], "level": b["level"]}
            | hb
        )
    return out


def run_results(engine: Engine, run_id: int | None = None) -> dict[str, Any]:
    """What the executed lines of run ``run_id`` (of every run when None) earned, as measured.

    Parameters
    ----------
    engine
        The workflow database.
    run_id
        A published run, or None for all runs (each run's latest batch, summed).

    Returns
    -------
    dict
        ``run_id`` (None for all runs), ``as_of`` (the run's date, None for all runs),
        ``measured`` (a batch exists), ``batches`` (:func:`latest_batches`, summaries
        included), ``runs`` (one row per batch: ``run_id, as_of, batch_id, until, method,
        level``, the line sums ``lines, units, estimated, measured, measured_low,
        measured_high`` in currency units, ``ratio`` = measured / estimated (None unless the
        estimate is above 0) and ``interval`` (:data:`INTERVAL_BASES`)), ``total`` (the same
        sums over ``runs`` and ``level``, None when the levels differ), ``weeks`` (sums per
        week of the recommendation's ``ship_date``, Monday start, ``week_start`` None for
        lines without one; interval = sum of line intervals), ``calibration`` (sums per
        ``category`` x ``to_cluster`` with ``cluster_name``: the raw ratio, no shrinkage),
        ``executions`` (``status, lines, units`` approved, ``shipped_units,
        received_units`` per :data:`EXECUTION_ORDER`) and ``holdback`` (one row per batch
        whose summary has one: ``run_id, until, method, level`` and :data:`HOLDBACK_KEYS`).

    Raises
    ------
    NotFound
        If ``run_id`` is given and there is no such run.
    """
    with engine.connect() as conn:
        as_of_query = select(PlanRun.id, PlanRun.as_of)
        if run_id is not None:
            as_of_query = as_of_query.where(PlanRun.id == run_id)
        as_of = {int(r.id): r.as_of for r in conn.execute(as_of_query).all()}
        if run_id is not None and run_id not in as_of:
            msg = f"plan_runs: no run {run_id}"
            raise NotFound(msg)
        batches = _latest(conn, run_id)
        ids = [b["id"] for b in batches]
        runs = _run_rows(conn, batches, as_of)
        weeks = _weeks(conn, ids) if ids else []
        calibration = _calibration(conn, ids, [b["run_id"] for b in batches]) if ids else []
        executions = _executions(conn, run_id)
    return {
        "run_id": run_id,
        "as_of": as_of.get(run_id) if run_id is not None else None,
        "measured": bool(batches),
        "batches": batches,
        "runs": runs,
        "total": _total(runs),
        "weeks": weeks,
        "calibration": calibration,
        "executions": executions,
        "holdback": _holdbacks(batches, runs),
    }


def _money(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _csv_row(table: str, row: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {c: row.get(c) for c in RESULTS_CSV_COLUMNS}
    out.update(extra, table=table)
    for c in ("estimated", "measured", "measured_low", "measured_high"):
        out[c] = _money(out[c])
    if out["ratio"] is not None:
        out["ratio"] = round(float(out["ratio"]), 4)
    return out


def results_csv(results: Mapping[str, Any], currency: str) -> bytes:
    """The tables of :func:`run_results` as one CSV file (UTF-8, ISO dates).

    Parameters
    ----------
    results
        What :func:`run_results` returned.
    currency
        ISO 4217 code written in the ``currency`` column (money columns are currency units,
        rounded to cents; ``ratio`` to four decimals).

    Returns
    -------
    bytes
        :data:`RESULTS_CSV_COLUMNS`; rows ``total`` (when measured), ``run``, ``week``,
        ``calibration``, ``execution``, ``holdback`` in that order.
    """
    rows: list[dict[str, Any]] = []
    if results["measured"]:
        rows.append(_csv_row("total", results["total"], run_id=results["run_id"]))
    rows += [_csv_row("run", r) for r in results["runs"]]
    rows += [_csv_row("week", r) for r in results["weeks"]]
    rows += [_csv_row("calibration", r) for r in results["calibration"]]
    rows += [_csv_row("execution", r, run_id=results["run_id"]) for r in results["executions"]]
    rows += [
        _csv_row(
            "holdback",
            {},
            run_id=h["run_id"],
            until=h["until"],
            method=h["method"],
            level=h["level"],
            lines=h["executed"],
            held_back=h["held_back"],
            measured=h["total"],
            measured_low=h["low"],
            measured_high=h["high"],
        )
        for h in results["holdback"]
    ]
    for r in rows:
        r["currency"] = currency
    schema = {
        "table": pl.String,
        "run_id": pl.Int64,
        "until": pl.Date,
        "method": pl.String,
        "level": pl.Float64,
        "week_start": pl.Date,
        "category": pl.String,
        "to_cluster": pl.String,
        "cluster_name": pl.String,
        "status": pl.String,
        "lines": pl.Int64,
        "held_back": pl.Int64,
        "units": pl.Int64,
        "shipped_units": pl.Int64,
        "received_units": pl.Int64,
        "estimated": pl.Float64,
        "measured": pl.Float64,
        "measured_low": pl.Float64,
        "measured_high": pl.Float64,
        "ratio": pl.Float64,
        "interval": pl.String,
        "currency": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).write_csv().encode("utf-8")
