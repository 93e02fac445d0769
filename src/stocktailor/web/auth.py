"""Signing in and out."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from stocktailor import workflow
from stocktailor.api.security import COOKIE, SignInThrottle, client_key, csrf_token
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


def _throttle(request: Request) -> SignInThrottle:
    state = request.app.state
    if getattr(state, "signin_throttle", None) is None:
        limit = state.settings.serve.signin_failures_per_minute
        state.signin_throttle = SignInThrottle(limit=limit, window_seconds=60.0)
    throttle: SignInThrottle = state.signin_throttle
    return throttle


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: str = Form(..., max_length=200)) -> Response:
    """Sign in with an API token: a new server-side session id goes into the cookie (the
    token itself never does); failed attempts are counted per client address."""
    engine = engine_of(request)
    throttle, client = _throttle(request), client_key(request)
    wait = throttle.check(client)
    if wait > 0:
        workflow.record_attempt(
            engine,
            user=None,
            action="login",
            target=None,
            outcome="throttled",
            detail={"client": client},
        )
        msg = f"Too many failed sign-ins from this address. Try again in {wait:.0f} seconds."
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": msg},
            status_code=429,
            headers={"Retry-After": str(int(wait + 0.999))},
        )
    user = workflow.authenticate(engine, token.strip())
    if user is None:
        throttle.failed(client)
        workflow.record_attempt(
            engine, user=None, action="login", target=None, outcome="unauthenticated"
        )
        return templates.TemplateResponse(
            request, "login.html", {"error": "Unknown or revoked token."}, status_code=401
        )
    throttle.succeeded(client)
    old = request.cookies.get(COOKIE)
    workflow.end_session(engine, old)
    session_id = workflow.start_session(engine, user.name)
    workflow.record_attempt(engine, user=user.name, action="login", target=None, outcome="applied")
    resp = RedirectResponse("/overview", status_code=303)
    resp.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.serve.cookie_secure,
        max_age=workflow.SESSION_HOURS * 3600,
    )
    return resp


@router.post("/logout")
def logout(request: Request, csrf: str = Form("", max_length=64)) -> Response:
    """Sign out: needs the page's CSRF value; the session is revoked on the server."""
    session_id = request.cookies.get(COOKIE)
    user = workflow.authenticate(engine_of(request), session_id, session=True)
    if user is not None and session_id is not None:
        if csrf != csrf_token(session_id):
            workflow.record_attempt(
                engine_of(request), user=user.name, action="logout", target=None, outcome="csrf"
            )
            raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
        workflow.end_session(engine_of(request), session_id)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


@router.get("/")
def home(request: Request) -> Response:
    user, _ = web_user(request)
    return RedirectResponse("/overview" if user else "/login", status_code=303)
