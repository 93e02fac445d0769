"""Recommendations: the lines of a run (filtered, sorted, paged), one line, the exceptions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import Engine

from stocktailor import workflow
from stocktailor.api.deps import EngineDep, Viewer, run_or_404
from stocktailor.api.schemas import (
    ERRORS,
    MAX_ID,
    MAX_PAGE_SIZE,
    ExceptionKind,
    ExceptionPage,
    FilterValue,
    IdPath,
    Kind,
    RecommendationDetail,
    RecommendationGroupPage,
    RecommendationPage,
    SortKey,
    Status,
)
from stocktailor.workflow import NotFound, Page, RecFilter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["recommendations"])


def _page(p: Page) -> dict[str, Any]:
    return {"items": p.items, "total": p.total, "page": p.page, "page_size": p.page_size}


def _sorted_page(
    listing: Callable[..., Page],
    engine: Engine,
    run_id: int,
    filters: RecFilter,
    sort: str,
    order: Literal["asc", "desc"],
    page: int,
    page_size: int,
) -> dict[str, Any]:
    """One page of ``listing`` (:func:`~stocktailor.workflow.list_recommendations` or
    :func:`~stocktailor.workflow.list_groups`) as the API returns it."""
    p = listing(
        engine,
        run_id,
        filters,
        sort=sort,
        descending=order == "desc",
        page=page,
        page_size=page_size,
    )
    return _page(p)


@router.get("/recommendations", response_model=RecommendationPage, responses=ERRORS)
def recommendations(
    user: Viewer,
    engine: EngineDep,
    run_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Default: newest")] = None,
    status: Status | None = None,
    kind: Kind | None = None,
    cluster: FilterValue = None,
    store: FilterValue = None,
    from_store: FilterValue = None,
    to_store: FilterValue = None,
    category: FilterValue = None,
    style: FilterValue = None,
    sku: FilterValue = None,
    exception: ExceptionKind | Literal["any"] | None = None,
    min_net_benefit: Annotated[float | None, Query(ge=-1e12, le=1e12)] = None,
    group: FilterValue = None,
    sort: SortKey = "net_benefit",
    order: Literal["asc", "desc"] = "desc",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Any:
    """Lines of a run, filtered, sorted and paginated."""
    rid = run_id if run_id is not None else workflow.latest_run_id(engine)
    if rid is None:
        raise HTTPException(status_code=404, detail="no published run")
    filters = RecFilter(
        status=status,
        kind=kind,
        cluster=cluster,
        store=store,
        from_store=from_store,
        to_store=to_store,
        category=category,
        style=style,
        sku=sku,
        exception=exception,
        min_net_benefit=min_net_benefit,
        group=group,
    )
    return _sorted_page(
        workflow.list_recommendations, engine, rid, filters, sort, order, page, page_size
    )


@router.get("/recommendations/{rec_id}", response_model=RecommendationDetail, responses=ERRORS)
def recommendation(rec_id: IdPath, user: Viewer, engine: EngineDep) -> Any:
    """One line with its explanation, both ends, forecast bands, exceptions and history."""
    try:
        return workflow.get_recommendation(engine, rec_id)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


@router.get("/runs/{run_id}/exceptions", response_model=ExceptionPage, responses=ERRORS)
def exceptions(
    run_id: IdPath,
    user: Viewer,
    engine: EngineDep,
    kind: ExceptionKind | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Any:
    """Lines flagged for review: low confidence, large moves, soft rules, first transfers."""
    run_or_404(engine, run_id)
    p = workflow.list_exceptions(engine, run_id, kind=kind, page=page, page_size=page_size)
    return _page(p)


@router.get("/runs/{run_id}/groups", response_model=RecommendationGroupPage, responses=ERRORS)
def groups(
    run_id: IdPath,
    user: Viewer,
    engine: EngineDep,
    status: Status | None = None,
    kind: Kind | None = None,
    cluster: FilterValue = None,
    store: FilterValue = None,
    category: FilterValue = None,
    style: FilterValue = None,
    exception: ExceptionKind | Literal["any"] | None = None,
    sort: Literal[
        "net_benefit", "units", "lines", "style", "from_id", "to_id", "loss_probability"
    ] = "net_benefit",
    order: Literal["asc", "desc"] = "desc",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Any:
    """Recommendations of a run: lines grouped by style-colour x lane, with the size breakdown.

    Approve or reject a whole recommendation with the bulk decision and ``filter.group``.
    """
    run_or_404(engine, run_id)
    filters = RecFilter(
        status=status,
        kind=kind,
        cluster=cluster,
        store=store,
        category=category,
        style=style,
        exception=exception,
    )
    return _sorted_page(workflow.list_groups, engine, run_id, filters, sort, order, page, page_size)
