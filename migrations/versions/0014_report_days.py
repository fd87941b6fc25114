"""``report_days``: the report's figures per UTC day, and ``report_stale``: the days changed
since. Every day that holds exchanges starts stale; the first ``score`` run after this revision
counts each once.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("plans", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_report_days")),
    )
    op.create_table(
        "report_stale",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_stale")),
    )
    op.create_index(op.f("ix_report_stale_day"), "report_stale", ["day"])
    # created_at is UTC (naive text on SQLite, timestamptz on Postgres).
    day = ("date(created_at)" if op.get_bind().dialect.name == "sqlite"
           else "(created_at AT TIME ZONE 'UTC')::date")
    op.execute(f"INSERT INTO report_stale (day) SELECT DISTINCT {day} FROM exchanges")


def downgrade() -> None:
    op.drop_index(op.f("ix_report_stale_day"), table_name="report_stale")
    op.drop_table("report_stale")
    op.drop_table("report_days")
