"""Fidelity of the capture: settings a translation could not carry, calls that cannot be shadowed.

``exchanges.not_carried``: settings of the primary's request the canonical form has no place for.
``candidate_outputs.not_carried``: settings the candidate's own API could not be given. Both
are JSON lists of names, NULL when everything was carried. ``traffic_daily.not_shadowable``:
production calls sampled but not mirrored because they depend on state their provider keeps
(``previous_response_id``, server-side tools, ...).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("exchanges") as batch:
        batch.add_column(sa.Column("not_carried", JSON, nullable=True))
    with op.batch_alter_table("candidate_outputs") as batch:
        batch.add_column(sa.Column("not_carried", JSON, nullable=True))
    with op.batch_alter_table("traffic_daily") as batch:
        batch.add_column(sa.Column("not_shadowable", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("traffic_daily") as batch:
        batch.drop_column("not_shadowable")
    with op.batch_alter_table("candidate_outputs") as batch:
        batch.drop_column("not_carried")
    with op.batch_alter_table("exchanges") as batch:
        batch.drop_column("not_carried")
