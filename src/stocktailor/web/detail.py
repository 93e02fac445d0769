"""One recommendation: its explanation, forecast bands, and the decision form."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from stocktailor import workflow
from stocktailor.web.common import (
    check_csrf,
    engine_of,
    page,
    to_login,
    web_user,
)
from stocktailor.web.figures import band_figure
from stocktailor.workflow import Conflict, NotFound
from stocktailor.workflow.lanes import lane_premium_note
from stocktailor.workflow.signals import line_signal

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/recommendations/{rec_id}", response_class=HTMLResponse)
def detail(request: Request, rec_id: int) -> Response:
    user, token = web_user(request)
    if user is None or token is None:
        return to_login()
    if not 1 <= rec_id <= 2**31 - 1:
        raise HTTPException(status_code=422, detail="rec_id out of range")
    try:
        rec = workflow.get_recommendation(engine_of(request), rec_id)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    run = workflow.get_run(engine_of(request), rec["run_id"])
    return page(
        request,
        "detail.html",
        user,
        token,
        rec=rec,
        band_fig=band_figure(rec),
        run=run,
        lane_note=lane_premium_note(run.get("config"), rec["from_id"], rec["to_id"]),
        post_signal=line_signal(run.get("signals"), rec["style"], rec["to_id"]),
        message=None,
        error=None,
    )


@router.post("/recommendations/{rec_id}/decide", response_class=HTMLResponse)
def decide(
    request: Request,
    rec_id: int,
    action: str = Form(..., max_length=16),
    version: int = Form(..., ge=0, le=2**31 - 1),
    units: str = Form("", max_length=10),
    reason: str = Form("", max_length=workflow.MAX_REASON_LENGTH),
) -> Response:
    user, token = web_user(request)
    if user is None or token is None:
        workflow.record_attempt(
            engine_of(request),
            user=None,
            action="decide",
            target=str(rec_id),
            outcome="unauthenticated",
        )
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    check_csrf(request, token)
    if not user.can_decide:
        workflow.record_attempt(
            engine_of(request),
            user=user.name,
            action="decide",
            target=str(rec_id),
            outcome="forbidden",
        )
        raise HTTPException(status_code=403, detail=f"role {user.role} may not decide")
    message = error = None
    n: int | None = None
    if units.strip():
        try:
            n = int(units)
        except ValueError:
            error = f"units: {units!r} is not a whole number"
    if error is None:
        try:
            res = workflow.decide(
                engine_of(request),
                rec_id,
                action=action,
                version=version,
                user=user.name,
                units=n if action == "edit" else None,
                reason=reason or None,
            )
            message = (
                f"{res.status.capitalize()} ({res.units} units)."
                if res.applied
                else f"Already {res.status}; nothing changed."
            )
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except Conflict as exc:
            error = f"Conflict: {exc} Reload to see the current state."
        except ValueError as exc:
            error = str(exc)
    rec = workflow.get_recommendation(engine_of(request), rec_id)
    return page(request, "_decision.html", user, token, rec=rec, message=message, error=error)
