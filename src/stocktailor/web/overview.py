"""The overview page: KPIs, the store map and the clusters."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from stocktailor import workflow
from stocktailor.web.common import RunPage, engine_of, open_run_page, page
from stocktailor.web.figures import cluster_figure, map_figure

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/overview", response_class=HTMLResponse)
def overview(request: Request) -> Response:
    rp = open_run_page(request)
    if not isinstance(rp, RunPage):
        return rp
    user, token, rid, run = rp.user, rp.token, rp.run_id, rp.run
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
