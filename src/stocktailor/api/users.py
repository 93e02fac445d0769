"""Users: who am I, and new users (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from stocktailor import workflow
from stocktailor.api.deps import Admin, EngineDep, Viewer, validation_error
from stocktailor.api.schemas import ERRORS, NewUserOut, UserIn, UserOut

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.get("/me", response_model=UserOut, responses=ERRORS)
def me(user: Viewer) -> UserOut:
    """The signed-in user and role."""
    return UserOut(name=user.name, role=user.role)


@router.post("/users", response_model=NewUserOut, status_code=201, responses=ERRORS)
def new_user(body: UserIn, user: Admin, engine: EngineDep) -> Any:
    """Create a user (admin only); the token is shown once and stored hashed."""
    try:
        token = workflow.create_user(engine, body.name, body.role)
    except ValueError as exc:
        return validation_error(exc)
    return NewUserOut(name=body.name, role=body.role, token=token)
