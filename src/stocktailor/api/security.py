"""What the API and the dashboard share about who is calling: the sign-in cookie and CSRF.

The API reads a Bearer token or the dashboard's cookie; the dashboard sets the cookie and
checks the ``X-CSRF-Token`` its pages echo on writes. Both import from here (the API never
imports a page module for it, and the pages never import the API).
"""

from __future__ import annotations

import threading
import time

from fastapi import Request

from stocktailor import workflow

__all__ = [
    "COOKIE",
    "CSP",
    "CSRF_HEADER",
    "SECURITY_HEADERS",
    "SignInThrottle",
    "client_key",
    "csrf_ok",
    "csrf_token",
    "security_headers",
    "token_from",
]

COOKIE = "stocktailor_token"
"""Name of the dashboard's sign-in cookie (HttpOnly, SameSite=Strict)."""

CSRF_HEADER = "x-csrf-token"


def token_from(request: Request) -> tuple[str | None, bool]:
    """Return (token, via_cookie): the Bearer token, else the dashboard cookie."""
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


def csrf_ok(request: Request, token: str) -> bool:
    """Whether the request echoes the CSRF value of ``token``."""
    return request.headers.get(CSRF_HEADER) == csrf_token(token)


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
"""Content-Security-Policy of every page: nothing from other origins, no inline scripts
(Plotly and htmx set inline styles), never framed."""

DOCS_CSP = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
"""The Swagger UI page starts itself with one inline script."""

SECURITY_HEADERS: dict[str, str] = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
"""Headers on every response, besides the Content-Security-Policy."""

STATIC_CACHE = "public, max-age=31536000, immutable"
"""Cache-Control of a versioned static asset (its URL changes with its content)."""


def security_headers(path: str, versioned: bool) -> dict[str, str]:
    """The hardening headers of a response to ``path`` (``versioned``: a ``?v=`` asset)."""
    out = dict(SECURITY_HEADERS)
    out["Content-Security-Policy"] = DOCS_CSP if path == "/docs" else CSP
    if path.startswith("/static/"):
        out["Cache-Control"] = STATIC_CACHE if versioned else "public, max-age=3600"
    return out


class SignInThrottle:
    """Failed sign-ins per client address in a sliding window (in memory, per process).

    ``check`` answers the seconds to wait (0 = allowed); ``failed`` records a failure;
    ``succeeded`` forgets the client's failures.
    """

    def __init__(self, limit: int = 10, window_seconds: float = 60.0) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window_seconds]
        self._failures[key] = times
        return times

    def check(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(key, now)
            if len(times) < self.limit:
                return 0.0
            return max(1.0, self.window_seconds - (now - times[0]))

    def failed(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def client_key(request: Request) -> str:
    """The client address a throttle counts by."""
    return request.client.host if request.client is not None else "unknown"
