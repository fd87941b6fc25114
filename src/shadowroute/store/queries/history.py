"""The stored decisions over time: what the report's trend charts read.

    await decision_history(store)                # the last 60 report runs' shadow decisions
    await decision_history(store, runs=14, kind="drift")

One ``decisions`` row per report run per task type x model (``shadowroute report`` stores them,
see :mod:`.routes`). The read is bounded by report runs, not rows: the newest ``runs`` runs,
whatever their number of decisions. Rows come out as plain dicts keyed by column name, oldest
first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..models import ReportRun, StoredDecision

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["HISTORY_RUNS", "decision_history"]

HISTORY_RUNS = 60
"""Report runs the trend charts look back over by default (two months of nightly reports)."""

_R = ReportRun.__table__
_D = StoredDecision.__table__
_COLUMNS = ("report_id", "created_at", "task_type", "model", "kind", "verdict", "n", "passed",
            "pass_rate", "lower_bound", "noise_floor")


async def decision_history(
    store: Store, *, runs: int = HISTORY_RUNS, kind: str | None = "shadow",
) -> list[dict[str, Any]]:
    """The decisions of the newest ``runs`` report runs (of ``kind``; every kind when
    ``None``), oldest first: by the run's time, then task type and model. ``runs`` below 1
    reads nothing."""
    if runs < 1:
        return []
    newest = select(_R.c.id).order_by(_R.c.created_at.desc(), _R.c.id.desc()).limit(runs)
    query = (
        select(*(_D.c[name] for name in _COLUMNS))
        .where(_D.c.report_id.in_(newest.scalar_subquery()))
        .order_by(_D.c.created_at, _D.c.report_id, _D.c.task_type, _D.c.model)
    )
    if kind is not None:
        query = query.where(_D.c.kind == kind)
    async with store.connect("read the reports in") as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings().all()]
