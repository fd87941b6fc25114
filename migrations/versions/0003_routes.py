"""Routes: exchanges.route, the reports' decisions and the route map's history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("exchanges") as batch:
        batch.add_column(
            sa.Column("route", sa.String(), server_default="shadow", nullable=False)
        )
    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overview", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    op.create_index(op.f("ix_reports_created_at"), "reports", ["created_at"])
    op.create_table(
        "decisions",
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("primary_model", sa.String(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("pass_rate", sa.Float(), nullable=True),
        sa.Column("lower_bound", sa.Float(), nullable=True),
        sa.Column("noise_floor", sa.Float(), nullable=True),
        sa.Column("judge_version", sa.String(), nullable=True),
        sa.Column("monthly_savings", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_decisions_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", "task_type", "model", "kind",
                                name=op.f("pk_decisions")),
    )
    op.create_index("ix_decisions_task_type_model_created_at", "decisions",
                    ["task_type", "model", "created_at"])
    op.create_table(
        "route_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("primary_model", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=True),
        sa.Column("evidence", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_changes")),
    )
    op.create_index(op.f("ix_route_changes_task_type"), "route_changes", ["task_type"])


def downgrade() -> None:
    op.drop_index(op.f("ix_route_changes_task_type"), table_name="route_changes")
    op.drop_table("route_changes")
    op.drop_index("ix_decisions_task_type_model_created_at", table_name="decisions")
    op.drop_table("decisions")
    op.drop_index(op.f("ix_reports_created_at"), table_name="reports")
    op.drop_table("reports")
    with op.batch_alter_table("exchanges") as batch:
        batch.drop_column("route")
