"""Auto-approval (admin only): the rules, applying them to a run, reversing an auto-approval."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from stocktailor import workflow
from stocktailor.api.deps import Admin, EngineDep, validation_error
from stocktailor.api.schemas import ERRORS, TEXT_PATTERN, ConflictOut, DecisionOut, IdPath
from stocktailor.automation import (
    CATEGORY_PATTERN,
    RULE_NAME_PATTERN,
    STORE_PATTERN,
    AutoApprovalRule,
)
from stocktailor.config import Settings
from stocktailor.workflow import Conflict, NotFound

__all__ = ["AutoApplyOut", "LaneIn", "ReverseIn", "RuleIn", "RuleOut", "router", "settings_rules"]

router = APIRouter(prefix="/api/v1", tags=["auto-approval"])

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ConflictOut, "description": "Stale version, name taken or exported"}
}

Store = Annotated[str, Field(max_length=64, pattern=STORE_PATTERN)]
Category = Annotated[str, Field(max_length=64, pattern=CATEGORY_PATTERN)]


class LaneIn(BaseModel):
    """A lane: from store to store (``*`` for any store)."""

    model_config = ConfigDict(extra="forbid")

    from_store: Store
    to_store: Store


class RuleIn(BaseModel):
    """An auto-approval rule (see ``[workflow] auto_approval`` in the settings)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, pattern=RULE_NAME_PATTERN)
    min_net_benefit: float = Field(
        0.0, ge=-1e12, le=1e12, description="Lowest net benefit, currency units."
    )
    require_positive_p10: bool = Field(True, description="Only lines with gain p10 > 0.")
    lanes: list[LaneIn] = Field(default_factory=list, max_length=1000)
    categories: list[Category] = Field(default_factory=list, max_length=200)
    daily_unit_cap: int | None = Field(
        None, ge=1, le=10_000_000, description="Units per destination store and ship day."
    )
    enabled: bool = True
    version: int | None = Field(
        None, ge=0, le=2**31 - 1, description="The version you saw (required to update)."
    )

    def rule(self) -> AutoApprovalRule:
        return AutoApprovalRule(
            name=self.name,
            min_net_benefit=self.min_net_benefit,
            require_positive_p10=self.require_positive_p10,
            lanes=tuple((lane.from_store, lane.to_store) for lane in self.lanes),
            categories=tuple(self.categories),
            daily_unit_cap=self.daily_unit_cap,
            enabled=self.enabled,
        )


class RuleOut(BaseModel):
    id: int | None
    version: int | None
    source: str
    name: str
    min_net_benefit: float
    require_positive_p10: bool
    lanes: list[list[str]]
    categories: list[str]
    daily_unit_cap: int | None
    enabled: bool


class AutoApplyOut(BaseModel):
    run_id: int
    approved: int
    units: int
    by_rule: dict[str, int]
    skipped_exceptions: int
    skipped_cap: int


class ReverseIn(BaseModel):
    """Return an auto-approved line to pending, naming the version you saw."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=0, le=2**31 - 1)
    reason: str | None = Field(None, max_length=workflow.MAX_REASON_LENGTH, pattern=TEXT_PATTERN)


def settings_rules(request: Request) -> tuple[AutoApprovalRule, ...]:
    """The auto-approval rules of the app's settings."""
    settings: Settings = request.app.state.settings
    return settings.workflow.auto_approval


def _conflict(exc: Conflict) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc), "current": exc.current})


@router.get("/auto-approval/rules", response_model=list[RuleOut], responses=ERRORS)
def rules(request: Request, user: Admin, engine: EngineDep) -> Any:
    """Every auto-approval rule: the database's (editable) and the settings' (read-only)."""
    return workflow.list_rules(engine, settings_rules(request))


@router.post(
    "/auto-approval/rules",
    response_model=RuleOut,
    status_code=201,
    responses={**ERRORS, **CONFLICT},
)
def create(request: Request, body: RuleIn, user: Admin, engine: EngineDep) -> Any:
    """Add a rule (409 if the name is taken)."""
    try:
        return workflow.create_rule(
            engine, body.rule(), user=user.name, settings_rules=settings_rules(request)
        )
    except Conflict as exc:
        return _conflict(exc)


@router.put(
    "/auto-approval/rules/{rule_id}", response_model=RuleOut, responses={**ERRORS, **CONFLICT}
)
def replace(request: Request, rule_id: IdPath, body: RuleIn, user: Admin, engine: EngineDep) -> Any:
    """Replace a rule; ``version`` is the one you saw (409 if it changed meanwhile)."""
    if body.version is None:
        return validation_error(ValueError("version: required to update a rule"))
    try:
        return workflow.update_rule(
            engine,
            rule_id,
            body.rule(),
            version=body.version,
            user=user.name,
            settings_rules=settings_rules(request),
        )
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except Conflict as exc:
        return _conflict(exc)


@router.delete(
    "/auto-approval/rules/{rule_id}",
    status_code=204,
    response_class=Response,
    responses=ERRORS,
)
def remove(rule_id: IdPath, user: Admin, engine: EngineDep) -> Response:
    """Delete a rule (lines it approved keep its name)."""
    try:
        workflow.delete_rule(engine, rule_id, user=user.name)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return Response(status_code=204)


@router.post("/runs/{run_id}/auto-approval", response_model=AutoApplyOut, responses=ERRORS)
def apply(request: Request, run_id: IdPath, user: Admin, engine: EngineDep) -> Any:
    """Apply the enabled rules to the run's pending lines now (exception lines stay pending)."""
    try:
        res = workflow.apply_auto_approval(
            engine, run_id, settings_rules=settings_rules(request), user=user.name
        )
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return {k: v for k, v in res.__dict__.items() if k != "ids"}


@router.post(
    "/recommendations/{rec_id}/auto-approval/reverse",
    response_model=DecisionOut,
    responses={**ERRORS, **CONFLICT},
)
def reverse(rec_id: IdPath, body: ReverseIn, user: Admin, engine: EngineDep) -> Any:
    """Return an auto-approved line to pending (409 once exported or on a stale version)."""
    try:
        res = workflow.reverse_auto_approval(
            engine, rec_id, version=body.version, user=user.name, reason=body.reason
        )
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except Conflict as exc:
        return _conflict(exc)
    except ValueError as exc:
        return validation_error(exc)
    return res.__dict__
