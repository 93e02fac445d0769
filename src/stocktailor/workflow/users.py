"""Users and API tokens: create, issue, authenticate (tokens are stored hashed)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import Connection, Engine, and_, insert, or_, select, update

from stocktailor.workflow.common import NotFound, UserInfo, audit, now_utc
from stocktailor.workflow.db import write_engine
from stocktailor.workflow.models import ROLES, ApiToken, User

__all__ = [
    "SESSION_HOURS",
    "authenticate",
    "create_user",
    "end_session",
    "ensure_demo_user",
    "hash_token",
    "issue_token",
    "start_session",
]


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which ``token`` is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64:
        msg = f"users.name: must be 1 to 64 characters, got {len(name)}"
        raise ValueError(msg)
    return name


def _store_token(conn: Connection, name: str, token: str, label: str | None) -> None:
    """Store ``token`` hashed for the existing user ``name``; :class:`NotFound` without one."""
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


def issue_token(engine: Engine, name: str, *, label: str | None = None) -> str:
    """Issue a new API token for the existing user ``name``; only its hash is stored."""
    token = "st_" + secrets.token_urlsafe(32)
    with write_engine(engine).begin() as conn:
        _store_token(conn, name, token, label)
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


SESSION_LABEL = "session"
"""Label of a dashboard session id in ``api_tokens`` (never accepted as an API token)."""

SESSION_HOURS = 12
"""A dashboard session lasts this long after sign-in, hours."""


def start_session(engine: Engine, name: str) -> str:
    """Open a dashboard session for user ``name``: a fresh random id, stored hashed.

    Every sign-in gets a new id (rotation); :func:`end_session` revokes it.
    """
    session_id = "ss_" + secrets.token_urlsafe(32)
    with write_engine(engine).begin() as conn:
        _store_token(conn, name, session_id, SESSION_LABEL)
        audit(conn, name, "sign_in", f"user:{name}", "applied", {})
    return session_id


def end_session(engine: Engine, session_id: str | None) -> bool:
    """Revoke a dashboard session (sign-out); True when a live session was ended."""
    if not session_id or len(session_id) > 200:
        return False
    with write_engine(engine).begin() as conn:
        res = conn.execute(
            update(ApiToken)
            .where(
                ApiToken.token_sha256 == hash_token(session_id),
                ApiToken.label == SESSION_LABEL,
                ApiToken.revoked.is_(False),
            )
            .values(revoked=True)
        )
        return bool(res.rowcount)


def authenticate(engine: Engine, token: str | None, *, session: bool = False) -> UserInfo | None:
    """Return the active user owning ``token``, or ``None``.

    ``session=False`` accepts API tokens only; ``session=True`` accepts only a dashboard
    session id that is neither revoked nor older than :data:`SESSION_HOURS`.
    """
    if not token or len(token) > 200:
        return None
    kind = (
        and_(
            ApiToken.label == SESSION_LABEL,
            ApiToken.created_at > now_utc() - dt.timedelta(hours=SESSION_HOURS),
        )
        if session
        else or_(ApiToken.label.is_(None), ApiToken.label != SESSION_LABEL)
    )
    with engine.connect() as conn:
        row = conn.execute(
            select(User.name, User.role)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(
                ApiToken.token_sha256 == hash_token(token),
                ApiToken.revoked.is_(False),
                User.active.is_(True),
                kind,
            )
        ).one_or_none()
    return None if row is None else UserInfo(name=row.name, role=row.role)
