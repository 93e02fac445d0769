"""The app: the API routers, error answers, the offline Swagger UI and the dashboard."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from stocktailor import __version__, workflow
from stocktailor.api import decisions, exports, recommendations, results, rules, runs, users
from stocktailor.api.security import security_headers
from stocktailor.config import Settings

__all__ = ["ROUTERS", "create_app", "serve_app"]

logger = logging.getLogger(__name__)

ROUTERS: list[APIRouter] = [
    users.router,
    runs.router,
    recommendations.router,
    decisions.router,
    exports.router,
    rules.router,
    results.router,
]
"""The API's routers, one per resource (a new resource adds its router here)."""


def _message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid input"


def is_api_path(path: str) -> bool:
    """API paths answer errors in JSON; every other path is a page and answers in HTML."""
    return path.startswith(("/api/", "/openapi", "/healthz"))


def _html_error(request: Request, status: int, detail: str) -> Response:
    # The page renderer lives with the pages; imported when an error page is needed.
    from stocktailor.web.errors import error_page

    return error_page(request, status, detail)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if is_api_path(request.url.path):
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail}, headers=exc.headers
        )
    return _html_error(request, exc.status_code, str(exc.detail))


async def _headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    versioned = "v" in request.query_params
    for name, value in security_headers(request.url.path, versioned).items():
        response.headers.setdefault(name, value)
    return response


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(x) for x in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    msg = _message(errors)
    if not is_api_path(request.url.path):
        return _html_error(request, 422, msg)
    return JSONResponse(status_code=422, content={"detail": msg, "message": msg, "errors": errors})


meta = APIRouter()


@meta.get("/docs", include_in_schema=False)
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


@meta.get("/healthz", tags=["meta"])
def healthz() -> dict[str, str]:
    """Liveness probe (no token needed)."""
    return {"status": "ok"}


def create_app(settings: Settings, database_url: str) -> FastAPI:
    """Build the API + dashboard app over the workflow database at ``database_url``.

    The database is migrated to the newest schema first. The engine is kept in
    ``app.state.engine``, the settings in ``app.state.settings``.
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
    app.state.engine = engine
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.middleware("http")(_headers)
    app.include_router(meta)
    for router in ROUTERS:
        app.include_router(router)
    # The pages import the shared cookie/CSRF rules from stocktailor.api.security; importing
    # them here, at call time, keeps ``import stocktailor.web`` first working too.
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
