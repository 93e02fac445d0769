"""The exceptions page: flagged lines by kind."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from stocktailor import workflow
from stocktailor.web.common import RunPage, engine_of, open_run_page, page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/exceptions", response_class=HTMLResponse)
def exceptions(request: Request) -> Response:
    rp = open_run_page(request)
    if not isinstance(rp, RunPage):
        return rp
    q = rp.query
    kind = q.exception if q.exception != "any" else None
    p = workflow.list_exceptions(
        engine_of(request), rp.run_id, kind=kind, page=q.page, page_size=100
    )
    return page(
        request,
        "exceptions.html",
        rp.user,
        rp.token,
        run=rp.run,
        page=p,
        kind=kind,
        kinds=workflow.EXCEPTION_KINDS,
        q=q,
    )
