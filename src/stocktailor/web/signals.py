"""The signals page: post series rising on the run's as-of date and the lines they touch."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from stocktailor import workflow
from stocktailor.web.common import (
    engine_of,
    page,
    parse_queue,
    run_id_or_latest,
    to_login,
    web_user,
)
from stocktailor.workflow import NotFound
from stocktailor.workflow.signals import run_signals

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/signals", response_class=HTMLResponse)
def signals(request: Request) -> Response:
    user, token = web_user(request)
    if user is None or token is None:
        return to_login()
    q = parse_queue(request)
    rid = run_id_or_latest(request, q.run_id)
    if rid is None:
        return page(request, "empty.html", user, token, run=None)
    try:
        run = workflow.get_run(engine_of(request), rid)
        found = run_signals(engine_of(request), rid)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return page(request, "signals.html", user, token, run=run, found=found)
