"""Who captured each exchange: ``exchanges.source``, indexed (``prune --source``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exchanges") as batch:
        batch.add_column(sa.Column("source", sa.String(), nullable=True))
        batch.create_index(batch.f("ix_exchanges_source"), ["source"])


def downgrade() -> None:
    with op.batch_alter_table("exchanges") as batch:
        batch.drop_index(batch.f("ix_exchanges_source"))
        batch.drop_column("source")
