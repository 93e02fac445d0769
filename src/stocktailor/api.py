"""HTTP API and dashboard of the planner workflow (FastAPI, OpenAPI at ``/docs``).

:func:`create_app` builds the app over a workflow database: the JSON API under ``/api/v1``
(Bearer token) and the dashboard (cookie set by signing in with a token; pages in
:mod:`stocktailor.web`). Every filter is validated strictly (allowed values, a character
whitelist, length and range bounds): anything else is answered 422 with a message. Writes
need a planner or admin (401 without a token, 403 for a viewer); refused writes are audited.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from stocktailor import __version__, workflow
from stocktailor.config import Settings
from stocktailor.workflow import Conflict, NotFound, RecFilter, UserInfo

__all__ = [
    "FILTER_PATTERN",
    "MAX_PAGE_SIZE",
    "create_app",
    "serve_app",
]

logger = logging.getLogger(__name__)

FILTER_PATTERN = r"^[\w][\w .\-/+#&()]{0,63}$"
"""Accepted filter values: a word character then up to 63 word characters, spaces or
``. - / + # & ( )`` (quotes, semicolons, ``=``, ``%`` and control characters are refused)."""

TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""Free text (reasons): no control characters other than tab and newlines."""

MAX_PAGE_SIZE = 200
MAX_ID = 2**31 - 1
COOKIE = "stocktailor_token"

FilterValue = Annotated[
    str | None,
    Query(max_length=64, pattern=FILTER_PATTERN, description="Exact value (max 64 characters)."),
]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Status = Literal["pending", "approved", "rejected", "edited"]
Kind = Literal["transfer", "allocation"]
ExceptionKind = Literal["low_confidence", "large_move", "soft_rule", "first_transfer_of_style"]
SortKey = Literal[
    "net_benefit",
    "expected_gain",
    "expected_source_loss",
    "transfer_cost",
    "units",
    "sku",
    "style",
    "category",
    "from_id",
    "to_id",
    "ship_date",
    "status",
    "id",
]


def _as_utc(value: dt.datetime) -> dt.datetime:
    """Times are stored as naive UTC; the API states the zone (RFC 3339)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[dt.datetime, AfterValidator(_as_utc)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorOut(BaseModel):
    """An error: ``detail`` says what went wrong."""

    detail: str


class ValidationErrorOut(BaseModel):
    """Invalid input: ``message`` summarises, ``errors`` lists each problem."""

    detail: str
    message: str
    errors: list[dict[str, Any]]


class ConflictOut(BaseModel):
    """A decision on a stale version: ``current`` is the line's state now."""

    detail: str
    current: dict[str, Any]


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid token"},
    403: {"model": ErrorOut, "description": "Role not allowed"},
    404: {"model": ErrorOut, "description": "Not found"},
    422: {"model": ValidationErrorOut, "description": "Invalid input"},
}


class UserOut(_Out):
    name: str
    role: str


class RunOut(_Out):
    id: int
    as_of: dt.date
    created_at: UtcDatetime
    created_by: str | None
    status: str
    data_fingerprint: str
    kpis: dict[str, Any]
    n_recommendations: int
    status_counts: dict[str, int]


class RunDetailOut(RunOut):
    config: dict[str, Any]
    by_status: dict[str, dict[str, float]]
    n_exceptions: int


class ClusterOut(_Out):
    cluster_id: str
    cluster_name: str
    stores: int
    on_hand: int | None
    sold_units: int | None
    weekly_demand: float | None
    sell_through: float | None
    cover_weeks: float | None
    inbound_units: int
    outbound_units: int


class KpisOut(_Out):
    run_id: int
    as_of: dt.date
    kpis: dict[str, Any]
    by_status: dict[str, dict[str, float]]
    clusters: list[ClusterOut]


class RecommendationOut(_Out):
    id: int
    run_id: int
    kind: str
    external_id: str | None
    sku: str
    style: str | None
    color: str | None
    size: str | None
    category: str | None
    from_id: str
    to_id: str
    from_cluster: str | None
    to_cluster: str | None
    units: int
    original_units: int
    ship_date: dt.date | None
    arrival_date: dt.date | None
    transfer_cost: float
    expected_gain: float
    expected_source_loss: float
    net_benefit: float
    gain_p10: float | None
    gain_p90: float | None
    reason: str
    from_on_hand: int | None
    to_on_hand: int | None
    from_weekly_demand: float | None
    to_weekly_demand: float | None
    from_cover_weeks: float | None
    to_cover_weeks: float | None
    n_exceptions: int
    status: str
    version: int
    decided_by: str | None
    decided_at: UtcDatetime | None
    decision_reason: str | None


class RecommendationPage(_Out):
    items: list[RecommendationOut]
    total: int
    page: int
    page_size: int


class BandPoint(_Out):
    week_start: dt.date
    mean: float
    p10: float
    p50: float
    p90: float


class ExceptionBrief(_Out):
    kind: str
    detail: str


class DecisionRecord(_Out):
    id: int
    action: str
    units: int
    reason: str | None
    user: str
    at: UtcDatetime
    from_version: int


class RecommendationDetail(RecommendationOut):
    as_of: dt.date
    explanation: str
    from_store: dict[str, Any]
    to_store: dict[str, Any]
    forecast: dict[str, list[BandPoint]]
    exceptions: list[ExceptionBrief]
    decisions: list[DecisionRecord]


class DecisionIn(BaseModel):
    """A decision on one line, naming the version of the line the decider saw."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject", "edit"]
    version: int = Field(ge=0, le=MAX_ID)
    units: int | None = Field(None, ge=1, le=1_000_000, description="New units (edit only).")
    reason: str | None = Field(
        None,
        max_length=workflow.MAX_REASON_LENGTH,
        pattern=TEXT_PATTERN,
        description="Why (required to reject).",
    )


class DecisionOut(_Out):
    recommendation_id: int
    status: str
    units: int
    version: int
    applied: bool
    decision_id: int | None


class FilterIn(BaseModel):
    """Which lines a bulk decision applies to (only pending lines are changed)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind | None = None
    cluster: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    store: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    from_store: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    to_store: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    category: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    style: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    sku: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    exception: ExceptionKind | Literal["any"] | None = None
    min_net_benefit: float | None = Field(None, ge=-1e12, le=1e12)


class BulkDecisionIn(BaseModel):
    """Approve or reject every pending line of a run matching ``filter``."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject"]
    reason: str | None = Field(None, max_length=workflow.MAX_REASON_LENGTH, pattern=TEXT_PATTERN)
    filter: FilterIn = Field(default_factory=FilterIn)


class BulkDecisionOut(_Out):
    matched: int
    applied: int
    status: str


class ExceptionOut(_Out):
    id: int
    kind: str
    detail: str
    recommendation_id: int
    sku: str
    style: str | None
    from_id: str
    to_id: str
    units: int
    net_benefit: float
    status: str


class ExceptionPage(_Out):
    items: list[ExceptionOut]
    total: int
    page: int
    page_size: int


class UserIn(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=FILTER_PATTERN)
    role: Literal["viewer", "planner", "admin"]


class NewUserOut(_Out):
    name: str
    role: str
    token: str


def _message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid input"


def _token_from(request: Request) -> tuple[str | None, bool]:
    """Return (token, via_cookie)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
        return None, False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else (None, False)


def csrf_token(token: str) -> str:
    """The anti-CSRF value the dashboard must echo in ``X-CSRF-Token`` for cookie writes."""
    return workflow.hash_token("csrf:" + token)[:32]


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def current_user(request: Request) -> UserInfo:
    """Resolve the Bearer token (or the dashboard cookie) to a user, else 401."""
    engine = _engine(request)
    token, via_cookie = _token_from(request)
    user = workflow.authenticate(engine, token)
    if user is None:
        if request.method not in ("GET", "HEAD"):
            workflow.record_attempt(
                engine,
                user=None,
                action=f"{request.method} {request.url.path}"[:32],
                target=None,
                outcome="unauthenticated",
            )
        raise HTTPException(
            status_code=401,
            detail="missing or invalid token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if via_cookie and request.method not in ("GET", "HEAD"):
        assert token is not None
        if request.headers.get("x-csrf-token") != csrf_token(token):
            raise HTTPException(status_code=403, detail="missing or wrong X-CSRF-Token")
    return user


Viewer = Annotated[UserInfo, Depends(current_user)]


def planner(request: Request, user: Viewer) -> UserInfo:
    """Require a planner or admin, else 403 (audited)."""
    if not user.can_decide:
        workflow.record_attempt(
            _engine(request),
            user=user.name,
            action=f"{request.method} {request.url.path}"[:32],
            target=None,
            outcome="forbidden",
            detail={"role": user.role},
        )
        raise HTTPException(status_code=403, detail=f"role {user.role} may not decide")
    return user


def admin(user: Viewer) -> UserInfo:
    """Require an admin, else 403."""
    if user.role != "admin":
        raise HTTPException(status_code=403, detail="admin role required")
    return user


Planner = Annotated[UserInfo, Depends(planner)]
Admin = Annotated[UserInfo, Depends(admin)]


def create_app(settings: Settings, database_url: str) -> FastAPI:
    """Build the API + dashboard app over the workflow database at ``database_url``.

    The database is migrated to the newest schema first. The engine is kept in
    ``app.state.engine``.
    """
    workflow.upgrade(database_url)
    engine = workflow.connect(database_url)
    app = FastAPI(
        title="stocktailor",
        version=__version__,
        description="Review, approve, reject, edit and export stocktailor's recommendations.",
        docs_url=None,
        redoc_url=None,
    )

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI served from the vendored files (works offline)."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="stocktailor API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.state.engine = engine
    app.state.settings = settings

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(x) for x in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        msg = _message(errors)
        return JSONResponse(
            status_code=422, content={"detail": msg, "message": msg, "errors": errors}
        )

    def _valerr(exc: ValueError) -> JSONResponse:
        msg = str(exc)
        return JSONResponse(status_code=422, content={"detail": msg, "message": msg, "errors": []})

    def _run_or_404(run_id: int) -> dict[str, Any]:
        try:
            return workflow.get_run(engine, run_id)
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        """Liveness probe (no token needed)."""
        return {"status": "ok"}

    @app.get("/api/v1/me", response_model=UserOut, responses=ERRORS, tags=["auth"])
    def me(user: Viewer) -> UserOut:
        """The signed-in user and role."""
        return UserOut(name=user.name, role=user.role)

    @app.post(
        "/api/v1/users", response_model=NewUserOut, status_code=201, responses=ERRORS, tags=["auth"]
    )
    def new_user(body: UserIn, user: Admin) -> Any:
        """Create a user (admin only); the token is shown once and stored hashed."""
        try:
            token = workflow.create_user(engine, body.name, body.role)
        except ValueError as exc:
            return _valerr(exc)
        return NewUserOut(name=body.name, role=body.role, token=token)

    @app.get("/api/v1/runs", response_model=list[RunOut], responses=ERRORS, tags=["runs"])
    def runs(user: Viewer) -> Any:
        """Published runs, newest first."""
        return workflow.list_runs(engine)

    @app.get("/api/v1/runs/{run_id}", response_model=RunDetailOut, responses=ERRORS, tags=["runs"])
    def run(run_id: IdPath, user: Viewer) -> Any:
        """One run: KPIs, settings, line counts and totals by status."""
        return _run_or_404(run_id)

    @app.get("/api/v1/runs/{run_id}/kpis", response_model=KpisOut, responses=ERRORS, tags=["runs"])
    def kpis(run_id: IdPath, user: Viewer) -> Any:
        """Headline KPIs of a run, totals by status, and sell-through and cover by cluster."""
        r = _run_or_404(run_id)
        return {
            "run_id": run_id,
            "as_of": r["as_of"],
            "kpis": r["kpis"],
            "by_status": r["by_status"],
            "clusters": workflow.cluster_summary(engine, run_id),
        }

    @app.get(
        "/api/v1/recommendations",
        response_model=RecommendationPage,
        responses=ERRORS,
        tags=["recommendations"],
    )
    def recommendations(
        user: Viewer,
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
        )
        p = workflow.list_recommendations(
            engine,
            rid,
            filters,
            sort=sort,
            descending=order == "desc",
            page=page,
            page_size=page_size,
        )
        return {"items": p.items, "total": p.total, "page": p.page, "page_size": p.page_size}

    @app.get(
        "/api/v1/recommendations/{rec_id}",
        response_model=RecommendationDetail,
        responses=ERRORS,
        tags=["recommendations"],
    )
    def recommendation(rec_id: IdPath, user: Viewer) -> Any:
        """One line with its explanation, both ends, forecast bands, exceptions and history."""
        try:
            return workflow.get_recommendation(engine, rec_id)
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    @app.post(
        "/api/v1/recommendations/{rec_id}/decision",
        response_model=DecisionOut,
        responses={**ERRORS, 409: {"model": ConflictOut, "description": "Stale version"}},
        tags=["decisions"],
    )
    def decision(rec_id: IdPath, body: DecisionIn, user: Planner) -> Any:
        """Approve, reject (with a reason) or edit the units of a line.

        ``version`` is the line's version you saw: 409 if it changed meanwhile, unless this
        request repeats the decision that changed it (then it is answered again, idempotently).
        """
        try:
            res = workflow.decide(
                engine,
                rec_id,
                action=body.action,
                version=body.version,
                user=user.name,
                units=body.units,
                reason=body.reason,
            )
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except Conflict as exc:
            return JSONResponse(
                status_code=409, content={"detail": str(exc), "current": exc.current}
            )
        except ValueError as exc:
            return _valerr(exc)
        return res.__dict__

    @app.post(
        "/api/v1/runs/{run_id}/decisions/bulk",
        response_model=BulkDecisionOut,
        responses=ERRORS,
        tags=["decisions"],
    )
    def bulk(run_id: IdPath, body: BulkDecisionIn, user: Planner) -> Any:
        """Approve or reject every pending line of a run matching the filter (atomic)."""
        f = RecFilter(**body.filter.model_dump())
        try:
            res = workflow.bulk_decide(
                engine, run_id, f, action=body.action, user=user.name, reason=body.reason
            )
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except ValueError as exc:
            return _valerr(exc)
        return {"matched": res.matched, "applied": res.applied, "status": res.status}

    @app.get(
        "/api/v1/runs/{run_id}/exceptions",
        response_model=ExceptionPage,
        responses=ERRORS,
        tags=["recommendations"],
    )
    def exceptions(
        run_id: IdPath,
        user: Viewer,
        kind: ExceptionKind | None = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    ) -> Any:
        """Lines flagged for review: low confidence, large moves, soft rules, first transfers."""
        _run_or_404(run_id)
        p = workflow.list_exceptions(engine, run_id, kind=kind, page=page, page_size=page_size)
        return {"items": p.items, "total": p.total, "page": p.page, "page_size": p.page_size}

    @app.get(
        "/api/v1/runs/{run_id}/export",
        responses={
            **ERRORS,
            200: {
                "content": {
                    "text/csv": {},
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
                },
                "description": "Approved lines: ship_from, ship_to, sku, units, ship_date",
            },
        },
        response_class=Response,
        tags=["export"],
    )
    def export(run_id: IdPath, user: Viewer, format: Literal["csv", "xlsx"] = "csv") -> Response:
        """Approved and edited lines for the warehouse system as CSV or XLSX."""
        try:
            data = workflow.export_approved(engine, run_id, format)
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        media = (
            "text/csv; charset=utf-8"
            if format == "csv"
            else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        return Response(
            content=data,
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="stocktailor-run-{run_id}.{format}"'
            },
        )

    from stocktailor.web import mount_dashboard

    mount_dashboard(app, engine, settings)
    return app


def serve_app(
    settings: Settings, database_url: str, host: str | None = None, port: int | None = None
) -> None:
    """Run the app with uvicorn until interrupted (``stocktailor serve``).

    Parameters
    ----------
    host, port
        Default ``settings.serve.host`` (127.0.0.1) and ``settings.serve.port``.
    """
    import uvicorn

    app = create_app(settings, database_url)
    uvicorn.run(
        app,
        host=host or settings.serve.host,
        port=port or settings.serve.port,
        log_level="info",
    )
