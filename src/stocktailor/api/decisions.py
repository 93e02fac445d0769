"""Decisions: approve, reject or edit one line; approve or reject a filter's pending lines."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from stocktailor import workflow
from stocktailor.api.deps import EngineDep, Planner, validation_error
from stocktailor.api.schemas import (
    ERRORS,
    BulkDecisionIn,
    BulkDecisionOut,
    ConflictOut,
    DecisionIn,
    DecisionOut,
    IdPath,
)
from stocktailor.workflow import Conflict, NotFound, RecFilter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["decisions"])


@router.post(
    "/recommendations/{rec_id}/decision",
    response_model=DecisionOut,
    responses={**ERRORS, 409: {"model": ConflictOut, "description": "Stale version"}},
)
def decision(rec_id: IdPath, body: DecisionIn, user: Planner, engine: EngineDep) -> Any:
    """Approve, reject (with a reason) or edit the units of a line.

    ``version`` is the line's version you saw: 409 if it changed meanwhile, unless this
    request repeats the decision that changed it (then it is answered again, idempotently).
    """
    try:
        res = workflow.decide(
            engine,
            rec_id,
            action=body.action,
            version=body.version,
            user=user.name,
            units=body.units,
            reason=body.reason,
        )
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except Conflict as exc:
        return JSONResponse(status_code=409, content={"detail": str(exc), "current": exc.current})
    except ValueError as exc:
        return validation_error(exc)
    return res.__dict__


@router.post("/runs/{run_id}/decisions/bulk", response_model=BulkDecisionOut, responses=ERRORS)
def bulk(run_id: IdPath, body: BulkDecisionIn, user: Planner, engine: EngineDep) -> Any:
    """Approve or reject every pending line of a run matching the filter (atomic)."""
    f = RecFilter(**body.filter.model_dump())
    try:
        res = workflow.bulk_decide(
            engine, run_id, f, action=body.action, user=user.name, reason=body.reason
        )
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except ValueError as exc:
        return validation_error(exc)
    return {"matched": res.matched, "applied": res.applied, "status": res.status}
