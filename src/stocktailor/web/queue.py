"""The review queue: filtered, sorted lines and the bulk approval."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from stocktailor import workflow
from stocktailor.web.common import (
    PAGE_SIZE,
    QueueQuery,
    RunPage,
    check_csrf,
    engine_of,
    open_run_page,
    page,
    parse_queue,
    run_id_or_latest,
    web_user,
)
from stocktailor.workflow import RecFilter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def queue_context(request: Request, q: QueueQuery, rid: int) -> dict[str, Any]:
    """Rows (lines or recommendations) of the queue, store names, and the bulk count."""
    engine = engine_of(request)
    f = q.filters()
    if q.view == "groups":
        sort = q.sort if q.sort in workflow.GROUP_SORT_KEYS else "net_benefit"
        p = workflow.list_groups(
            engine,
            rid,
            f,
            sort=sort,
            descending=q.order == "desc",
            page=q.page,
            page_size=PAGE_SIZE,
        )
    else:
        p = workflow.list_recommendations(
            engine,
            rid,
            f,
            sort=q.sort,
            descending=q.order == "desc",
            page=q.page,
            page_size=PAGE_SIZE,
        )
    pending = RecFilter(**{**f.__dict__, "status": "pending"})
    bulk_count = workflow.list_recommendations(engine, rid, pending, page_size=1).total
    stores = {s["store_id"]: s for s in workflow.run_stores(engine, rid)}
    pages = max(1, -(-p.total // PAGE_SIZE))
    return {
        "q": q,
        "run_id": rid,
        "page": p,
        "pages": pages,
        "stores": stores,
        "bulk_count": bulk_count,
    }


def _pushed(response: Response, q: QueueQuery) -> Response:
    """Keep the queue's filters, sort and page in the address bar (shareable, bookmarkable)."""
    response.headers["HX-Push-Url"] = "/queue?" + q.params()
    return response


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request) -> Response:
    rp = open_run_page(request)
    if not isinstance(rp, RunPage):
        return rp
    q = rp.query.model_copy(update={"run_id": rp.run_id})
    ctx = queue_context(request, q, rp.run_id)
    name = "_queue_rows.html" if request.headers.get("hx-request") else "queue.html"
    return page(
        request,
        name,
        rp.user,
        rp.token,
        run=rp.run,
        options=workflow.filter_options(engine_of(request), rp.run_id),
        **ctx,
    )


@router.get("/queue/rows", response_class=HTMLResponse)
def queue_rows(request: Request) -> Response:
    user, token = web_user(request)
    if user is None or token is None:
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    q = parse_queue(request)
    rid = run_id_or_latest(request, q.run_id)
    if rid is None:
        raise HTTPException(status_code=404, detail="no published run")
    q = q.model_copy(update={"run_id": rid})
    rows = page(request, "_queue_rows.html", user, token, **queue_context(request, q, rid))
    return _pushed(rows, q)


@router.post("/queue/bulk", response_class=HTMLResponse)
async def queue_bulk(request: Request) -> Response:
    user, token = web_user(request)
    if user is None or token is None:
        workflow.record_attempt(
            engine_of(request),
            user=None,
            action="bulk_decide",
            target=None,
            outcome="unauthenticated",
        )
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    check_csrf(request, token)
    form = await request.form()
    raw = {k: v for k, v in form.items() if isinstance(v, str) and v != ""}
    try:
        q = QueueQuery.model_validate(raw)
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=str(exc.errors()[0]["msg"])) from None
    rid = run_id_or_latest(request, q.run_id)
    if rid is None:
        raise HTTPException(status_code=404, detail="no published run")
    if not user.can_decide:
        workflow.record_attempt(
            engine_of(request),
            user=user.name,
            action="bulk_decide",
            target=f"run:{rid}",
            outcome="forbidden",
        )
        raise HTTPException(status_code=403, detail=f"role {user.role} may not decide")
    f = q.filters()
    f = RecFilter(**{**f.__dict__, "status": None})
    action = str(form.get("action") or "approve")
    if action not in ("approve", "reject"):
        raise HTTPException(status_code=422, detail="action: approve or reject")
    reason = "rejected as a whole recommendation" if action == "reject" else None
    res = workflow.bulk_decide(
        engine_of(request), rid, f, action=action, user=user.name, reason=reason
    )
    q = q.model_copy(update={"run_id": rid, "page": 1})
    verb = "Approved" if action == "approve" else "Rejected"
    return page(
        request,
        "_queue_rows.html",
        user,
        token,
        flash=f"{verb} {res.applied} pending lines.",
        **queue_context(request, q, rid),
    )
