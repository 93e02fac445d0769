"""Shared types of the workflow: errors, results, filters, and the append-only audit log."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.engine import Connection

from stocktailor.workflow.db import write_engine
from stocktailor.workflow.models import AuditEntry

__all__ = [
    "MAX_REASON_LENGTH",
    "BulkResult",
    "Conflict",
    "DecisionResult",
    "NotFound",
    "Page",
    "RecFilter",
    "UserInfo",
    "audit",
    "audit_row",
    "jsonable",
    "now_utc",
    "record_attempt",
]

MAX_REASON_LENGTH = 1000
"""Longest accepted decision reason, characters."""


class Conflict(Exception):
    """A decision was based on a version of the line that is no longer current (HTTP 409)."""

    def __init__(self, message: str, *, current: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.current: dict[str, Any] = dict(current or {})


class NotFound(LookupError):
    """A run or recommendation does not exist (HTTP 404)."""


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user."""

    name: str
    role: str

    @property
    def can_decide(self) -> bool:
        """Planners and admins decide; viewers only look."""
        return self.role in ("planner", "admin")


@dataclass(frozen=True)
class RecFilter:
    """Filter of recommendation lines (all given conditions must hold).

    ``store`` and ``cluster`` match either end of a line; ``exception`` keeps lines flagged
    with that exception kind (``"any"`` for any kind); ``group`` keeps the lines of one
    recommendation (style-colour x lane, its ``group_key``).
    """

    status: str | None = None
    kind: str | None = None
    cluster: str | None = None
    store: str | None = None
    from_store: str | None = None
    to_store: str | None = None
    category: str | None = None
    style: str | None = None
    sku: str | None = None
    exception: str | None = None
    min_net_benefit: float | None = None
    group: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


@dataclass(frozen=True)
class DecisionResult:
    """Outcome of a decision: the line's state after it and whether it changed anything."""

    recommendation_id: int
    status: str
    units: int
    version: int
    applied: bool
    decision_id: int | None


@dataclass(frozen=True)
class BulkResult:
    """Outcome of a bulk decision by filter."""

    matched: int
    applied: int
    status: str
    ids: list[int] = field(default_factory=list)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def audit_row(
    user: str | None, action: str, target: str | None, outcome: str, detail: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "at": now_utc(),
        "user": user,
        "action": action,
        "target": target,
        "outcome": outcome,
        "detail": jsonable(dict(detail)),
    }


def audit(
    conn: Connection,
    user: str | None,
    action: str,
    target: str | None,
    outcome: str,
    detail: Mapping[str, Any],
) -> None:
    conn.execute(insert(AuditEntry), [audit_row(user, action, target, outcome, detail)])


def record_attempt(
    engine: Engine,
    *,
    user: str | None,
    action: str,
    target: str | None,
    outcome: str,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append an audit row for an attempt refused before reaching the workflow (401, 403, 422).

    Parameters
    ----------
    user
        Who tried (``None`` when unauthenticated).
    action
        What was tried, e.g. ``"decide"``.
    target
        The object, e.g. a recommendation id.
    outcome
        E.g. ``"unauthenticated"``, ``"forbidden"``, ``"invalid"``.
    """
    with write_engine(engine).begin() as conn:
        audit(conn, user, action, target, outcome, detail or {})


# --------------------------------------------------------------------------- users and tokens
