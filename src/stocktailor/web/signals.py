"""The signals page: post series rising on the run's as-of date and the lines they touch."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from stocktailor.web.common import RunPage, engine_of, open_run_page, page
from stocktailor.workflow.signals import run_signals

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/signals", response_class=HTMLResponse)
def signals(request: Request) -> Response:
    rp = open_run_page(request)
    if not isinstance(rp, RunPage):
        return rp
    found = run_signals(engine_of(request), rp.run_id)
    return page(request, "signals.html", rp.user, rp.token, run=rp.run, found=found)
