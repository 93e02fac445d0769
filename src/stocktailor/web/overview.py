"""The overview page: KPIs, the store map and the clusters."""

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
from stocktailor.web.figures import cluster_figure, map_figure
from stocktailor.workflow import NotFound

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/overview", response_class=HTMLResponse)
def overview(request: Request) -> Response:
    user, token = web_user(request)
    if user is None or token is None:
        return to_login()
    q = parse_queue(request)
    rid = run_id_or_latest(request, q.run_id)
    if rid is None:
        return page(request, "empty.html", user, token, run=None)
    try:
        run = workflow.get_run(engine_of(request), rid)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    clusters = workflow.cluster_summary(engine_of(request), rid)
    stores = workflow.run_stores(engine_of(request), rid)
    return page(
        request,
        "overview.html",
        user,
        token,
        run=run,
        clusters=clusters,
        map_fig=map_figure(stores),
        cluster_fig=cluster_figure(clusters),
    )
