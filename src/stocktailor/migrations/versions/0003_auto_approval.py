"""Auto-approval rules; the rule that approved a line; the drop-folder export of a line.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auto_approval_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("min_net_benefit", sa.Double(), nullable=False),
        sa.Column("require_positive_p10", sa.Boolean(), nullable=False),
        sa.Column("lanes", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("daily_unit_cap", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auto_approval_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_auto_approval_rules_name")),
    )
    with op.batch_alter_table("recommendations") as batch:
        batch.add_column(sa.Column("auto_rule", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("exported_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("export_file", sa.String(length=200), nullable=True))
    op.create_index(
        "ix_rec_status_exported", "recommendations", ["status", "exported_at"], unique=False
    )
    op.create_index(
        "ix_rec_auto_rule_to", "recommendations", ["auto_rule", "to_id", "ship_date"], unique=False
    )
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("rule", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("rule")
    op.drop_index("ix_rec_auto_rule_to", table_name="recommendations")
    op.drop_index("ix_rec_status_exported", table_name="recommendations")
    with op.batch_alter_table("recommendations") as batch:
        batch.drop_column("export_file")
        batch.drop_column("exported_at")
        batch.drop_column("auto_rule")
    op.drop_table("auto_approval_rules")
