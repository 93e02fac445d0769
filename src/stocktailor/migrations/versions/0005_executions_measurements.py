"""Executions reported by the warehouse system; measurements of what executed lines earned.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("recommendation_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("shipped_units", sa.Integer(), nullable=False),
        sa.Column("received_units", sa.Integer(), nullable=False),
        sa.Column("ship_date", sa.Date(), nullable=True),
        sa.Column("receive_date", sa.Date(), nullable=True),
        sa.Column("source_file", sa.String(length=200), nullable=True),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("imported_by", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recommendation_id"],
            ["recommendations.id"],
            name=op.f("fk_executions_recommendation_id_recommendations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["plan_runs.id"],
            name=op.f("fk_executions_run_id_plan_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("recommendation_id", name=op.f("pk_executions")),
    )
    op.create_index("ix_exec_run", "executions", ["run_id", "status"], unique=False)
    op.create_table(
        "measurement_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["plan_runs.id"],
            name=op.f("fk_measurement_batches_run_id_plan_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurement_batches")),
    )
    op.create_index("ix_meas_run_until", "measurement_batches", ["run_id", "until"], unique=False)
    op.create_table(
        "measured_lines",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("recommendation_id", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("estimated", sa.Double(), nullable=False),
        sa.Column("measured", sa.Double(), nullable=False),
        sa.Column("measured_low", sa.Double(), nullable=False),
        sa.Column("measured_high", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["measurement_batches.id"],
            name=op.f("fk_measured_lines_batch_id_measurement_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recommendation_id"],
            ["recommendations.id"],
            name=op.f("fk_measured_lines_recommendation_id_recommendations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "recommendation_id", name=op.f("pk_measured_lines")),
    )


def downgrade() -> None:
    op.drop_table("measured_lines")
    op.drop_index("ix_meas_run_until", table_name="measurement_batches")
    op.drop_table("measurement_batches")
    op.drop_index("ix_exec_run", table_name="executions")
    op.drop_table("executions")
