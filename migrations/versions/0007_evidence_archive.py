"""Evidence that outlives pruning: the decision counts of deleted exchanges.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("complete", "counted", "passed", "judged", "flipped", "flipped_passed", "pairs",
          "pairs_both_failed", "pairs_candidate_failed", "pairs_replay_failed",
          "schema_checked", "schema_invalid")


def upgrade() -> None:
    op.create_table(
        "evidence_archive",
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("keys_digest", sa.String(length=16), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS],
        sa.PrimaryKeyConstraint("task_type", "model", "route", "keys_digest",
                                name=op.f("pk_evidence_archive")),
    )


def downgrade() -> None:
    op.drop_table("evidence_archive")
