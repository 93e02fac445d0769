"""Dependencies of the API routes: the engine, the current user and the roles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from stocktailor import workflow
from stocktailor.api.security import csrf_ok, token_from
from stocktailor.workflow import NotFound, UserInfo

__all__ = [
    "Admin",
    "EngineDep",
    "Planner",
    "Viewer",
    "admin",
    "current_user",
    "get_engine",
    "planner",
    "refuse",
    "run_or_404",
    "validation_error",
]


def get_engine(request: Request) -> Engine:
    """The workflow database of the app (``app.state.engine``)."""
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def refuse(
    request: Request, user: str | None, outcome: str, detail: dict[str, Any] | None = None
) -> None:
    """Audit a refused request (``outcome``: unauthenticated, forbidden, csrf, throttled)."""
    workflow.record_attempt(
        get_engine(request),
        user=user,
        action=f"{request.method} {request.url.path}"[:32],
        target=None,
        outcome=outcome,
        detail=detail,
    )


def current_user(request: Request) -> UserInfo:
    """Resolve the Bearer token (or the dashboard cookie) to a user, else 401."""
    engine = get_engine(request)
    token, via_cookie = token_from(request)
    user = workflow.authenticate(engine, token, session=via_cookie)
    if user is None:
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
        if not csrf_ok(request, token):
            refuse(request, user.name, "csrf")
            raise HTTPException(status_code=403, detail="missing or wrong X-CSRF-Token")
    return user


Viewer = Annotated[UserInfo, Depends(current_user)]


def planner(request: Request, user: Viewer) -> UserInfo:
    """Require a planner or admin, else 403 (audited)."""
    if not user.can_decide:
        workflow.record_attempt(
            get_engine(request),
            user=user.name,
            action=f"{request.method} {request.url.path}"[:32],
            target=None,
            outcome="forbidden",
            detail={"role": user.role},
        )
        raise HTTPException(status_code=403, detail=f"role {user.role} may not decide")
    return user


def admin(request: Request, user: Viewer) -> UserInfo:
    """Require an admin, else 403 (audited)."""
    if user.role != "admin":
        refuse(request, user.name, "forbidden", {"role": user.role})
        raise HTTPException(status_code=403, detail="admin role required")
    return user


Planner = Annotated[UserInfo, Depends(planner)]
Admin = Annotated[UserInfo, Depends(admin)]


def validation_error(exc: ValueError) -> JSONResponse:
    """A 422 answer for a ``ValueError`` raised by the workflow."""
    msg = str(exc)
    return JSONResponse(status_code=422, content={"detail": msg, "message": msg, "errors": []})


def run_or_404(engine: Engine, run_id: int) -> dict[str, Any]:
    """The run ``run_id``, else 404."""
    try:
        return workflow.get_run(engine, run_id)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
