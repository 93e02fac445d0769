"""The planner dashboard: Jinja2 pages, HTMX partials and Plotly charts, all served locally.

:func:`mount_dashboard` adds the pages to the API app. JavaScript (``htmx.min.js``,
``plotly.min.js``) is vendored in ``static/`` so the dashboard works offline; charts are plain
Plotly traces, the store map a ``scattergeo`` whose base layers (topojson) come from
:mod:`stocktailor.basemap`, served at ``/static/topojson/`` (no map tiles, no CDN). Sign-in
stores the token in an HttpOnly, SameSite=Strict cookie; writes also carry an ``X-CSRF-Token``
header derived from it (both rules in :mod:`stocktailor.api.security`).

One module per page group: ``auth`` (sign in/out), ``overview``, ``queue``, ``detail``,
``exceptions``, ``export``, ``rules`` (auto-approval, admins), ``signals`` (rising post
series and the lines they touch), ``results`` (what approved transfers earned, as
measured); ``common`` (templates, user, CSRF, filters), ``figures``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from stocktailor.basemap import TOPOJSON_DIR
from stocktailor.config import Settings
from stocktailor.web import (
    auth,
    detail,
    errors,
    exceptions,
    export,
    overview,
    queue,
    results,
    rules,
    signals,
)
from stocktailor.web.common import STATIC_DIR, TEMPLATE_DIR

__all__ = ["PAGES", "STATIC_DIR", "TEMPLATE_DIR", "mount_dashboard"]

PAGES: list[APIRouter] = [
    auth.router,
    overview.router,
    queue.router,
    detail.router,
    exceptions.router,
    export.router,
    rules.router,
    signals.router,
    results.router,
    errors.router,
]
"""The dashboard's page groups (a new page group adds its router here)."""


def mount_dashboard(app: FastAPI, engine: Engine, settings: Settings) -> None:
    """Add the dashboard pages and the vendored static files to ``app``.

    The pages read the engine and settings from ``app.state`` (set by ``create_app``).
    """
    app.state.engine = engine
    app.state.settings = settings
    # before /static: the first matching mount serves the request
    app.mount("/static/topojson", StaticFiles(directory=str(TOPOJSON_DIR)), name="topojson")
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for router in PAGES:
        app.include_router(router)
