"""HTTP API and dashboard of the planner workflow (FastAPI, OpenAPI at ``/docs``).

:func:`create_app` builds the app over a workflow database: the JSON API under ``/api/v1``
(Bearer token) and the dashboard (cookie set by signing in; pages in :mod:`stocktailor.web`).
Every filter is validated strictly (allowed values, a character whitelist, length and range
bounds): anything else is answered 422 with a message. Writes need a planner or admin (401
without a token, 403 for a viewer); refused writes are audited.

Layout: one router per resource (``runs``, ``recommendations``, ``decisions``, ``exports``,
``results``, ``users``), ``deps`` (engine, current user, planner, admin), ``schemas`` (request
and response models), ``security`` (the cookie and CSRF rules shared with the dashboard), ``app``.
"""

from __future__ import annotations

from stocktailor.api.app import create_app, serve_app
from stocktailor.api.schemas import FILTER_PATTERN, MAX_PAGE_SIZE
from stocktailor.api.security import COOKIE, csrf_token

__all__ = [
    "COOKIE",
    "FILTER_PATTERN",
    "MAX_PAGE_SIZE",
    "create_app",
    "csrf_token",
    "serve_app",
]
