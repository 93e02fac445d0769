"""SQLAlchemy 2 models of the planner workflow's store of record.

The schema is created and evolved only by the Alembic migrations in
:mod:`stocktailor.migrations`; these models describe it for queries. Times are naive UTC
``datetime`` values, money is double precision (currency units), quantities are integers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "DECISION_ACTIONS",
    "EXCEPTION_KINDS",
    "EXECUTION_STATUSES",
    "MEASUREMENT_METHODS",
    "RECOMMENDATION_KINDS",
    "RECOMMENDATION_STATUSES",
    "ROLES",
    "ApiToken",
    "AuditEntry",
    "AutoApprovalRuleRow",
    "Base",
    "Decision",
    "Execution",
    "MeasuredLine",
    "MeasurementBatch",
    "PlanRun",
    "Recommendation",
    "RecommendationException",
    "RunForecast",
    "RunStore",
    "User",
]

ROLES = ("viewer", "planner", "admin")
RECOMMENDATION_KINDS = ("transfer", "allocation")
RECOMMENDATION_STATUSES = ("pending", "approved", "rejected", "edited")
DECISION_ACTIONS = ("approve", "reject", "edit")
EXCEPTION_KINDS = ("low_confidence", "large_move", "soft_rule", "first_transfer_of_style")
EXECUTION_STATUSES = ("in_transit", "received", "partial", "failed")
MEASUREMENT_METHODS = ("ledger", "holdback")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a stable constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING)


class PlanRun(Base):
    """One published plan run.

    ``signals`` holds the post series rising on ``as_of`` with the lines they touch (see
    :mod:`stocktailor.workflow.signals`); ``None`` when the network had no posts.
    """

    __tablename__ = "plan_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_by: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="published")
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    data_fingerprint: Mapped[str] = mapped_column(String(128))
    kpis: Mapped[dict[str, Any]] = mapped_column(JSON)
    validation: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    signals: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    n_recommendations: Mapped[int] = mapped_column(Integer, default=0)


class RunStore(Base):
    """A location as it was when the run was published (for maps and filters)."""

    __tablename__ = "run_stores"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("plan_runs.id", ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(200))
    latitude: Mapped[float | None] = mapped_column(Double)
    longitude: Mapped[float | None] = mapped_column(Double)
    cluster_id: Mapped[str | None] = mapped_column(String(64))
    cluster_name: Mapped[str | None] = mapped_column(String(200))
    on_hand: Mapped[int | None] = mapped_column(Integer)
    sold_units: Mapped[int | None] = mapped_column(Integer)
    weekly_demand: Mapped[float | None] = mapped_column(Double)


class RunForecast(Base):
    """Weekly forecast band of a (store, SKU) pair that appears in a recommendation."""

    __tablename__ = "run_forecasts"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("plan_runs.id", ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    week_start: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    mean: Mapped[float] = mapped_column(Double)
    p10: Mapped[float] = mapped_column(Double)
    p50: Mapped[float] = mapped_column(Double)
    p90: Mapped[float] = mapped_column(Double)


class Recommendation(Base):
    """A transfer or allocation line with its P&L, its reason and its review state.

    ``units`` is the quantity that will ship (the plan's ``original_units`` unless a planner
    edited it); ``version`` increases by one with every applied decision (optimistic
    concurrency: a decision names the version it saw). ``auto_rule`` names the auto-approval
    rule that approved the line (cleared when an admin reverses it); ``exported_at`` and
    ``export_file`` record the drop-folder export that sent it to the warehouse.
    """

    __tablename__ = "recommendations"
    __table_args__ = (
        Index("ix_rec_run_status_benefit", "run_id", "status", "net_benefit"),
        Index("ix_rec_run_benefit", "run_id", "net_benefit"),
        Index("ix_rec_run_from", "run_id", "from_id", "status"),
        Index("ix_rec_run_to", "run_id", "to_id", "status"),
        Index("ix_rec_run_from_cluster", "run_id", "from_cluster", "status"),
        Index("ix_rec_run_to_cluster", "run_id", "to_cluster", "status"),
        Index("ix_rec_run_category", "run_id", "category", "status"),
        Index("ix_rec_run_style", "run_id", "style", "status"),
        Index("ix_rec_to_style", "to_id", "style"),
        Index("ix_rec_run_group", "run_id", "group_key", "status"),
        Index("ix_rec_status_exported", "status", "exported_at"),
        Index("ix_rec_auto_rule_to", "auto_rule", "to_id", "ship_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("plan_runs.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64))
    style: Mapped[str | None] = mapped_column(String(64))
    color: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(64))
    from_id: Mapped[str] = mapped_column(String(64))
    to_id: Mapped[str] = mapped_column(String(64))
    from_cluster: Mapped[str | None] = mapped_column(String(64))
    to_cluster: Mapped[str | None] = mapped_column(String(64))
    units: Mapped[int] = mapped_column(Integer)
    original_units: Mapped[int] = mapped_column(Integer)
    ship_date: Mapped[dt.date | None] = mapped_column(Date)
    arrival_date: Mapped[dt.date | None] = mapped_column(Date)
    transfer_cost: Mapped[float] = mapped_column(Double)
    expected_gain: Mapped[float] = mapped_column(Double)
    expected_source_loss: Mapped[float] = mapped_column(Double)
    net_benefit: Mapped[float] = mapped_column(Double)
    gain_p10: Mapped[float | None] = mapped_column(Double)
    gain_p90: Mapped[float | None] = mapped_column(Double)
    net_p10: Mapped[float | None] = mapped_column(Double)
    net_p90: Mapped[float | None] = mapped_column(Double)
    loss_probability: Mapped[float | None] = mapped_column(Double)
    group_key: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    from_on_hand: Mapped[int | None] = mapped_column(Integer)
    to_on_hand: Mapped[int | None] = mapped_column(Integer)
    from_weekly_demand: Mapped[float | None] = mapped_column(Double)
    to_weekly_demand: Mapped[float | None] = mapped_column(Double)
    n_exceptions: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    version: Mapped[int] = mapped_column(Integer, default=0)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    auto_rule: Mapped[str | None] = mapped_column(String(64))
    exported_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    export_file: Mapped[str | None] = mapped_column(String(200))


class Decision(Base):
    """One applied decision on a recommendation (approve, reject with reason, edit units)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recommendation_id: Mapped[int] = mapped_column(
        ForeignKey("recommendations.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    units: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    user: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    from_version: Mapped[int] = mapped_column(Integer)
    bulk: Mapped[bool] = mapped_column(Boolean, default=False)
    rule: Mapped[str | None] = mapped_column(String(64))


class RecommendationException(Base):
    """A recommendation line flagged for a planner's attention."""

    __tablename__ = "exceptions"
    __table_args__ = (Index("ix_exc_run_kind", "run_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("plan_runs.id", ondelete="CASCADE"))
    recommendation_id: Mapped[int] = mapped_column(
        ForeignKey("recommendations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)


class User(Base):
    """A person or system using the workflow."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ApiToken(Base):
    """An API token; only its SHA-256 hex digest is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEntry(Base):
    """Append-only record of every attempted action (database triggers refuse changes)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    user: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class AutoApprovalRuleRow(Base):
    """An auto-approval rule kept by an admin (:class:`~stocktailor.automation.AutoApprovalRule`).

    ``lanes`` is a JSON list of ``[from store, to store]`` pairs, ``categories`` a JSON list;
    ``version`` increases with every change (an update names the version it saw).
    """

    __tablename__ = "auto_approval_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    min_net_benefit: Mapped[float] = mapped_column(Double)
    require_positive_p10: Mapped[bool] = mapped_column(Boolean)
    lanes: Mapped[list[list[str]]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    daily_unit_cap: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_by: Mapped[str | None] = mapped_column(String(64))


class Execution(Base):
    """What the warehouse system reports it did with an approved line (one row per line).

    ``status``: ``in_transit`` (shipped, not yet received), ``received`` (all shipped units
    arrived), ``partial`` (fewer units shipped or received than approved), ``failed`` (nothing
    moved). Units are integers; a re-import replaces the line's row (``version`` counts them).
    """

    __tablename__ = "executions"
    __table_args__ = (Index("ix_exec_run", "run_id", "status"),)

    recommendation_id: Mapped[int] = mapped_column(
        ForeignKey("recommendations.id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Mapped[int] = mapped_column(ForeignKey("plan_runs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    shipped_units: Mapped[int] = mapped_column(Integer)
    received_units: Mapped[int] = mapped_column(Integer)
    ship_date: Mapped[dt.date | None] = mapped_column(Date)
    receive_date: Mapped[dt.date | None] = mapped_column(Date)
    source_file: Mapped[str | None] = mapped_column(String(200))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime)
    imported_by: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=0)


class MeasurementBatch(Base):
    """One measurement of a run's executed lines up to a date (``stocktailor measure``).

    ``summary`` holds the batch's totals and, with a holdback, the holdback comparison
    (JSON; money in currency units). ``level`` is the coverage of the intervals (0.9).
    """

    __tablename__ = "measurement_batches"
    __table_args__ = (Index("ix_meas_run_until", "run_id", "until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("plan_runs.id", ondelete="CASCADE"))
    until: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(16))
    level: Mapped[float] = mapped_column(Double)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_by: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class MeasuredLine(Base):
    """The measured value of one executed line in a batch (currency units).

    ``estimated`` is the line's net benefit at approval scaled to the units that moved;
    ``measured`` the realised incremental margin minus the transfer cost, with its interval
    ``measured_low`` .. ``measured_high`` at the batch's ``level``.
    """

    __tablename__ = "measured_lines"

    batch_id: Mapped[int] = mapped_column(
        ForeignKey("measurement_batches.id", ondelete="CASCADE"), primary_key=True
    )
    recommendation_id: Mapped[int] = mapped_column(
        ForeignKey("recommendations.id", ondelete="CASCADE"), primary_key=True
    )
    units: Mapped[int] = mapped_column(Integer)
    estimated: Mapped[float] = mapped_column(Double)
    measured: Mapped[float] = mapped_column(Double)
    measured_low: Mapped[float] = mapped_column(Double)
    measured_high: Mapped[float] = mapped_column(Double)
