"""Cascades and per-request routes: ``candidate_outputs.finish_reason`` (the ``truncated``
check) and ``routed_daily`` (what the routes served: kept, escalated, sent to the primary).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("candidate_outputs") as batch:
        batch.add_column(sa.Column("finish_reason", sa.String(), nullable=True))
    op.create_table(
        "routed_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "task_type", "model", "outcome",
                                name=op.f("pk_routed_daily")),
    )


def downgrade() -> None:
    op.drop_table("routed_daily")
    with op.batch_alter_table("candidate_outputs") as batch:
        batch.drop_column("finish_reason")
