"""Planner workflow: the store of record for plan runs, reviews, decisions and the audit log.

Typical use::

    from stocktailor import workflow

    workflow.upgrade(url)                     # Alembic migrations to head
    engine = workflow.connect(url)
    run_id = workflow.publish_run(engine, plan, tables.stores, tables.products)
    token = workflow.create_user(engine, "ana", "planner")
    workflow.decide(engine, rec_id, action="approve", version=0, user="ana")
    csv_bytes = workflow.export_approved(engine, run_id, "csv")

By concern: ``users`` (users and tokens), ``publish`` (a run and its lines; ``flags`` the
exceptions), ``queries`` (reading), ``decisions`` (deciding), ``export`` (the warehouse file),
``autoapprove`` (auto-approval rules and their reversal), ``common`` (errors, results, filters,
the audit log).
"""

from __future__ import annotations

from stocktailor.workflow.autoapprove import (
    AUTO_USER,
    AutoApprovalResult,
    apply_auto_approval,
    auto_approved_lines,
    create_rule,
    delete_rule,
    list_rules,
    reverse_auto_approval,
    update_rule,
)
from stocktailor.workflow.common import (
    MAX_REASON_LENGTH,
    BulkResult,
    Conflict,
    DecisionResult,
    NotFound,
    Page,
    RecFilter,
    UserInfo,
    record_attempt,
)
from stocktailor.workflow.context import stock_context
from stocktailor.workflow.db import connect, is_sqlite, upgrade, write_engine
from stocktailor.workflow.decisions import bulk_decide, decide
from stocktailor.workflow.export import (
    EXPORT_COLUMNS,
    FolderExport,
    export_approved,
    export_to_folder,
)
from stocktailor.workflow.models import (
    DECISION_ACTIONS,
    EXCEPTION_KINDS,
    RECOMMENDATION_KINDS,
    RECOMMENDATION_STATUSES,
    ROLES,
)
from stocktailor.workflow.publish import publish_run
from stocktailor.workflow.queries import (
    GROUP_SORT_KEYS,
    SORT_KEYS,
    audit_entries,
    cluster_summary,
    filter_options,
    get_recommendation,
    get_run,
    latest_run_id,
    list_exceptions,
    list_groups,
    list_recommendations,
    list_runs,
    run_stores,
)
from stocktailor.workflow.users import (
    SESSION_HOURS,
    authenticate,
    create_user,
    end_session,
    ensure_demo_user,
    hash_token,
    issue_token,
    start_session,
)

__all__ = [
    "AUTO_USER",
    "DECISION_ACTIONS",
    "EXCEPTION_KINDS",
    "EXPORT_COLUMNS",
    "GROUP_SORT_KEYS",
    "MAX_REASON_LENGTH",
    "RECOMMENDATION_KINDS",
    "RECOMMENDATION_STATUSES",
    "ROLES",
    "SESSION_HOURS",
    "SORT_KEYS",
    "AutoApprovalResult",
    "BulkResult",
    "Conflict",
    "DecisionResult",
    "FolderExport",
    "NotFound",
    "Page",
    "RecFilter",
    "UserInfo",
    "apply_auto_approval",
    "audit_entries",
    "authenticate",
    "auto_approved_lines",
    "bulk_decide",
    "cluster_summary",
    "connect",
    "create_rule",
    "create_user",
    "decide",
    "delete_rule",
    "end_session",
    "ensure_demo_user",
    "export_approved",
    "export_to_folder",
    "filter_options",
    "get_recommendation",
    "get_run",
    "hash_token",
    "is_sqlite",
    "issue_token",
    "latest_run_id",
    "list_exceptions",
    "list_groups",
    "list_recommendations",
    "list_rules",
    "list_runs",
    "publish_run",
    "record_attempt",
    "reverse_auto_approval",
    "run_stores",
    "start_session",
    "stock_context",
    "update_rule",
    "upgrade",
    "write_engine",
]
