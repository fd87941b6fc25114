"""The capture time joins the keys of the big tables, which Postgres partitions by month.

``candidate_outputs``, ``scores`` and ``score_queue`` gain ``exchange_created_at`` (their
exchange's ``created_at``); the keys become ``exchanges (id, created_at)``,
``candidate_outputs (id, exchange_created_at)`` and ``scores (output_id, scorer, version,
exchange_created_at)``. The foreign keys from ``candidate_outputs``, ``scores`` and
``score_queue`` to their parents go (on Postgres each check of a partitioned table is a query
of its own: they halved the ingest rate; the write path and ``prune`` keep the rows together).
On Postgres ``exchanges``,
``candidate_outputs`` and ``scores`` are rebuilt as tables partitioned by month of that time
(see ``shadowroute.store.partitions``): one partition per month from the oldest stored
exchange to two months ahead, and a default one; every row is copied (the upgrade takes about
as long as writing the store once, under an exclusive lock: run it when nothing writes).
SQLite only gains the columns and keys. Outputs whose exchange is gone (SQLite without
foreign key enforcement) are dropped: nothing could read them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgres()
    else:
        _sqlite()


def _sqlite() -> None:
    op.add_column("candidate_outputs", sa.Column("exchange_created_at", _TIME, nullable=True))
    op.add_column("scores", sa.Column("exchange_created_at", _TIME, nullable=True))
    op.add_column("score_queue", sa.Column("exchange_created_at", _TIME, nullable=True))
    op.execute("UPDATE candidate_outputs SET exchange_created_at = (SELECT x.created_at FROM "
               "exchanges x WHERE x.id = candidate_outputs.exchange_id)")
    op.execute("DELETE FROM candidate_outputs WHERE exchange_created_at IS NULL")
    for table, key in (("scores", "output_id"), ("score_queue", "output_id")):
        op.execute(f"UPDATE {table} SET exchange_created_at = (SELECT o.exchange_created_at "
                   f"FROM candidate_outputs o WHERE o.id = {table}.{key})")
        op.execute(f"DELETE FROM {table} WHERE exchange_created_at IS NULL")
    with op.batch_alter_table("exchanges", recreate="always") as batch:
        batch.drop_constraint("pk_exchanges", type_="primary")
        batch.create_primary_key("pk_exchanges", ["id", "created_at"])
    with op.batch_alter_table("candidate_outputs", recreate="always") as batch:
        batch.alter_column("exchange_created_at", existing_type=_TIME, nullable=False)
        batch.drop_constraint("uq_candidate_outputs_exchange_id_model", type_="unique")
        batch.create_unique_constraint(
            "uq_candidate_outputs_exchange_id_exchange_created_at_model",
            ["exchange_id", "exchange_created_at", "model"])
        batch.drop_constraint("fk_candidate_outputs_exchange_id_exchanges", type_="foreignkey")
        batch.drop_constraint("pk_candidate_outputs", type_="primary")
        batch.create_primary_key("pk_candidate_outputs", ["id", "exchange_created_at"])
    for table, name in (("scores", "fk_scores_output_id_candidate_outputs"),
                        ("score_queue", "fk_score_queue_output_id_candidate_outputs")):
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.alter_column("exchange_created_at", existing_type=_TIME, nullable=False)
            batch.drop_constraint(name, type_="foreignkey")
            if table == "scores":
                batch.drop_constraint("pk_scores", type_="primary")
                batch.create_primary_key(
                    "pk_scores", ["output_id", "scorer", "version", "exchange_created_at"])


_EXCHANGE_INDEXES = (
    ("ix_exchanges_created_at", ["created_at"]),
    ("ix_exchanges_source", ["source"]),
    ("ix_exchanges_task_type_created_at", ["task_type", "created_at"]),
    ("ix_exchanges_task_type_id", ["task_type", "id"]),
)


def _postgres() -> None:
    for table, name in (("score_queue", "fk_score_queue_output_id_candidate_outputs"),
                        ("scores", "fk_scores_output_id_candidate_outputs"),
                        ("candidate_outputs", "fk_candidate_outputs_exchange_id_exchanges")):
        op.drop_constraint(name, table, type_="foreignkey")
    # The old tables step aside, their keys and indexes dropped (the names are taken again).
    for name, _ in _EXCHANGE_INDEXES:
        op.drop_index(name, table_name="exchanges")
    op.drop_index("ix_candidate_outputs_model", table_name="candidate_outputs")
    op.drop_constraint("uq_candidate_outputs_exchange_id_model", "candidate_outputs",
                       type_="unique")
    for table in ("exchanges", "candidate_outputs", "scores"):
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.rename_table(table, f"{table}_unpartitioned")

    op.create_table(
        "exchanges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("primary_model", sa.String(), nullable=False),
        sa.Column("request", JSONB(), nullable=False),
        sa.Column("primary_output", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("metadata", JSONB(), nullable=False),
        sa.Column("route", sa.String(), server_default="shadow", nullable=False),
        sa.Column("not_carried", JSONB(none_as_null=True), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        postgresql_partition_by="RANGE (created_at)",
    )
    op.create_table(
        "candidate_outputs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("exchange_id", sa.String(length=32), nullable=False),
        sa.Column("exchange_created_at", _TIME, nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("error_kind", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("not_carried", JSONB(none_as_null=True), nullable=True),
        sa.Column("finish_reason", sa.String(), nullable=True),
        postgresql_partition_by="RANGE (exchange_created_at)",
    )
    op.create_table(
        "scores",
        sa.Column("output_id", sa.String(length=32), nullable=False),
        sa.Column("scorer", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("exchange_created_at", _TIME, nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("details", JSONB(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        postgresql_partition_by="RANGE (exchange_created_at)",
    )
    # A partition per month from the oldest exchange's to two months ahead, and a default.
    op.execute("""
DO $$
DECLARE
    month date := date_trunc('month', least(
        (SELECT min(created_at) FROM exchanges_unpartitioned), now()) AT TIME ZONE 'UTC');
    last date := date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months';
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['exchanges', 'candidate_outputs', 'scores'] LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_default', t);
    END LOOP;
    WHILE month <= last LOOP
        FOREACH t IN ARRAY ARRAY['exchanges', 'candidate_outputs', 'scores'] LOOP
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                t || '_y' || to_char(month, 'YYYY') || 'm' || to_char(month, 'MM'), t,
                month::text || ' 00:00:00+00',
                (month + interval '1 month')::date::text || ' 00:00:00+00');
        END LOOP;
        month := month + interval '1 month';
    END LOOP;
END $$""")
    op.execute(
        "INSERT INTO exchanges (id, created_at, task_type, primary_model, request, "
        "primary_output, input_tokens, output_tokens, latency_ms, cost_usd, metadata, route, "
        "not_carried, source) SELECT id, created_at, task_type, primary_model, request, "
        "primary_output, input_tokens, output_tokens, latency_ms, cost_usd, metadata, route, "
        "not_carried, source FROM exchanges_unpartitioned")
    outputs = ("id, exchange_id, model, output, input_tokens, output_tokens, latency_ms, "
               "cost_usd, error_kind, error, attempts, created_at, not_carried, finish_reason")
    op.execute(
        f"INSERT INTO candidate_outputs ({outputs}, exchange_created_at) "
        f"SELECT {', '.join('o.' + c for c in outputs.split(', '))}, x.created_at "
        "FROM candidate_outputs_unpartitioned o JOIN exchanges_unpartitioned x "
        "ON x.id = o.exchange_id")
    op.execute(
        "INSERT INTO scores (output_id, scorer, version, value, passed, details, cost_usd, "
        "created_at, exchange_created_at) SELECT s.output_id, s.scorer, s.version, s.value, "
        "s.passed, s.details, s.cost_usd, s.created_at, x.created_at "
        "FROM scores_unpartitioned s JOIN candidate_outputs_unpartitioned o "
        "ON o.id = s.output_id JOIN exchanges_unpartitioned x ON x.id = o.exchange_id")
    op.execute("DROP TABLE scores_unpartitioned, candidate_outputs_unpartitioned, "
               "exchanges_unpartitioned")

    op.create_primary_key("pk_exchanges", "exchanges", ["id", "created_at"])
    for name, columns in _EXCHANGE_INDEXES:
        op.create_index(name, "exchanges", columns)
    op.create_primary_key("pk_candidate_outputs", "candidate_outputs",
                          ["id", "exchange_created_at"])
    op.create_unique_constraint("uq_candidate_outputs_exchange_id_exchange_created_at_model",
                                "candidate_outputs",
                                ["exchange_id", "exchange_created_at", "model"])
    op.create_index("ix_candidate_outputs_model", "candidate_outputs", ["model"])
    op.create_primary_key("pk_scores", "scores",
                          ["output_id", "scorer", "version", "exchange_created_at"])

    op.add_column("score_queue", sa.Column("exchange_created_at", _TIME, nullable=True))
    op.execute("UPDATE score_queue q SET exchange_created_at = o.exchange_created_at "
               "FROM candidate_outputs o WHERE o.id = q.output_id")
    op.execute("DELETE FROM score_queue WHERE exchange_created_at IS NULL")
    op.alter_column("score_queue", "exchange_created_at", existing_type=_TIME, nullable=False)
    # Statistics for what was copied. Not on an empty store: tables analyzed empty would have
    # the first sessions cache plans that scan.
    op.execute("DO $$ BEGIN IF EXISTS (SELECT 1 FROM exchanges) THEN "
               "ANALYZE exchanges, candidate_outputs, scores; END IF; END $$")


def downgrade() -> None:
    raise NotImplementedError(
        "revision 0015 (monthly partitions) cannot be undone in place: restore a backup taken "
        "before the upgrade")
