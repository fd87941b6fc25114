"""Scores: one row per (candidate output, scorer, scorer version); exchanges by (task, id).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "scores",
        sa.Column("output_id", sa.String(length=32), nullable=False),
        sa.Column("scorer", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["candidate_outputs.id"],
            name=op.f("fk_scores_output_id_candidate_outputs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("output_id", "scorer", "version", name=op.f("pk_scores")),
    )


    op.create_index("ix_exchanges_task_type_id", "exchanges", ["task_type", "id"])


def downgrade() -> None:
    op.drop_index("ix_exchanges_task_type_id", table_name="exchanges")
    op.drop_table("scores")
