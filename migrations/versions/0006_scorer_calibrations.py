"""Scorer calibrations: how far each scorer of a task type agrees with labels people already have.

One row per (task type, scorer, scorer version) and ``shadowroute calibrate`` run: ``n``
labelled outputs the scorer applied to, precision / recall / accuracy / Cohen's kappa of "the
scorer passes" against "the answer is acceptable" at the configured threshold (the stored
``passed``) and at the threshold of the sweep that agrees best (``criterion``), the label source
(``file`` or ``outcomes``), the sweep itself and the counts behind it (JSON).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "scorer_calibrations",
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("scorer", sa.String(), nullable=False),
        sa.Column("scorer_version", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("label_source", sa.String(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("precision", sa.Float(), nullable=True),
        sa.Column("recall", sa.Float(), nullable=True),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("kappa", sa.Float(), nullable=True),
        sa.Column("criterion", sa.String(), nullable=False),
        sa.Column("best_threshold", sa.Float(), nullable=True),
        sa.Column("best_precision", sa.Float(), nullable=True),
        sa.Column("best_recall", sa.Float(), nullable=True),
        sa.Column("best_accuracy", sa.Float(), nullable=True),
        sa.Column("best_kappa", sa.Float(), nullable=True),
        sa.Column("sweep", JSON, nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.PrimaryKeyConstraint("task_type", "scorer", "scorer_version", "created_at",
                                name=op.f("pk_scorer_calibrations")),
    )


def downgrade() -> None:
    op.drop_table("scorer_calibrations")
