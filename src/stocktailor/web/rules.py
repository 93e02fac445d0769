"""The auto-approval page (admins): rules, applying them to a run, reversing auto-approvals.

Writes are HTMX posts (they carry the CSRF header) answered with the whole page, of which the
``#rules`` section is swapped in.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from stocktailor import workflow
from stocktailor.automation import AutoApprovalRule
from stocktailor.config import Settings
from stocktailor.web.common import (
    check_csrf,
    engine_of,
    page,
    run_id_or_latest,
    to_login,
    web_user,
)
from stocktailor.workflow import Conflict, NotFound, UserInfo

__all__ = ["parse_lanes", "router"]

router = APIRouter(include_in_schema=False)


def _settings_rules(request: Request) -> tuple[AutoApprovalRule, ...]:
    settings: Settings = request.app.state.settings
    return settings.workflow.auto_approval


def parse_lanes(text: str) -> tuple[tuple[str, str], ...]:
    """``"S01->S02, *->S03"`` (commas or new lines) as ``(("S01", "S02"), ("*", "S03"))``."""
    lanes = []
    for part in re.split(r"[,\n]", text):
        part = part.strip()
        if not part:
            continue
        ends = [x.strip() for x in part.split("->")]
        if len(ends) != 2 or not all(ends):
            msg = f"lanes: {part!r} is not FROM->TO"
            raise ValueError(msg)
        lanes.append((ends[0], ends[1]))
    return tuple(lanes)


def _admin(request: Request) -> tuple[UserInfo, str] | Response:
    """The signed-in admin and session id; a redirect to sign in; 403 (audited) otherwise."""
    user, token = web_user(request)
    if user is None or token is None:
        if request.method != "GET":
            workflow.record_attempt(
                engine_of(request),
                user=None,
                action=f"{request.method} {request.url.path}"[:32],
                target=None,
                outcome="unauthenticated",
            )
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return to_login()
    if request.method != "GET":
        check_csrf(request, token)
    if user.role != "admin":
        workflow.record_attempt(
            engine_of(request),
            user=user.name,
            action=f"{request.method} {request.url.path}"[:32],
            target=None,
            outcome="forbidden",
            detail={"role": user.role},
        )
        raise HTTPException(status_code=403, detail="admin role required")
    return user, token


def _render(
    request: Request,
    user: UserInfo,
    token: str,
    run_id: int | None,
    message: str | None = None,
    error: str | None = None,
) -> Response:
    engine = engine_of(request)
    rid = run_id_or_latest(request, run_id)
    ctx: dict[str, Any] = {
        "rules": workflow.list_rules(engine, _settings_rules(request)),
        "run": workflow.get_run(engine, rid) if rid is not None else None,
        "lines": workflow.auto_approved_lines(engine, rid) if rid is not None else [],
        "message": message,
        "error": error,
    }
    return page(request, "rules.html", user, token, **ctx)


def _run_id(raw: Any) -> int | None:
    try:
        value = int(str(raw))
    except ValueError:
        return None
    return value if 1 <= value <= 2**31 - 1 else None


@router.get("/rules", response_class=HTMLResponse)
def rules_page(request: Request) -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    return _render(request, *who, _run_id(request.query_params.get("run_id", "")))


def _form_rule(form: Any) -> AutoApprovalRule:
    cap = str(form.get("daily_unit_cap") or "").strip()
    cats = [c.strip() for c in str(form.get("categories") or "").split(",") if c.strip()]
    return AutoApprovalRule(
        name=str(form.get("name") or "").strip(),
        min_net_benefit=float(str(form.get("min_net_benefit") or "0").replace(",", "")),
        require_positive_p10=form.get("require_positive_p10") == "on",
        lanes=parse_lanes(str(form.get("lanes") or "")),
        categories=tuple(cats),
        daily_unit_cap=int(cap) if cap else None,
        enabled=form.get("enabled") == "on",
    )


@router.post("/rules", response_class=HTMLResponse)
async def rules_create(request: Request) -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    user, token = who
    form = await request.form()
    message = error = None
    try:
        rule = _form_rule(form)
        workflow.create_rule(
            engine_of(request), rule, user=user.name, settings_rules=_settings_rules(request)
        )
        message = f"Rule {rule.name} added."
    except ValidationError as exc:
        first = exc.errors()[0]
        error = f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}"
    except (ValueError, Conflict) as exc:
        error = str(exc)
    return _render(request, user, token, _run_id(form.get("run_id")), message, error)


@router.post("/rules/{rule_id}/{action}", response_class=HTMLResponse)
async def rules_change(request: Request, rule_id: int, action: str) -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    user, token = who
    form = await request.form()
    engine = engine_of(request)
    if action not in ("enable", "disable", "delete") or not 1 <= rule_id <= 2**31 - 1:
        raise HTTPException(status_code=404, detail=f"no rule action {action!r}")
    message = error = None
    try:
        if action == "delete":
            workflow.delete_rule(engine, rule_id, user=user.name)
            message = f"Rule {rule_id} deleted."
        else:
            current = next((r for r in workflow.list_rules(engine) if r["id"] == rule_id), None)
            if current is None:
                raise NotFound(f"auto_approval_rules: no rule {rule_id}")
            fields = {k: current[k] for k in AutoApprovalRule.model_fields}
            rule = AutoApprovalRule.model_validate(fields | {"enabled": action == "enable"})
            workflow.update_rule(
                engine, rule_id, rule, version=int(current["version"]), user=user.name
            )
            message = f"Rule {rule.name} {action}d."
    except (NotFound, Conflict) as exc:
        error = str(exc)
    return _render(request, user, token, _run_id(form.get("run_id")), message, error)


@router.post("/rules-apply", response_class=HTMLResponse)
async def rules_apply(request: Request) -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    user, token = who
    form = await request.form()
    rid = _run_id(form.get("run_id"))
    if rid is None:
        raise HTTPException(status_code=422, detail="run_id: a run id is required")
    try:
        res = workflow.apply_auto_approval(
            engine_of(request), rid, settings_rules=_settings_rules(request), user=user.name
        )
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    message = (
        f"Run #{rid}: {res.approved} lines ({res.units} units) auto-approved; "
        f"{res.skipped_exceptions} exception lines left to planners, "
        f"{res.skipped_cap} over a daily cap."
    )
    return _render(request, user, token, rid, message)


@router.post("/rules-reverse/{rec_id}", response_class=HTMLResponse)
async def rules_reverse(request: Request, rec_id: int) -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    user, token = who
    if not 1 <= rec_id <= 2**31 - 1:
        raise HTTPException(status_code=404, detail=f"recommendations: no recommendation {rec_id}")
    form = await request.form()
    message = error = None
    try:
        version = int(str(form.get("version")))
        res = workflow.reverse_auto_approval(
            engine_of(request), rec_id, version=version, user=user.name
        )
        message = (
            f"Line {rec_id} is pending again."
            if res.applied
            else f"Line {rec_id} was already reversed."
        )
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except (Conflict, ValueError) as exc:
        error = str(exc)
    return _render(request, user, token, _run_id(form.get("run_id")), message, error)
