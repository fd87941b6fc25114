"""Replayed batches change no count: ``applied_batches`` records the id of every batch whose
traffic and routed counts were added, so writing it again (a spool file replayed after a
commit the client did not see, or twice after a crash) adds nothing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "applied_batches",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applied_batches")),
    )


def downgrade() -> None:
    op.drop_table("applied_batches")
