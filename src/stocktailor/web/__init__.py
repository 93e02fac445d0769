"""The planner dashboard: Jinja2 pages, HTMX partials and Plotly charts, all served locally.

:func:`mount_dashboard` adds the pages to the API app. JavaScript (``htmx.min.js``,
``plotly.min.js``) is vendored in ``static/`` so the dashboard works offline; charts are plain
Plotly scatter/bar traces (no map tiles or topojson are fetched). Sign-in stores the token in an
HttpOnly, SameSite=Strict cookie; writes also carry an ``X-CSRF-Token`` header derived from it.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine

from stocktailor import workflow
from stocktailor.config import Settings
from stocktailor.workflow import Conflict, NotFound, RecFilter, UserInfo

__all__ = ["STATIC_DIR", "TEMPLATE_DIR", "mount_dashboard"]

logger = logging.getLogger(__name__)

STATIC_DIR = resources.files("stocktailor.web") / "static"
TEMPLATE_DIR = resources.files("stocktailor.web") / "templates"
PAGE_SIZE = 25
FILTER_PATTERN = r"^[\w][\w .\-/+#&()]{0,63}$"


class QueueQuery(BaseModel):
    """Validated queue filters of the dashboard (same rules as the API)."""

    model_config = ConfigDict(extra="ignore")

    run_id: int | None = Field(None, ge=1, le=2**31 - 1)
    status: str | None = Field(None, pattern=r"^(pending|approved|rejected|edited)$")
    kind: str | None = Field(None, pattern=r"^(transfer|allocation)$")
    cluster: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    store: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    category: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    style: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    exception: str | None = Field(
        None, pattern=r"^(any|low_confidence|large_move|soft_rule|first_transfer_of_style)$"
    )
    sort: str = Field("net_benefit", pattern=r"^(" + "|".join(workflow.SORT_KEYS) + r")$")
    order: str = Field("desc", pattern=r"^(asc|desc)$")
    page: int = Field(1, ge=1, le=100_000)

    def filters(self) -> RecFilter:
        return RecFilter(
            status=self.status,
            kind=self.kind,
            cluster=self.cluster,
            store=self.store,
            category=self.category,
            style=self.style,
            exception=self.exception,
        )

    def params(self, **changes: Any) -> str:
        data = {k: v for k, v in self.model_dump().items() if v not in (None, "")}
        data.update(changes)
        return urlencode({k: v for k, v in data.items() if v not in (None, "")})


def _parse_queue(request: Request) -> QueueQuery:
    raw = {k: v for k, v in request.query_params.items() if v != ""}
    try:
        return QueueQuery.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise HTTPException(status_code=422, detail=f"{loc}: {first['msg']}") from None


def _fmt_money(value: Any) -> str:
    return "" if value is None else f"{float(value):,.2f}"


def _fmt_num(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{float(value):,.{digits}f}"


def _fmt_kpi(value: Any) -> str:
    """A KPI: whole numbers without decimals (units, lanes), others with two (money)."""
    if value is None:
        return "–"
    number = float(value)
    return f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}"


def _map_figure(stores: list[dict[str, Any]]) -> dict[str, Any]:
    traces: dict[str, dict[str, Any]] = {}
    for s in stores:
        if s["latitude"] is None or s["longitude"] is None:
            continue
        name = "warehouses" if s["kind"] == "warehouse" else (s["cluster_name"] or "unclustered")
        t = traces.setdefault(
            name,
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [],
                "y": [],
                "text": [],
                "marker": {"size": 12, "symbol": "square" if name == "warehouses" else "circle"},
                "hovertemplate": "%{text}<extra></extra>",
            },
        )
        t["x"].append(s["longitude"])
        t["y"].append(s["latitude"])
        label = f"{s['store_id']} {s['name'] or ''}<br>{s['city'] or ''}"
        if s["on_hand"] is not None:
            label += f"<br>on hand {s['on_hand']}"
        t["text"].append(label)
    return {
        "data": list(traces.values()),
        "layout": {
            "title": {"text": "Stores by cluster (longitude / latitude)"},
            "xaxis": {"title": {"text": "longitude"}},
            "yaxis": {"title": {"text": "latitude"}, "scaleanchor": "x"},
            "height": 420,
            "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
        },
    }


def _cluster_figure(clusters: list[dict[str, Any]]) -> dict[str, Any]:
    names = [c["cluster_name"] for c in clusters]
    return {
        "data": [
            {
                "type": "bar",
                "name": "sell-through %",
                "x": names,
                "y": [
                    None if c["sell_through"] is None else 100 * c["sell_through"] for c in clusters
                ],
                "yaxis": "y",
                "offsetgroup": 1,
            },
            {
                "type": "bar",
                "name": "cover (weeks)",
                "x": names,
                "y": [c["cover_weeks"] for c in clusters],
                "yaxis": "y2",
                "offsetgroup": 2,
            },
        ],
        "layout": {
            "title": {"text": "Sell-through and cover by cluster"},
            "barmode": "group",
            "yaxis": {"title": {"text": "sell-through %"}},
            "yaxis2": {"title": {"text": "cover, weeks"}, "overlaying": "y", "side": "right"},
            "height": 360,
            "margin": {"l": 50, "r": 50, "t": 40, "b": 40},
            "legend": {"orientation": "h"},
        },
    }


def _band_figure(rec: dict[str, Any]) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for end, label in (("from", rec["from_id"]), ("to", rec["to_id"])):
        pts = rec["forecast"][end]
        if not pts:
            continue
        x = [p["week_start"].isoformat() for p in pts]
        data.append(
            {
                "type": "scatter",
                "x": x,
                "y": [p["p90"] for p in pts],
                "mode": "lines",
                "line": {"width": 0},
                "showlegend": False,
                "name": f"{label} p90",
            }
        )
        data.append(
            {
                "type": "scatter",
                "x": x,
                "y": [p["p10"] for p in pts],
                "mode": "lines",
                "fill": "tonexty",
                "line": {"width": 0},
                "name": f"{label} p10–p90",
            }
        )
        data.append(
            {
                "type": "scatter",
                "x": x,
                "y": [p["mean"] for p in pts],
                "mode": "lines+markers",
                "name": f"{label} ({'source' if end == 'from' else 'destination'}) mean",
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": f"Weekly demand forecast of {rec['sku']} (units/week)"},
            "height": 320,
            "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
        },
    }


def mount_dashboard(app: FastAPI, engine: Engine, settings: Settings) -> None:
    """Add the dashboard pages and the vendored static files to ``app``."""
    templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
    templates.env.filters["money"] = _fmt_money
    templates.env.filters["num"] = _fmt_num
    templates.env.filters["kpi"] = _fmt_kpi
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    router = APIRouter(include_in_schema=False)
    from stocktailor.api import COOKIE, csrf_token

    def web_user(request: Request) -> tuple[UserInfo | None, str | None]:
        token = request.cookies.get(COOKIE)
        return workflow.authenticate(engine, token), token

    def page(
        request: Request,
        name: str,
        user: UserInfo,
        token: str,
        status_code: int = 200,
        **ctx: Any,
    ) -> HTMLResponse:
        runs = workflow.list_runs(engine)
        context = {"user": user, "csrf": csrf_token(token), "runs": runs, **ctx}
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def to_login() -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    def run_id_or_latest(run_id: int | None) -> int | None:
        return run_id if run_id is not None else workflow.latest_run_id(engine)

    def check_csrf(request: Request, token: str) -> None:
        if request.headers.get("x-csrf-token") != csrf_token(token):
            raise HTTPException(status_code=403, detail="missing or wrong X-CSRF-Token")

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "login.html", {"error": None})

    @router.post("/login", response_class=HTMLResponse)
    def login(request: Request, token: str = Form(..., max_length=200)) -> Response:
        user = workflow.authenticate(engine, token.strip())
        if user is None:
            workflow.record_attempt(
                engine, user=None, action="login", target=None, outcome="unauthenticated"
            )
            return templates.TemplateResponse(
                request, "login.html", {"error": "Unknown or revoked token."}, status_code=401
            )
        workflow.record_attempt(
            engine, user=user.name, action="login", target=None, outcome="applied"
        )
        resp = RedirectResponse("/overview", status_code=303)
        resp.set_cookie(
            COOKIE,
            token.strip(),
            httponly=True,
            samesite="strict",
            secure=settings.serve.cookie_secure,
            max_age=12 * 3600,
        )
        return resp

    @router.post("/logout")
    def logout() -> Response:
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    @router.get("/")
    def home(request: Request) -> Response:
        user, _ = web_user(request)
        return RedirectResponse("/overview" if user else "/login", status_code=303)

    @router.get("/overview", response_class=HTMLResponse)
    def overview(request: Request) -> Response:
        user, token = web_user(request)
        if user is None or token is None:
            return to_login()
        q = _parse_queue(request)
        rid = run_id_or_latest(q.run_id)
        if rid is None:
            return page(request, "empty.html", user, token, run=None)
        try:
            run = workflow.get_run(engine, rid)
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        clusters = workflow.cluster_summary(engine, rid)
        stores = workflow.run_stores(engine, rid)
        return page(
            request,
            "overview.html",
            user,
            token,
            run=run,
            clusters=clusters,
            map_fig=_map_figure(stores),
            cluster_fig=_cluster_figure(clusters),
        )

    def queue_context(q: QueueQuery, rid: int) -> dict[str, Any]:
        p = workflow.list_recommendations(
            engine,
            rid,
            q.filters(),
            sort=q.sort,
            descending=q.order == "desc",
            page=q.page,
            page_size=PAGE_SIZE,
        )
        pages = max(1, -(-p.total // PAGE_SIZE))
        return {"q": q, "run_id": rid, "page": p, "pages": pages}

    @router.get("/queue", response_class=HTMLResponse)
    def queue(request: Request) -> Response:
        user, token = web_user(request)
        if user is None or token is None:
            return to_login()
        q = _parse_queue(request)
        rid = run_id_or_latest(q.run_id)
        if rid is None:
            return page(request, "empty.html", user, token, run=None)
        q = q.model_copy(update={"run_id": rid})
        ctx = queue_context(q, rid)
        name = "_queue_rows.html" if request.headers.get("hx-request") else "queue.html"
        return page(
            request,
            name,
            user,
            token,
            run=workflow.get_run(engine, rid),
            options=workflow.filter_options(engine, rid),
            **ctx,
        )

    @router.get("/queue/rows", response_class=HTMLResponse)
    def queue_rows(request: Request) -> Response:
        user, token = web_user(request)
        if user is None or token is None:
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        q = _parse_queue(request)
        rid = run_id_or_latest(q.run_id)
        if rid is None:
            raise HTTPException(status_code=404, detail="no published run")
        q = q.model_copy(update={"run_id": rid})
        return page(request, "_queue_rows.html", user, token, **queue_context(q, rid))

    @router.post("/queue/bulk", response_class=HTMLResponse)
    async def queue_bulk(request: Request) -> Response:
        user, token = web_user(request)
        if user is None or token is None:
            workflow.record_attempt(
                engine, user=None, action="bulk_decide", target=None, outcome="unauthenticated"
            )
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        check_csrf(request, token)
        form = await request.form()
        raw = {k: v for k, v in form.items() if isinstance(v, str) and v != ""}
        try:
            q = QueueQuery.model_validate(raw)
        except ValidationError as exc:
            raise HTTPException(status_code=422, detail=str(exc.errors()[0]["msg"])) from None
        rid = run_id_or_latest(q.run_id)
        if rid is None:
            raise HTTPException(status_code=404, detail="no published run")
        if not user.can_decide:
            workflow.record_attempt(
                engine,
                user=user.name,
                action="bulk_decide",
                target=f"run:{rid}",
                outcome="forbidden",
            )
            raise HTTPException(status_code=403, detail=f"role {user.role} may not decide")
        f = q.filters()
        f = RecFilter(**{**f.__dict__, "status": None})
        res = workflow.bulk_decide(engine, rid, f, action="approve", user=user.name)
        q = q.model_copy(update={"run_id": rid, "page": 1})
        return page(
            request,
            "_queue_rows.html",
            user,
            token,
            flash=f"Approved {res.applied} pending lines.",
            **queue_context(q, rid),
        )

    @router.get("/recommendations/{rec_id}", response_class=HTMLResponse)
    def detail(request: Request, rec_id: int) -> Response:
        user, token = web_user(request)
        if user is None or token is None:
            return to_login()
        if not 1 <= rec_id <= 2**31 - 1:
            raise HTTPException(status_code=422, detail="rec_id out of range")
        try:
            rec = workflow.get_recommendation(engine, rec_id)
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        return page(
            request,
            "detail.html",
            user,
            token,
            rec=rec,
            band_fig=_band_figure(rec),
            run=workflow.get_run(engine, rec["run_id"]),
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
                engine, user=None, action="decide", target=str(rec_id), outcome="unauthenticated"
            )
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        check_csrf(request, token)
        if not user.can_decide:
            workflow.record_attempt(
                engine, user=user.name, action="decide", target=str(rec_id), outcome="forbidden"
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
                    engine,
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
        rec = workflow.get_recommendation(engine, rec_id)
        return page(request, "_decision.html", user, token, rec=rec, message=message, error=error)

    @router.get("/exceptions", response_class=HTMLResponse)
    def exceptions(request: Request) -> Response:
        user, token = web_user(request)
        if user is None or token is None:
            return to_login()
        q = _parse_queue(request)
        kind = q.exception if q.exception != "any" else None
        rid = run_id_or_latest(q.run_id)
        if rid is None:
            return page(request, "empty.html", user, token, run=None)
        p = workflow.list_exceptions(engine, rid, kind=kind, page=q.page, page_size=100)
        return page(
            request,
            "exceptions.html",
            user,
            token,
            run=workflow.get_run(engine, rid),
            page=p,
            kind=kind,
            kinds=workflow.EXCEPTION_KINDS,
            q=q,
        )

    @router.get("/export")
    def export(request: Request) -> Response:
        user, token = web_user(request)
        if user is None or token is None:
            return to_login()
        fmt = request.query_params.get("format", "csv")
        if fmt not in ("csv", "xlsx"):
            raise HTTPException(status_code=422, detail="format: csv or xlsx")
        q = _parse_queue(request)
        rid = run_id_or_latest(q.run_id)
        if rid is None:
            raise HTTPException(status_code=404, detail="no published run")
        data = workflow.export_approved(engine, rid, fmt)
        media = (
            "text/csv; charset=utf-8"
            if fmt == "csv"
            else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        return Response(
            content=data,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="stocktailor-run-{rid}.{fmt}"'},
        )

    app.include_router(router)
