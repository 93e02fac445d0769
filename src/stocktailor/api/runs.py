"""Runs: the published plan runs, one run, its KPIs, its rising post signals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from stocktailor import workflow
from stocktailor.api.deps import EngineDep, Viewer, run_or_404
from stocktailor.api.schemas import (
    ERRORS,
    IdPath,
    KpisOut,
    RunDetailOut,
    RunOut,
    RunSignalsOut,
)
from stocktailor.workflow import NotFound
from stocktailor.workflow.signals import run_signals

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["runs"])


@router.get("/runs", response_model=list[RunOut], responses=ERRORS)
def runs(user: Viewer, engine: EngineDep) -> Any:
    """Published runs, newest first."""
    return workflow.list_runs(engine)


@router.get("/runs/{run_id}", response_model=RunDetailOut, responses=ERRORS)
def run(run_id: IdPath, user: Viewer, engine: EngineDep) -> Any:
    """One run: KPIs, settings, line counts and totals by status."""
    return run_or_404(engine, run_id)


@router.get("/runs/{run_id}/kpis", response_model=KpisOut, responses=ERRORS)
def kpis(run_id: IdPath, user: Viewer, engine: EngineDep) -> Any:
    """Headline KPIs of a run, totals by status, and sell-through and cover by cluster."""
    r = run_or_404(engine, run_id)
    return {
        "run_id": run_id,
        "as_of": r["as_of"],
        "kpis": r["kpis"],
        "by_status": r["by_status"],
        "clusters": workflow.cluster_summary(engine, run_id),
    }


@router.get("/runs/{run_id}/signals", response_model=RunSignalsOut, responses=ERRORS)
def signals(run_id: IdPath, user: Viewer, engine: EngineDep) -> Any:
    """Post series rising on the run's as-of date, each with the lines it touches (the rows
    of the dashboard's Signals page)."""
    try:
        return run_signals(engine, run_id)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
