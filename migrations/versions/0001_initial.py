"""Initial schema: exchanges, candidate_outputs, traffic_daily.

Revision ID: 0001
Revises:
Create Date: 2024-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("primary_model", sa.String(), nullable=False),
        sa.Column("request", JSON, nullable=False),
        sa.Column("primary_output", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchanges")),
    )
    op.create_index(op.f("ix_exchanges_created_at"), "exchanges", ["created_at"])
    op.create_index(
        "ix_exchanges_task_type_created_at", "exchanges", ["task_type", "created_at"]
    )

    op.create_table(
        "candidate_outputs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("exchange_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("error_kind", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["exchange_id"],
            ["exchanges.id"],
            name=op.f("fk_candidate_outputs_exchange_id_exchanges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidate_outputs")),
        sa.UniqueConstraint(
            "exchange_id", "model", name=op.f("uq_candidate_outputs_exchange_id_model")
        ),
    )
    op.create_index(op.f("ix_candidate_outputs_model"), "candidate_outputs", ["model"])

    op.create_table(
        "traffic_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("primary_model", sa.String(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("sampled", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "task_type", "primary_model", name=op.f("pk_traffic_daily")),
    )


def downgrade() -> None:
    op.drop_table("traffic_daily")
    op.drop_index(op.f("ix_candidate_outputs_model"), table_name="candidate_outputs")
    op.drop_table("candidate_outputs")
    op.drop_index("ix_exchanges_task_type_created_at", table_name="exchanges")
    op.drop_index(op.f("ix_exchanges_created_at"), table_name="exchanges")
    op.drop_table("exchanges")
