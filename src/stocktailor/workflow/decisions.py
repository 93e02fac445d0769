"""Deciding: approve, reject or edit one line (optimistic versions), or a filter's pending lines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from stocktailor.workflow.common import (
    MAX_REASON_LENGTH,
    BulkResult,
    Conflict,
    DecisionResult,
    NotFound,
    RecFilter,
    audit,
    audit_row,
    jsonable,
    now_utc,
    record_attempt,
)
from stocktailor.workflow.db import write_engine
from stocktailor.workflow.models import (
    DECISION_ACTIONS,
    AuditEntry,
    Decision,
    PlanRun,
    Recommendation,
)
from stocktailor.workflow.queries import check_filter, filter_clause

__all__ = ["bulk_decide", "decide"]


def _norm_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH:
        msg = f"reason: at most {MAX_REASON_LENGTH} characters, got {len(reason)}"
        raise ValueError(msg)
    return reason or None


def _target_state(action: str, units: int | None, row: Any) -> tuple[str, int]:
    """Return (status, units) a decision leads to, or raise ValueError."""
    if action == "approve":
        if units is not None and units != row.units:
            msg = f"approve: units {units} differ from the line's {row.units}; use edit"
            raise ValueError(msg)
        return "approved", int(row.units)
    if action == "reject":
        return "rejected", int(row.units)
    if units is None:
        msg = "edit: units are required"
        raise ValueError(msg)
    limit = int(row.from_on_hand) if row.from_on_hand is not None else int(row.original_units)
    limit = max(limit, int(row.original_units))
    if not 1 <= units <= limit:
        msg = f"edit: units must be between 1 and {limit} for recommendation {row.id}, got {units}"
        raise ValueError(msg)
    return "edited", int(units)


def decide(
    engine: Engine,
    recommendation_id: int,
    *,
    action: Literal["approve", "reject", "edit"] | str,
    version: int,
    user: str,
    units: int | None = None,
    reason: str | None = None,
) -> DecisionResult:
    """Approve, reject (with a reason) or edit the units of one line, transactionally.

    Parameters
    ----------
    version
        The line's version the decider saw; a stale version raises :class:`Conflict` unless the
        request repeats the decision that moved the line past that version (idempotent).
    units
        New units for ``edit`` (1 to the source's on hand, or the planned units if unknown).
    reason
        Required for ``reject`` (at most :data:`MAX_REASON_LENGTH` characters).

    Returns
    -------
    DecisionResult
        ``applied`` is False for an idempotent repeat.

    Raises
    ------
    NotFound, Conflict, ValueError
    """
    detail: dict[str, Any] = {"action": action, "version": version, "units": units}
    error: Exception | None = None
    result: DecisionResult | None = None
    outcome = "applied"
    try:
        if action not in DECISION_ACTIONS:
            msg = f"action: {action!r} is not one of {', '.join(DECISION_ACTIONS)}"
            raise ValueError(msg)
        reason = _norm_reason(reason)
        if action == "reject" and not reason:
            msg = "reject: a reason is required"
            raise ValueError(msg)
    except ValueError as exc:
        error, outcome = exc, "invalid"
        reason = None
    detail["reason"] = reason
    with write_engine(engine).begin() as conn:
        if error is None:
            step = _Step(recommendation_id, action, version, user, units, reason)
            result, error, outcome = _decide_locked(conn, step)
        if error is not None:
            detail["error"] = str(error)
        audit(conn, user, "decide", str(recommendation_id), outcome, detail)
    if error is not None:
        raise error
    assert result is not None
    return result


@dataclass(frozen=True)
class _Step:
    """One requested decision (validated action and reason)."""

    rec_id: int
    action: str
    version: int
    user: str
    units: int | None
    reason: str | None


_Outcome = tuple[DecisionResult | None, Exception | None, str]


def _decide_locked(conn: Connection, s: _Step) -> _Outcome:
    """Lock the line, then apply, repeat idempotently or refuse ``s``; return the outcome."""
    row = conn.execute(
        select(
            Recommendation.id,
            Recommendation.status,
            Recommendation.units,
            Recommendation.original_units,
            Recommendation.from_on_hand,
            Recommendation.version,
            Recommendation.exported_at,
        )
        .where(Recommendation.id == s.rec_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        return None, NotFound(f"recommendations: no recommendation {s.rec_id}"), "not_found"
    if row.exported_at is not None:
        return _exported(conn, s, row)
    if row.version != s.version:
        return _stale(conn, s, row)
    try:
        status, new_units = _target_state(s.action, s.units, row)
    except ValueError as exc:
        return None, exc, "invalid"
    now = now_utc()
    res = conn.execute(
        update(Recommendation)
        .where(Recommendation.id == s.rec_id, Recommendation.version == s.version)
        .values(
            status=status,
            units=new_units,
            version=Recommendation.version + 1,
            decided_by=s.user,
            decided_at=now,
            decision_reason=s.reason,
            auto_rule=None,  # a planner's decision replaces an auto-approval
        )
    )
    if res.rowcount != 1:  # pragma: no cover - guarded by the row lock
        return None, Conflict(f"recommendation {s.rec_id} changed meanwhile"), "conflict"
    decision_id = conn.execute(
        insert(Decision).returning(Decision.id),
        [
            {
                "recommendation_id": s.rec_id,
                "action": s.action,
                "units": new_units,
                "reason": s.reason,
                "user": s.user,
                "at": now,
                "from_version": s.version,
                "bulk": False,
            }
        ],
    ).scalar_one()
    result = DecisionResult(s.rec_id, status, new_units, s.version + 1, True, decision_id)
    return result, None, "applied"


def _exported(conn: Connection, s: _Step, row: Any) -> _Outcome:
    """A decision on a line the warehouse already has: refused (only a repeat is answered)."""
    if row.version != s.version:
        repeat = _stale(conn, s, row)
        if repeat[2] == "idempotent":
            return repeat
    error = Conflict(
        f"recommendation {s.rec_id} was exported at {row.exported_at.isoformat()} "
        f"({row.status}, {row.units} units): an exported line can no longer be decided; "
        "correct it in the warehouse system",
        current={
            "status": row.status,
            "units": row.units,
            "version": row.version,
            "exported": True,
        },
    )
    return None, error, "conflict"


def _stale(conn: Connection, s: _Step, row: Any) -> _Outcome:
    """A decision on an old version: the repeat of the winning decision, or a conflict."""
    last = conn.execute(
        select(Decision.__table__)
        .where(Decision.recommendation_id == s.rec_id)
        .order_by(Decision.id.desc())
        .limit(1)
    ).one_or_none()
    same = (
        last is not None
        and last.from_version == s.version
        and row.version == s.version + 1
        and last.action == s.action
        and last.reason == s.reason
        and (s.units is None or s.units == last.units)
    )
    if same and last is not None:
        result = DecisionResult(s.rec_id, row.status, row.units, row.version, False, last.id)
        return result, None, "idempotent"
    error = Conflict(
        f"recommendation {s.rec_id} is at version {row.version}, "
        f"not {s.version}: it was decided meanwhile ({row.status})",
        current={"status": row.status, "units": row.units, "version": row.version},
    )
    return None, error, "conflict"


def bulk_decide(
    engine: Engine,
    run_id: int,
    filters: RecFilter | None = None,
    *,
    action: Literal["approve", "reject"] | str,
    user: str,
    reason: str | None = None,
) -> BulkResult:
    """Approve or reject every *pending* line of a run that matches ``filters``, atomically.

    Lines already decided are left alone, so repeating a bulk decision changes nothing
    (idempotent). Each changed line gets a decision row and an audit row.

    Raises
    ------
    ValueError
        Unknown action, a filter on a status other than pending, a missing reject reason.
    NotFound
        If the run does not exist.
    """
    f = filters or RecFilter()
    detail: dict[str, Any] = {"action": action, "filter": jsonable(f.__dict__)}
    try:
        if action not in ("approve", "reject"):
            msg = f"bulk action: {action!r} is not approve or reject"
            raise ValueError(msg)
        if f.status not in (None, "pending"):
            msg = f"bulk decisions apply to pending lines; filter status {f.status!r} given"
            raise ValueError(msg)
        check_filter(f)
        reason = _norm_reason(reason)
        if action == "reject" and not reason:
            msg = "reject: a reason is required"
            raise ValueError(msg)
    except ValueError as exc:
        record_attempt(
            engine,
            user=user,
            action="bulk_decide",
            target=f"run:{run_id}",
            outcome="invalid",
            detail=detail | {"error": str(exc)},
        )
        raise
    detail["reason"] = reason
    status = "approved" if action == "approve" else "rejected"
    with write_engine(engine).begin() as conn:
        exists = conn.execute(select(PlanRun.id).where(PlanRun.id == run_id)).scalar_one_or_none()
        if exists is None:
            audit(conn, user, "bulk_decide", f"run:{run_id}", "not_found", detail)
            err: Exception | None = NotFound(f"plan_runs: no run {run_id}")
            rows: Sequence[Any] = []
        else:
            err = None
            rows = _bulk_apply(conn, run_id, f, action, status, user, reason)
            matched = detail | {"matched": len(rows)}
            audit(conn, user, "bulk_decide", f"run:{run_id}", "applied", matched)
    if err is not None:
        raise err
    ids = [int(r.id) for r in rows]
    return BulkResult(matched=len(ids), applied=len(ids), status=status, ids=ids)


# --------------------------------------------------------------------------- export


def _bulk_apply(
    conn: Connection,
    run_id: int,
    f: RecFilter,
    action: str,
    status: str,
    user: str,
    reason: str | None,
) -> Sequence[Any]:
    """Decide every pending line matching ``f`` (locked); return the (id, version, units) rows."""
    now = now_utc()
    clauses = [*filter_clause(run_id, f), Recommendation.status == "pending"]
    rows = conn.execute(
        select(Recommendation.id, Recommendation.version, Recommendation.units)
        .where(*clauses)
        .order_by(Recommendation.id)
        .with_for_update()
    ).all()
    if not rows:
        return rows
    conn.execute(
        update(Recommendation)
        .where(Recommendation.run_id == run_id, *clauses[1:])
        .values(
            status=status,
            version=Recommendation.version + 1,
            decided_by=user,
            decided_at=now,
            decision_reason=reason,
        )
        .execution_options(synchronize_session=False)
    )
    conn.execute(
        insert(Decision),
        [
            {
                "recommendation_id": r.id,
                "action": action,
                "units": r.units,
                "reason": reason,
                "user": user,
                "at": now,
                "from_version": r.version,
                "bulk": True,
            }
            for r in rows
        ],
    )
    conn.execute(
        insert(AuditEntry),
        [
            audit_row(
                user,
                "decide",
                str(r.id),
                "applied",
                {"action": action, "version": r.version, "bulk": True, "reason": reason},
            )
            for r in rows
        ],
    )
    return rows
