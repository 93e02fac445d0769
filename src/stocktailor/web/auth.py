"""Signing in and out."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from stocktailor import workflow
from stocktailor.api.security import COOKIE
from stocktailor.web.common import (
    engine_of,
    templates,
    web_user,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: str = Form(..., max_length=200)) -> Response:
    user = workflow.authenticate(engine_of(request), token.strip())
    if user is None:
        workflow.record_attempt(
            engine_of(request), user=None, action="login", target=None, outcome="unauthenticated"
        )
        return templates.TemplateResponse(
            request, "login.html", {"error": "Unknown or revoked token."}, status_code=401
        )
    workflow.record_attempt(
        engine_of(request), user=user.name, action="login", target=None, outcome="applied"
    )
    resp = RedirectResponse("/overview", status_code=303)
    resp.set_cookie(
        COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.serve.cookie_secure,
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
