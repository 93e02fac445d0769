"""Results: what a run's approved transfers really earned, as measured (the Results page's
content, :func:`stocktailor.workflow.results.run_results`)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, HTTPException

from stocktailor.api.deps import EngineDep, Viewer
from stocktailor.api.schemas import ERRORS, IdPath, OutModel, UtcDatetime
from stocktailor.workflow import NotFound
from stocktailor.workflow.results import run_results

__all__ = [
    "BatchOut",
    "CalibrationOut",
    "ExecutionCountOut",
    "HoldbackOut",
    "ResultsOut",
    "RunResultOut",
    "SumsOut",
    "TotalOut",
    "WeekOut",
    "router",
]

router = APIRouter(prefix="/api/v1", tags=["results"])

IntervalBasis = Literal["batch", "lines", "runs"]


class BatchOut(OutModel):
    """The run's latest measurement batch; ``summary`` as stored (every key optional)."""

    id: int
    run_id: int
    until: dt.date
    method: str
    level: float
    created_at: UtcDatetime
    created_by: str | None
    summary: dict[str, Any]


class SumsOut(OutModel):
    """Sums over measured lines (money in currency units); ``ratio`` = measured / estimated
    (null unless the estimate is above 0); ``measured_low``..``measured_high`` is the interval
    of ``interval``: ``batch`` (the measurement's own interval of the run total), ``lines``
    (sum of the lines' bounds) or ``runs`` (sum of the runs'): sums are conservative."""

    lines: int
    units: int
    estimated: float
    measured: float
    measured_low: float
    measured_high: float
    ratio: float | None


class TotalOut(SumsOut):
    interval: IntervalBasis
    level: float | None


class RunResultOut(SumsOut):
    run_id: int
    as_of: dt.date | None
    batch_id: int
    until: dt.date
    method: str
    level: float
    created_at: UtcDatetime
    created_by: str | None
    interval: IntervalBasis


class WeekOut(SumsOut):
    """A week of the lines' planned ship date (Monday; null: lines without one)."""

    week_start: dt.date | None
    interval: IntervalBasis


class CalibrationOut(SumsOut):
    """Lines of one category into one destination cluster: the raw ratio, no shrinkage."""

    category: str | None
    to_cluster: str | None
    cluster_name: str | None


class ExecutionCountOut(OutModel):
    """Lines by execution status (``not_reported``: approved, no execution imported);
    ``units`` approved, ``shipped_units`` and ``received_units`` as reported."""

    status: str
    lines: int
    units: int
    shipped_units: int
    received_units: int


class HoldbackOut(OutModel):
    """The randomised holdback comparison of a batch (from its summary; money in currency
    units); ``ledger_total`` is the ledger measurement of the same run."""

    run_id: int
    until: dt.date
    method: str
    level: float
    executed: int | None
    held_back: int | None
    effect_per_line: float | None
    total: float | None
    low: float | None
    high: float | None
    sd: float | None
    ledger_total: float | None


class ResultsOut(OutModel):
    """Estimated at approval vs measured for a run's executed lines (``measured`` false: no
    measurement yet, then only ``executions`` has content)."""

    run_id: int | None
    as_of: dt.date | None
    measured: bool
    batches: list[BatchOut]
    runs: list[RunResultOut]
    total: TotalOut
    weeks: list[WeekOut]
    calibration: list[CalibrationOut]
    executions: list[ExecutionCountOut]
    holdback: list[HoldbackOut]


@router.get("/runs/{run_id}/results", response_model=ResultsOut, responses=ERRORS)
def results(run_id: IdPath, user: Viewer, engine: EngineDep) -> Any:
    """What the run's executed lines earned, as measured by its latest batch: totals with
    their interval, by week of ship date, calibration by category x destination cluster,
    execution status counts and the holdback comparison (the Results page's content)."""
    try:
        return run_results(engine, run_id)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
