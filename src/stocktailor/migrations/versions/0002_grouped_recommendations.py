"""Grouped recommendations (each line's group, net band, loss risk); a run's forecast validation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plan_runs") as batch:
        batch.add_column(sa.Column("validation", sa.JSON(), nullable=True))
    with op.batch_alter_table("recommendations") as batch:
        batch.add_column(sa.Column("net_p10", sa.Double(), nullable=True))
        batch.add_column(sa.Column("net_p90", sa.Double(), nullable=True))
        batch.add_column(sa.Column("loss_probability", sa.Double(), nullable=True))
        batch.add_column(sa.Column("group_key", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_rec_run_group", "recommendations", ["run_id", "group_key", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_rec_run_group", table_name="recommendations")
    with op.batch_alter_table("recommendations") as batch:
        batch.drop_column("group_key")
        batch.drop_column("loss_probability")
        batch.drop_column("net_p90")
        batch.drop_column("net_p10")
    with op.batch_alter_table("plan_runs") as batch:
        batch.drop_column("validation")
