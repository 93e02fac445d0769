"""What every dashboard page shares: templates, the signed-in user, CSRF, filters, formats."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine

from stocktailor import workflow
from stocktailor.api.schemas import FILTER_PATTERN
from stocktailor.api.security import COOKIE, csrf_ok, csrf_token
from stocktailor.money import format_money
from stocktailor.product_text import known, product_words
from stocktailor.workflow import RecFilter, UserInfo

__all__ = [
    "KPI_SUMS",
    "PAGE_SIZE",
    "STATIC_DIR",
    "TEMPLATE_DIR",
    "QueueQuery",
    "asset",
    "check_csrf",
    "default_currency",
    "engine_of",
    "is_money_kpi",
    "page",
    "parse_queue",
    "run_currency",
    "run_id_or_latest",
    "templates",
    "to_login",
    "web_user",
]

STATIC_DIR = resources.files("stocktailor.web") / "static"
TEMPLATE_DIR = resources.files("stocktailor.web") / "templates"
PAGE_SIZE = 25


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
    group: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    view: str = Field("lines", pattern=r"^(lines|groups)$")

    def filters(self) -> RecFilter:
        return RecFilter(
            status=self.status,
            kind=self.kind,
            cluster=self.cluster,
            store=self.store,
            category=self.category,
            style=self.style,
            exception=self.exception,
            group=self.group,
        )

    def params(self, **changes: Any) -> str:
        data = {k: v for k, v in self.model_dump().items() if v not in (None, "")}
        data.update(changes)
        return urlencode({k: v for k, v in data.items() if v not in (None, "")})


def parse_queue(request: Request) -> QueueQuery:
    raw = {k: v for k, v in request.query_params.items() if v != ""}
    try:
        return QueueQuery.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise HTTPException(status_code=422, detail=f"{loc}: {first['msg']}") from None


def default_currency(request: Request) -> str:
    """The ISO 4217 code of the app's settings (``economics.currency``)."""
    settings = getattr(request.app.state, "settings", None)
    return "USD" if settings is None else str(settings.economics.currency)


def run_currency(runs: list[dict[str, Any]], run_id: Any, fallback: str) -> str:
    """The currency run ``run_id`` was planned in (its stored settings), else ``fallback``."""
    for r in runs:
        if r.get("id") == run_id:
            config = r.get("config") or {}
            economics = config.get("economics") if isinstance(config, dict) else None
            code = economics.get("currency") if isinstance(economics, dict) else None
            return str(code) if code else fallback
    return fallback


@pass_context
def _fmt_money(ctx: Context, value: Any) -> str:
    """Money in the page's currency: cents below 1,000 only (``$12.50``, ``3.993.749 ₫``)."""
    if value is None:
        return ""
    return format_money(float(value), str(ctx.get("currency") or "USD"))


def _fmt_num(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{float(value):,.{digits}f}"


def _fmt_kpi(value: Any) -> str:
    """A KPI: whole numbers without decimals (units, lanes), others with two below 1,000."""
    if value is None:
        return "–"
    number = float(value)
    if number.is_integer() or abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:,.2f}"


_MONEY_WORDS = ("benefit", "cost", "objective", "value", "profit", "revenue", "gain", "loss")

KPI_SUMS = {
    "transfer_cost": "sum of the transfer lines' costs",
    "expected_net_benefit": "sum of the net benefit of the store-to-store transfer lines",
    "allocation_net_benefit": "sum of the net benefit of the warehouse allocation lines",
    "plan_lines_net_benefit": "sum of the net benefit of every line (transfers + allocations)",
    "plan_objective": "the optimiser's value of the whole plan after all costs",
}
"""What each money tile of the overview adds up (shown under its figure)."""


def is_money_kpi(name: str) -> bool:
    """A KPI in currency units (by its name: benefit, cost, objective, value, profit...)."""
    return any(w in name for w in _MONEY_WORDS)


@pass_context
def _fmt_kpi_value(ctx: Context, value: Any, name: str) -> str:
    """A headline KPI: money in the page's currency, counts as whole numbers."""
    return _fmt_money(ctx, value) if is_money_kpi(name) else _fmt_kpi(value)


_VERSIONS: dict[str, str] = {}


def _fmt_known(value: Any) -> str:
    """``value`` as text, empty for a placeholder (``na``, ``-``...): never shown on a page."""
    return known(value) or ""


def asset(name: str) -> str:
    """URL of a static file with its content hash (``?v=``): cacheable for a year, and a
    changed file gets a new URL."""
    if name not in _VERSIONS:
        data = (STATIC_DIR / name).read_bytes()
        _VERSIONS[name] = hashlib.sha256(data).hexdigest()[:12]
    return f"/static/{name}?v={_VERSIONS[name]}"


templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
templates.env.globals["asset"] = asset
templates.env.filters["money"] = _fmt_money
templates.env.filters["kpi_value"] = _fmt_kpi_value
templates.env.globals["kpi_sums"] = KPI_SUMS
templates.env.filters["num"] = _fmt_num
templates.env.filters["kpi"] = _fmt_kpi
templates.env.filters["known"] = _fmt_known
templates.env.globals["product_words"] = product_words


def engine_of(request: Request) -> Engine:
    """The workflow database of the app."""
    engine: Engine = request.app.state.engine
    return engine


def web_user(request: Request) -> tuple[UserInfo | None, str | None]:
    """The signed-in user and the session id of the cookie (both None when signed out)."""
    token = request.cookies.get(COOKIE)
    user = workflow.authenticate(engine_of(request), token, session=True)
    return (user, token) if user is not None else (None, None)


def page(
    request: Request,
    name: str,
    user: UserInfo,
    token: str,
    status_code: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    """Render page ``name`` for ``user`` with the run picker and the CSRF value."""
    runs = workflow.list_runs(engine_of(request))
    context = {"user": user, "csrf": csrf_token(token), "runs": runs, **ctx}
    context.setdefault("currency", run_currency(runs, _run_id(ctx), default_currency(request)))
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _run_id(ctx: dict[str, Any]) -> Any:
    """The run a page shows: its ``run``, its line's run, or ``run_id``."""
    run, rec = ctx.get("run"), ctx.get("rec")
    if isinstance(run, dict):
        return run.get("id")
    if isinstance(rec, dict):
        return rec.get("run_id")
    return ctx.get("run_id")


def to_login() -> RedirectResponse:
    """Send a signed-out visitor to the sign-in page."""
    return RedirectResponse("/login", status_code=303)


def run_id_or_latest(request: Request, run_id: int | None) -> int | None:
    """``run_id``, else the newest run (None when nothing is published)."""
    return run_id if run_id is not None else workflow.latest_run_id(engine_of(request))


def check_csrf(request: Request, token: str) -> None:
    """403 unless the request echoes the CSRF value of the signed-in token."""
    if not csrf_ok(request, token):
        user = workflow.authenticate(engine_of(request), token, session=True)
        workflow.record_attempt(
            engine_of(request),
            user=user.name if user else None,
            action=f"{request.method} {request.url.path}"[:32],
            target=None,
            outcome="csrf",
        )
        raise HTTPException(status_code=403, detail="missing or wrong X-CSRF-Token")


@dataclass(frozen=True)
class RunPage:
    """What a page about one published run starts from: who asks, the query and the run."""

    user: UserInfo
    token: str
    query: QueueQuery
    run_id: int
    run: dict[str, Any]


def open_run_page(request: Request) -> RunPage | Response:
    """The signed-in user and the run a page shows, or the response to send instead: the
    sign-in redirect, the empty page when nothing is published, 404 for an unknown run."""
    user, token = web_user(request)
    if user is None or token is None:
        return to_login()
    q = parse_queue(request)
    rid = run_id_or_latest(request, q.run_id)
    if rid is None:
        return page(request, "empty.html", user, token, run=None)
    try:
        run = workflow.get_run(engine_of(request), rid)
    except workflow.NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return RunPage(user, token, q, rid, run)
