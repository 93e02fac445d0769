"""The continuous pipeline: daily increments, stored step outputs, one step runner.

An edge layer over :class:`~stocktailor.workspace.Workspace`: it reads and writes the
workspace and calls the pure core (clustering, demand, size curves, the joint allocation and
transfer plan).

* :func:`append_increment` (``stocktailor ingest --append``) adds a day's data;
* :class:`Pipeline` (``stocktailor run``, ``forecast``, ``allocate``, ``rebalance``,
  ``status``) runs the steps of :data:`STEPS` that are stale and reuses the stored ones.
"""

from __future__ import annotations

from stocktailor.pipeline.append import AppendReport, append_increment
from stocktailor.pipeline.runner import Pipeline, RunReport, StepState, plan_result, refit_day
from stocktailor.pipeline.steps import STEPS, Step, forecast_scan, read_output, tables_at
from stocktailor.pipeline.store import OutputStore, StoredOutput

__all__ = [
    "STEPS",
    "AppendReport",
    "OutputStore",
    "Pipeline",
    "RunReport",
    "Step",
    "StepState",
    "StoredOutput",
    "append_increment",
    "forecast_scan",
    "plan_result",
    "read_output",
    "refit_day",
    "tables_at",
]
