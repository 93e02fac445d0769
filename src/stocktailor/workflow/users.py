"""Users and API tokens: create, issue, authenticate (tokens are stored hashed)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Engine, insert, select

from stocktailor.workflow.common import NotFound, UserInfo, audit, now_utc
from stocktailor.workflow.db import write_engine
from stocktailor.workflow.models import ROLES, ApiToken, User

__all__ = ["authenticate", "create_user", "ensure_demo_user", "hash_token", "issue_token"]


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which ``token`` is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64:
        msg = f"users.name: must be 1 to 64 characters, got {len(name)}"
        raise ValueError(msg)
    return name


def issue_token(engine: Engine, name: str, *, label: str | None = None) -> str:
    """Issue a new API token for the existing user ``name``; only its hash is stored."""
    token = "st_" + secrets.token_urlsafe(32)
    with write_engine(engine).begin() as conn:
        user_id = conn.execute(select(User.id).where(User.name == name)).scalar_one_or_none()
        if user_id is None:
            msg = f"users: no user named {name!r}"
            raise NotFound(msg)
        conn.execute(
            insert(ApiToken),
            [
                {
                    "user_id": user_id,
                    "token_sha256": hash_token(token),
                    "label": label,
                    "created_at": now_utc(),
                    "revoked": False,
                }
            ],
        )
        audit(conn, name, "issue_token", f"user:{name}", "applied", {"label": label})
    return token


def create_user(engine: Engine, name: str, role: str, *, label: str | None = None) -> str:
    """Create a user with ``role`` (viewer, planner, admin) and return a fresh API token.

    Raises
    ------
    ValueError
        If the role is unknown, the name invalid or already taken.
    """
    name = _check_name(name)
    if role not in ROLES:
        msg = f"users.role: {role!r} is not one of {', '.join(ROLES)}"
        raise ValueError(msg)
    with write_engine(engine).begin() as conn:
        exists = conn.execute(select(User.id).where(User.name == name)).scalar_one_or_none()
        if exists is not None:
            msg = f"users.name: {name!r} already exists"
            raise ValueError(msg)
        conn.execute(
            insert(User), [{"name": name, "role": role, "active": True, "created_at": now_utc()}]
        )
        audit(conn, None, "create_user", f"user:{name}", "applied", {"role": role})
    return issue_token(engine, name, label=label)


def ensure_demo_user(engine: Engine, name: str = "demo") -> str:
    """Make sure a planner named ``name`` exists and return a new token for it."""
    with engine.connect() as conn:
        exists = conn.execute(select(User.id).where(User.name == name)).scalar_one_or_none()
    if exists is None:
        return create_user(engine, name, "planner", label="demo")
    return issue_token(engine, name, label="demo")


def authenticate(engine: Engine, token: str | None) -> UserInfo | None:
    """Return the active user owning ``token``, or ``None``."""
    if not token or len(token) > 200:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(User.name, User.role)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(
                ApiToken.token_sha256 == hash_token(token),
                ApiToken.revoked.is_(False),
                User.active.is_(True),
            )
        ).one_or_none()
    return None if row is None else UserInfo(name=row.name, role=row.role)
