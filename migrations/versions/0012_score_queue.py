"""The scoring job's queue: ``score_queue`` holds the candidate outputs that may lack a score
(every output is queued by the write that stores it), ``score_plans`` the scorers each task
type's queue was last worked against. A run of ``shadowroute score`` then reads the queue
instead of walking the store.

Every output stored before this revision is queued, so the first run after the upgrade looks
at each of them once (as every run did before) and leaves the queue holding only what still
lacks a score.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "score_queue",
        sa.Column("output_id", sa.String(length=32), nullable=False),
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("exchange_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["candidate_outputs.id"],
            name=op.f("fk_score_queue_output_id_candidate_outputs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("output_id", name=op.f("pk_score_queue")),
    )
    op.create_index("ix_score_queue_task_type_exchange_id_output_id", "score_queue",
                    ["task_type", "exchange_id", "output_id"])
    op.create_table(
        "score_plans",
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_type", name=op.f("pk_score_plans")),
    )
    op.execute(
        "INSERT INTO score_queue (output_id, task_type, exchange_id) "
        "SELECT o.id, x.task_type, o.exchange_id FROM candidate_outputs o "
        "JOIN exchanges x ON x.id = o.exchange_id"
    )


def downgrade() -> None:
    op.drop_table("score_plans")
    op.drop_index("ix_score_queue_task_type_exchange_id_output_id", table_name="score_queue")
    op.drop_table("score_queue")
