"""``evidence_rollup``: the decision counts of the stored outputs per task type, model, route
and scorer-version digest, kept by the scoring job as it writes scores, so the report reads
them instead of every score. ``score_plans.rolled_up`` says whether a task's rollup is built;
the first ``score`` run after this revision builds each one (a pass over that task's scores).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("complete", "counted", "passed", "judged", "flipped", "flipped_passed", "pairs",
          "pairs_both_failed", "pairs_candidate_failed", "pairs_replay_failed",
          "schema_checked", "schema_invalid")


def upgrade() -> None:
    op.create_table(
        "evidence_rollup",
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("keys_digest", sa.String(length=16), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS],
        sa.PrimaryKeyConstraint("task_type", "model", "route", "keys_digest",
                                name=op.f("pk_evidence_rollup")),
    )
    with op.batch_alter_table("score_plans") as batch:
        batch.add_column(sa.Column("rolled_up", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("score_plans") as batch:
        batch.drop_column("rolled_up")
    op.drop_table("evidence_rollup")
