"""Auto-approval: rules an admin keeps (and rules from the settings), applied to a run's
pending lines, and an admin's reversal of an auto-approval before the line is exported.

A rule (:class:`~stocktailor.automation.AutoApprovalRule`) approves a pending line that carries
no exception flag when the line's net benefit is at least ``min_net_benefit``, its gain p10 is
above 0 (if required), and its lane and category are among the rule's (empty lists match all).
Lines are taken best net benefit first; rules are tried in name order and the first rule that
matches and still has room under its ``daily_unit_cap`` (units per destination store and ship
day, counting the lines it approved in earlier runs) approves the line. Lines too large for the
room left are skipped, smaller ones after them may still fit.

Every auto-approval goes through the decision path: the line is locked, moved from pending to
approved with ``version + 1``, and gets a decision row (user :data:`AUTO_USER`, ``rule`` set)
and an audit row naming the rule. An admin may reverse it back to pending until it is exported.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from stocktailor.automation import ANY_STORE, AutoApprovalRule
from stocktailor.workflow.common import (
    MAX_REASON_LENGTH,
    Conflict,
    DecisionResult,
    NotFound,
    audit,
    audit_row,
    now_utc,
)
from stocktailor.workflow.db import write_engine
from stocktailor.workflow.models import (
    AuditEntry,
    AutoApprovalRuleRow,
    Decision,
    PlanRun,
    Recommendation,
)

__all__ = [
    "AUTO_USER",
    "AutoApprovalResult",
    "apply_auto_approval",
    "auto_approved_lines",
    "create_rule",
    "delete_rule",
    "list_rules",
    "reverse_auto_approval",
    "update_rule",
]

logger = logging.getLogger(__name__)

AUTO_USER = "auto-approval"
"""The decider named on auto-approved lines and their decision rows."""

_CAP_LOCK = 0x5741_7070
"""PostgreSQL advisory lock key held while rules are applied (the daily caps are shared)."""

_CHUNK = 500
"""Ids per ``IN (...)`` list (well under SQLite's and PostgreSQL's parameter limits)."""


@dataclass(frozen=True)
class AutoApprovalResult:
    """What applying the rules to a run did."""

    run_id: int
    approved: int
    units: int
    by_rule: dict[str, int] = field(default_factory=dict)
    skipped_exceptions: int = 0
    skipped_cap: int = 0
    ids: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------- rules


def _row_rule(r: Any) -> AutoApprovalRule:
    return AutoApprovalRule(
        name=r.name,
        min_net_benefit=float(r.min_net_benefit),
        require_positive_p10=bool(r.require_positive_p10),
        lanes=tuple((str(a), str(b)) for a, b in (r.lanes or [])),
        categories=tuple(str(c) for c in (r.categories or [])),
        daily_unit_cap=r.daily_unit_cap,
        enabled=bool(r.enabled),
    )


def _rule_dict(
    rule: AutoApprovalRule, *, rule_id: int | None, version: int | None, source: str
) -> dict[str, Any]:
    return {
        "id": rule_id,
        "version": version,
        "source": source,
        **rule.model_dump(mode="json"),
    }


def _rule_values(rule: AutoApprovalRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "min_net_benefit": float(rule.min_net_benefit),
        "require_positive_p10": rule.require_positive_p10,
        "lanes": [list(lane) for lane in rule.lanes],
        "categories": list(rule.categories),
        "daily_unit_cap": rule.daily_unit_cap,
        "enabled": rule.enabled,
    }


def list_rules(
    engine: Engine, settings_rules: Sequence[AutoApprovalRule] = ()
) -> list[dict[str, Any]]:
    """Every rule: those in the database (``source`` "database", with id and version), then
    those of the settings (``source`` "settings", read-only), each sorted by name."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(AutoApprovalRuleRow.__table__).order_by(AutoApprovalRuleRow.name)
        ).all()
    out = [
        _rule_dict(_row_rule(r), rule_id=r.id, version=r.version, source="database") for r in rows
    ]
    out += [
        _rule_dict(r, rule_id=None, version=None, source="settings")
        for r in sorted(settings_rules, key=lambda r: r.name)
    ]
    return out


def _name_taken(rule: AutoApprovalRule, settings_rules: Sequence[AutoApprovalRule]) -> Conflict:
    return Conflict(
        f"auto_approval_rules: a rule named {rule.name!r} exists"
        + (" in the settings" if any(r.name == rule.name for r in settings_rules) else ""),
        current={"name": rule.name},
    )


def create_rule(
    engine: Engine,
    rule: AutoApprovalRule,
    *,
    user: str,
    settings_rules: Sequence[AutoApprovalRule] = (),
) -> dict[str, Any]:
    """Store a new rule; return it with its id and version 0.

    Raises
    ------
    Conflict
        If a rule of that name exists (in the database or the settings).
    """
    now = now_utc()
    detail = {"rule": rule.model_dump(mode="json")}
    if any(r.name == rule.name for r in settings_rules):
        err = _name_taken(rule, settings_rules)
        with write_engine(engine).begin() as conn:
            audit(conn, user, "create_rule", f"rule:{rule.name}", "conflict", detail)
        raise err
    values = _rule_values(rule) | {
        "version": 0,
        "created_at": now,
        "created_by": user,
        "updated_at": now,
        "updated_by": user,
    }
    try:
        with write_engine(engine).begin() as conn:
            rule_id = conn.execute(
                insert(AutoApprovalRuleRow).returning(AutoApprovalRuleRow.id), [values]
            ).scalar_one()
            audit(conn, user, "create_rule", f"rule:{rule.name}", "applied", detail)
    except IntegrityError:
        with write_engine(engine).begin() as conn:
            audit(conn, user, "create_rule", f"rule:{rule.name}", "conflict", detail)
        raise _name_taken(rule, settings_rules) from None
    return _rule_dict(rule, rule_id=int(rule_id), version=0, source="database")


def update_rule(
    engine: Engine,
    rule_id: int,
    rule: AutoApprovalRule,
    *,
    version: int,
    user: str,
    settings_rules: Sequence[AutoApprovalRule] = (),
) -> dict[str, Any]:
    """Replace rule ``rule_id`` (compare-and-set on ``version``); return it.

    Raises
    ------
    NotFound
        No such rule.
    Conflict
        ``version`` is stale, or the new name is taken.
    """
    detail = {"rule": rule.model_dump(mode="json"), "version": version}
    target = f"rule:{rule_id}"
    if any(r.name == rule.name for r in settings_rules):
        with write_engine(engine).begin() as conn:
            audit(conn, user, "update_rule", target, "conflict", detail)
        raise _name_taken(rule, settings_rules)
    error: Exception | None = None
    outcome = "applied"
    try:
        with write_engine(engine).begin() as conn:
            row = conn.execute(
                select(AutoApprovalRuleRow.version, AutoApprovalRuleRow.name)
                .where(AutoApprovalRuleRow.id == rule_id)
                .with_for_update()
            ).one_or_none()
            if row is None:
                error, outcome = NotFound(f"auto_approval_rules: no rule {rule_id}"), "not_found"
            elif row.version != version:
                error, outcome = (
                    Conflict(
                        f"rule {rule_id} is at version {row.version}, not {version}",
                        current={"version": row.version, "name": row.name},
                    ),
                    "conflict",
                )
            else:
                conn.execute(
                    update(AutoApprovalRuleRow)
                    .where(AutoApprovalRuleRow.id == rule_id)
                    .values(
                        **_rule_values(rule),
                        version=version + 1,
                        updated_at=now_utc(),
                        updated_by=user,
                    )
                )
                audit(conn, user, "update_rule", target, "applied", detail)
    except IntegrityError:
        error, outcome = _name_taken(rule, settings_rules), "conflict"
    if error is not None:
        with write_engine(engine).begin() as conn:
            audit(conn, user, "update_rule", target, outcome, detail | {"error": str(error)})
        raise error
    return _rule_dict(rule, rule_id=rule_id, version=version + 1, source="database")


def delete_rule(engine: Engine, rule_id: int, *, user: str) -> None:
    """Delete rule ``rule_id`` (lines it approved keep its name).

    Raises
    ------
    NotFound
        No such rule.
    """
    with write_engine(engine).begin() as conn:
        name = conn.execute(
            select(AutoApprovalRuleRow.name).where(AutoApprovalRuleRow.id == rule_id)
        ).scalar_one_or_none()
        outcome = "not_found" if name is None else "applied"
        if name is not None:
            conn.execute(delete(AutoApprovalRuleRow).where(AutoApprovalRuleRow.id == rule_id))
        audit(conn, user, "delete_rule", f"rule:{rule_id}", outcome, {"name": name})
    if name is None:
        msg = f"auto_approval_rules: no rule {rule_id}"
        raise NotFound(msg)


# --------------------------------------------------------------------------- applying


def _matches(rule: AutoApprovalRule, line: Any) -> bool:
    if line.net_benefit < rule.min_net_benefit:
        return False
    if rule.require_positive_p10 and (line.gain_p10 is None or not line.gain_p10 > 0):
        return False
    if rule.categories and line.category not in rule.categories:
        return False
    if rule.lanes:
        return any(
            a in (ANY_STORE, line.from_id) and b in (ANY_STORE, line.to_id) for a, b in rule.lanes
        )
    return True


def _effective_rules(
    conn: Connection, settings_rules: Sequence[AutoApprovalRule]
) -> list[AutoApprovalRule]:
    rows = conn.execute(
        select(AutoApprovalRuleRow.__table__).where(AutoApprovalRuleRow.enabled.is_(True))
    ).all()
    rules = {r.name: r for r in settings_rules if r.enabled}
    for r in rows:
        rules.setdefault(r.name, _row_rule(r))
    return [rules[name] for name in sorted(rules)]


_Key = tuple[str, str, dt.date | None]


def _used_units(
    conn: Connection, rules: Sequence[AutoApprovalRule], days: Iterable[dt.date | None]
) -> dict[_Key, int]:
    """Units each capped rule already auto-approved per (destination, ship day)."""
    capped = [r.name for r in rules if r.daily_unit_cap is not None]
    day_list = sorted({d for d in days if d is not None})
    if not capped or not day_list:
        return {}
    rows = conn.execute(
        select(
            Recommendation.auto_rule,
            Recommendation.to_id,
            Recommendation.ship_date,
            func.sum(Recommendation.units),
        )
        .where(
            Recommendation.auto_rule.in_(capped),
            Recommendation.status == "approved",
            Recommendation.ship_date.in_(day_list),
        )
        .group_by(Recommendation.auto_rule, Recommendation.to_id, Recommendation.ship_date)
    ).all()
    return {(str(r[0]), str(r[1]), r[2]): int(r[3] or 0) for r in rows}


def _choose(
    lines: Sequence[Any], rules: Sequence[AutoApprovalRule], used: dict[_Key, int], as_of: dt.date
) -> tuple[dict[str, list[Any]], int]:
    """Assign lines to the first matching rule with room; return (by rule, lines capped)."""
    chosen: dict[str, list[Any]] = {}
    capped = 0
    for line in lines:
        blocked = False
        for rule in rules:
            if not _matches(rule, line):
                continue
            key = (rule.name, line.to_id, line.ship_date or as_of)
            cap = rule.daily_unit_cap
            if cap is not None and used.get(key, 0) + line.units > cap:
                blocked = True
                continue
            used[key] = used.get(key, 0) + line.units
            chosen.setdefault(rule.name, []).append(line)
            blocked = False
            break
        capped += blocked
    return chosen, capped


def _approve(conn: Connection, rule: str, lines: Sequence[Any], by: str | None) -> None:
    """Move ``lines`` (locked, pending) to approved by ``rule``: decision and audit rows."""
    now = now_utc()
    reason = f"auto-approved by rule {rule}"
    ids = [int(line.id) for line in lines]
    for i in range(0, len(ids), _CHUNK):
        res = conn.execute(
            update(Recommendation)
            .where(Recommendation.id.in_(ids[i : i + _CHUNK]), Recommendation.status == "pending")
            .values(
                status="approved",
                version=Recommendation.version + 1,
                decided_by=AUTO_USER,
                decided_at=now,
                decision_reason=reason,
                auto_rule=rule,
            )
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != len(ids[i : i + _CHUNK]):  # pragma: no cover - the lines are locked
            msg = f"auto-approval by rule {rule}: lines changed meanwhile"
            raise Conflict(msg)
    conn.execute(
        insert(Decision),
        [
            {
                "recommendation_id": line.id,
                "action": "approve",
                "units": line.units,
                "reason": reason,
                "user": AUTO_USER,
                "at": now,
                "from_version": line.version,
                "bulk": True,
                "rule": rule,
            }
            for line in lines
        ],
    )
    conn.execute(
        insert(AuditEntry),
        [
            audit_row(
                AUTO_USER,
                "auto_approve",
                str(line.id),
                "applied",
                {"rule": rule, "version": line.version, "units": line.units, "by": by},
            )
            for line in lines
        ],
    )


def apply_auto_approval(
    engine: Engine,
    run_id: int,
    *,
    settings_rules: Sequence[AutoApprovalRule] = (),
    user: str | None = None,
    conn: Connection | None = None,
) -> AutoApprovalResult:
    """Apply the enabled rules (database and ``settings_rules``) to a run's pending lines.

    Parameters
    ----------
    settings_rules
        Rules of ``Settings.workflow.auto_approval``; a database rule of the same name is
        shadowed by the settings' one.
    user
        Who triggered it (the publisher, or an admin), recorded in the audit rows.
    conn
        An open write transaction to join (publishing); default: a new one.

    Returns
    -------
    AutoApprovalResult
        Nothing is written (not even an audit row) when no rule is enabled.

    Raises
    ------
    NotFound
        If the run does not exist.
    """
    if conn is None:
        with write_engine(engine).begin() as own:
            return _apply(own, run_id, settings_rules, user)
    return _apply(conn, run_id, settings_rules, user)


def _apply(
    conn: Connection, run_id: int, settings_rules: Sequence[AutoApprovalRule], user: str | None
) -> AutoApprovalResult:
    as_of = conn.execute(select(PlanRun.as_of).where(PlanRun.id == run_id)).scalar_one_or_none()
    if as_of is None:
        audit(conn, user, "auto_approve_run", f"run:{run_id}", "not_found", {})
        msg = f"plan_runs: no run {run_id}"
        raise NotFound(msg)
    rules = _effective_rules(conn, settings_rules)
    if not rules:
        return AutoApprovalResult(run_id, 0, 0)
    if conn.dialect.name == "postgresql":
        # Runs applied at once would each read the same units under a daily cap; SQLite's
        # BEGIN IMMEDIATE already serialises writers.
        conn.execute(select(func.pg_advisory_xact_lock(_CAP_LOCK)))
    pending = (Recommendation.run_id == run_id, Recommendation.status == "pending")
    lines = conn.execute(
        select(
            Recommendation.id,
            Recommendation.version,
            Recommendation.units,
            Recommendation.net_benefit,
            Recommendation.gain_p10,
            Recommendation.category,
            Recommendation.from_id,
            Recommendation.to_id,
            Recommendation.ship_date,
        )
        .where(*pending, Recommendation.n_exceptions == 0)
        .order_by(Recommendation.net_benefit.desc(), Recommendation.id)
        .with_for_update()
    ).all()
    flagged = conn.execute(
        select(func.count())
        .select_from(Recommendation)
        .where(*pending, Recommendation.n_exceptions > 0)
    ).scalar_one()
    used = _used_units(conn, rules, (line.ship_date or as_of for line in lines))
    chosen, capped = _choose(lines, rules, used, as_of)
    for name, picked in chosen.items():
        _approve(conn, name, picked, user)
    ids = sorted(int(line.id) for picked in chosen.values() for line in picked)
    result = AutoApprovalResult(
        run_id=run_id,
        approved=len(ids),
        units=sum(int(line.units) for picked in chosen.values() for line in picked),
        by_rule={name: len(picked) for name, picked in chosen.items()},
        skipped_exceptions=int(flagged),
        skipped_cap=capped,
        ids=ids,
    )
    detail = {
        "rules": [r.name for r in rules],
        "approved": result.approved,
        "units": result.units,
        "by_rule": result.by_rule,
        "skipped_exceptions": result.skipped_exceptions,
        "skipped_cap": result.skipped_cap,
    }
    audit(conn, user, "auto_approve_run", f"run:{run_id}", "applied", detail)
    logger.info("run %d: %d lines auto-approved by %s", run_id, result.approved, result.by_rule)
    return result


def auto_approved_lines(engine: Engine, run_id: int, *, limit: int = 200) -> list[dict[str, Any]]:
    """A run's auto-approved lines not exported yet (reversible), best net benefit first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Recommendation.id,
                Recommendation.version,
                Recommendation.kind,
                Recommendation.sku,
                Recommendation.from_id,
                Recommendation.to_id,
                Recommendation.units,
                Recommendation.net_benefit,
                Recommendation.auto_rule,
            )
            .where(
                Recommendation.run_id == run_id,
                Recommendation.status == "approved",
                Recommendation.auto_rule.is_not(None),
                Recommendation.exported_at.is_(None),
            )
            .order_by(Recommendation.net_benefit.desc(), Recommendation.id)
            .limit(limit)
        ).all()
    return [dict(r._mapping) for r in rows]


# --------------------------------------------------------------------------- reversal


def reverse_auto_approval(
    engine: Engine,
    recommendation_id: int,
    *,
    version: int,
    user: str,
    reason: str | None = None,
) -> DecisionResult:
    """Return an auto-approved line to pending (an admin's call; audited), until exported.

    Follows the decision path: ``version`` is the line's version the admin saw; a stale one is
    a :class:`Conflict` unless it repeats the reversal that moved the line on (idempotent).

    Raises
    ------
    NotFound
        No such line.
    Conflict
        Stale version, or the line was exported already.
    ValueError
        The line is not auto-approved (pending, decided by a planner), or the reason is too long.
    """
    note = (reason or "").strip() or None
    detail: dict[str, Any] = {"version": version, "reason": note}
    result: DecisionResult | None = None
    error: Exception | None = None
    with write_engine(engine).begin() as conn:
        if note is not None and len(note) > MAX_REASON_LENGTH:
            error = ValueError(f"reason: at most {MAX_REASON_LENGTH} characters, got {len(note)}")
            outcome = "invalid"
        else:
            result, error, outcome = _reverse_locked(conn, recommendation_id, version, user, note)
        if error is not None:
            detail["error"] = str(error)
        audit(conn, user, "reverse_auto_approval", str(recommendation_id), outcome, detail)
    if error is not None:
        raise error
    assert result is not None
    return result


def _reverse_locked(
    conn: Connection, rec_id: int, version: int, user: str, reason: str | None
) -> tuple[DecisionResult | None, Exception | None, str]:
    row = conn.execute(
        select(
            Recommendation.status,
            Recommendation.units,
            Recommendation.version,
            Recommendation.auto_rule,
            Recommendation.exported_at,
        )
        .where(Recommendation.id == rec_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        return None, NotFound(f"recommendations: no recommendation {rec_id}"), "not_found"
    current = {"status": row.status, "units": row.units, "version": row.version}
    if row.version != version:
        last = conn.execute(
            select(Decision.id, Decision.action, Decision.from_version)
            .where(Decision.recommendation_id == rec_id)
            .order_by(Decision.id.desc())
            .limit(1)
        ).one_or_none()
        if (
            last is not None
            and last.action == "reverse"
            and last.from_version == version
            and row.version == version + 1
        ):
            res = DecisionResult(rec_id, row.status, row.units, row.version, False, last.id)
            return res, None, "idempotent"
        msg = f"recommendation {rec_id} is at version {row.version}, not {version} ({row.status})"
        return None, Conflict(msg, current=current), "conflict"
    if row.exported_at is not None:
        msg = (
            f"recommendation {rec_id} was exported at {row.exported_at.isoformat()}; "
            "an exported line cannot be reversed"
        )
        return None, Conflict(msg, current=current | {"exported": True}), "conflict"
    if row.auto_rule is None or row.status != "approved":
        msg = f"recommendation {rec_id} is {row.status}, not auto-approved"
        return None, ValueError(msg), "invalid"
    conn.execute(
        update(Recommendation)
        .where(Recommendation.id == rec_id, Recommendation.version == version)
        .values(
            status="pending",
            version=version + 1,
            decided_by=None,
            decided_at=None,
            decision_reason=None,
            auto_rule=None,
        )
    )
    decision_id = conn.execute(
        insert(Decision).returning(Decision.id),
        [
            {
                "recommendation_id": rec_id,
                "action": "reverse",
                "units": row.units,
                "reason": reason or f"auto-approval by rule {row.auto_rule} reversed",
                "user": user,
                "at": now_utc(),
                "from_version": version,
                "bulk": False,
                "rule": row.auto_rule,
            }
        ],
    ).scalar_one()
    res = DecisionResult(rec_id, "pending", int(row.units), version + 1, True, int(decision_id))
    return res, None, "applied"
