"""The scoring job's own state: which candidate outputs wait for scores (``score_queue``) and
which scorers (and versions) the queue was last emptied against, per task type
(``score_plans``). With them a ``shadowroute score`` costs what is new, not what is stored:
a run reads the queue, never walks the store (:mod:`shadowroute.scoring.runner`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, UTCDateTime

__all__ = ["ScorePlan", "ScoreQueue"]


class ScoreQueue(Base):
    """A candidate output that may lack a score. :meth:`.Store.write` queues every output it
    writes in the output's own transaction (so whatever order writers commit in, no output
    is missed); the scoring job takes its work from here, in windows of a task type's
    exchanges, and removes an output once it holds every score its task's scorers owe it.
    What a run leaves (a judge call that failed, a spent budget) stays for the next run."""

    __tablename__ = "score_queue"
    __table_args__ = (Index("ix_score_queue_task_type_exchange_id_output_id",
                            "task_type", "exchange_id", "output_id"),)

    output_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("candidate_outputs.id", ondelete="CASCADE"), primary_key=True
    )
    task_type: Mapped[str] = mapped_column(String)
    exchange_id: Mapped[str] = mapped_column(String(32))


class ScorePlan(Base):
    """The (scorer, version) pairs a task type's queue was worked against. When the task's
    scorers change (a new scorer, a new version), the scoring job queues the task's stored
    outputs again, once, and records the new plan."""

    __tablename__ = "score_plans"

    task_type: Mapped[str] = mapped_column(String, primary_key=True)
    plan: Mapped[str] = mapped_column(Text)
    """``[["scorer", "version"], ...]``, sorted, as JSON text (compared as a string)."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
