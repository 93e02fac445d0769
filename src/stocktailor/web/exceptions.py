"""The exceptions page: flagged lines by kind."""

from __future__ import annotations

from fastapi import APIRouter, Request
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

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/exceptions", response_class=HTMLResponse)
def exceptions(request: Request) -> Response:
    user, token = web_user(request)
    if user is None or token is None:
        return to_login()
    q = parse_queue(request)
    kind = q.exception if q.exception != "any" else None
    rid = run_id_or_latest(request, q.run_id)
    if rid is None:
        return page(request, "empty.html", user, token, run=None)
    p = workflow.list_exceptions(engine_of(request), rid, kind=kind, page=q.page, page_size=100)
    return page(
        request,
        "exceptions.html",
        user,
        token,
        run=workflow.get_run(engine_of(request), rid),
        page=p,
        kind=kind,
        kinds=workflow.EXCEPTION_KINDS,
        q=q,
    )
