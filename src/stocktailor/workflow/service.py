"""Compatibility: the workflow's public functions, re-exported from the modules by concern.

The lifecycle lives in :mod:`~stocktailor.workflow.users` (users and tokens),
:mod:`~stocktailor.workflow.publish` (publishing a run), :mod:`~stocktailor.workflow.queries`
(reading), :mod:`~stocktailor.workflow.decisions` (deciding) and
:mod:`~stocktailor.workflow.export` (export); import from ``stocktailor.workflow``.
"""

from __future__ import annotations

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
from stocktailor.workflow.decisions import bulk_decide, decide
from stocktailor.workflow.export import EXPORT_COLUMNS, export_approved
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
    authenticate,
    create_user,
    end_session,
    ensure_demo_user,
    hash_token,
    issue_token,
    start_session,
)

__all__ = [
    "EXPORT_COLUMNS",
    "GROUP_SORT_KEYS",
    "MAX_REASON_LENGTH",
    "SORT_KEYS",
    "BulkResult",
    "Conflict",
    "DecisionResult",
    "NotFound",
    "Page",
    "RecFilter",
    "UserInfo",
    "audit_entries",
    "authenticate",
    "bulk_decide",
    "cluster_summary",
    "create_user",
    "decide",
    "end_session",
    "ensure_demo_user",
    "export_approved",
    "filter_options",
    "get_recommendation",
    "get_run",
    "hash_token",
    "issue_token",
    "latest_run_id",
    "list_exceptions",
    "list_groups",
    "list_recommendations",
    "list_runs",
    "publish_run",
    "record_attempt",
    "run_stores",
    "start_session",
]
