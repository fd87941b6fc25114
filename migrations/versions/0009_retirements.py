"""Retirements: candidates retired from shadowing by hand (``shadowroute retire`` / ``resume``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retirements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("primary_model", sa.String(), nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retirements")),
    )
    op.create_index(op.f("ix_retirements_task_type"), "retirements", ["task_type"])


def downgrade() -> None:
    op.drop_index(op.f("ix_retirements_task_type"), table_name="retirements")
    op.drop_table("retirements")
