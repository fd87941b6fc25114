"""The scoring job's own state: which candidate outputs wait for scores (``score_queue``),
which scorers (and versions) the queue was last emptied against, per task type
(``score_plans``), and the decision counts of the stored outputs under those scorers
(``evidence_rollup``), kept by the scoring job as it writes scores. With them a ``shadowroute
score`` costs what is new, not what is stored (a run reads the queue, never walks the store:
:mod:`shadowroute.scoring.runner`), and the report reads the counts instead of every score.
The report's other figures (volumes, costs, latencies, per-scorer rates, worst examples) are
kept per UTC day (``report_days``), refreshed at the end of a ``score`` run for the days that
changed since (``report_stale``: every write marks the days it touched)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, EvidenceCounts, UTCDateTime

__all__ = ["EvidenceRollup", "ReportDay", "ReportStale", "ScorePlan", "ScoreQueue"]


class ScoreQueue(Base):
    """A candidate output that may lack a score. :meth:`.Store.write` queues every output it
    writes in the output's own transaction (so whatever order writers commit in, no output
    is missed); the scoring job takes its work from here, in windows of a task type's
    exchanges, and removes an output once it holds every score its task's scorers owe it.
    What a run leaves (a judge call that failed, a spent budget) stays for the next run."""

    __tablename__ = "score_queue"
    __table_args__ = (Index("ix_score_queue_task_type_exchange_id_output_id",
                            "task_type", "exchange_id", "output_id"),)

    output_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task_type: Mapped[str] = mapped_column(String)
    exchange_id: Mapped[str] = mapped_column(String(32))
    exchange_created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """The exchange's ``created_at`` (half of the output's key)."""


class ScorePlan(Base):
    """The (scorer, version) pairs a task type's queue was worked against. When the task's
    scorers change (a new scorer, a new version), the scoring job queues the task's stored
    outputs again, once, and records the new plan."""

    __tablename__ = "score_plans"

    task_type: Mapped[str] = mapped_column(String, primary_key=True)
    plan: Mapped[str] = mapped_column(Text)
    """``[["scorer", "version"], ...]``, sorted, as JSON text (compared as a string)."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rolled_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Whether ``evidence_rollup`` holds the task's counts under this plan."""


class EvidenceRollup(EvidenceCounts, Base):
    """The decision counts of the stored outputs of a task type under its plan's scorer
    versions (digest), per model and route, as :func:`~shadowroute.store.queries.evidence.
    evidence_counts` would count them over the whole store: built once when the plan is
    recorded, then moved by every scoring batch (what its scores changed) and by ``prune``
    (what it deleted, which ``evidence_archive`` takes over)."""

    __tablename__ = "evidence_rollup"

    task_type: Mapped[str] = mapped_column(String, primary_key=True)
    model: Mapped[str] = mapped_column(String, primary_key=True)
    route: Mapped[str] = mapped_column(String, primary_key=True)
    keys_digest: Mapped[str] = mapped_column(String(16), primary_key=True)


class ReportDay(Base):
    """The report's figures over the exchanges of one UTC day
    (:class:`~shadowroute.store.figures.Figures` as JSON), counted under the task types'
    scorers of the time (``plans``: task -> its plan, as ``score_plans.plan`` holds it). A
    report reads it for the day while the day is not stale and the plans are the config's."""

    __tablename__ = "report_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    """Moves at every refresh: a refresh that read an older version stores nothing."""
    plans: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportStale(Base):
    """A day whose stored exchanges, outputs or scores changed after its ``report_days`` row
    was counted (or that has none yet). Writers only insert (no row is contended); a refresh
    deletes the marks it read, and a mark written meanwhile keeps the day stale."""

    __tablename__ = "report_stale"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date, index=True)
