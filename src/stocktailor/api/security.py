"""What the API and the dashboard share about who is calling: the sign-in cookie and CSRF.

The API reads a Bearer token or the dashboard's cookie; the dashboard sets the cookie and
checks the ``X-CSRF-Token`` its pages echo on writes. Both import from here (the API never
imports a page module for it, and the pages never import the API).
"""

from __future__ import annotations

from fastapi import Request

from stocktailor import workflow

__all__ = ["COOKIE", "CSRF_HEADER", "csrf_token", "token_from"]

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
