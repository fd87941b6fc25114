"""The decisions of each report and the route map's history, in the database.

    await save_report(store, report_row, decision_rows)       # shadowroute report
    await latest_decision(store, "classify_intent", "small")  # shadowroute promote's gate
    await add_route_change(store, change)                     # promote / demote
    await route_changes(store)                                # the map's history, oldest first

Rows go in and come out as plain dicts keyed by column name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..models import ReportRun, RouteChange, StoredDecision

if TYPE_CHECKING:
    from ..store import Store

__all__ = [
    "add_route_change",
    "decisions_of",
    "latest_decision",
    "latest_report",
    "route_changes",
    "save_report",
]

_R = ReportRun.__table__
_D = StoredDecision.__table__
_C = RouteChange.__table__


async def save_report(
    store: Store, report: Mapping[str, Any], decisions: Sequence[Mapping[str, Any]]
) -> None:
    """Store a report run and its decisions in one transaction."""
    async with store.begin("store the report in") as conn:
        await conn.execute(_R.insert(), [dict(report)])
        if decisions:
            await conn.execute(_D.insert(), [dict(d) for d in decisions])


async def latest_report(store: Store) -> dict[str, Any] | None:
    """The most recent report run, or ``None`` before the first."""
    query = select(_R).order_by(_R.c.created_at.desc(), _R.c.id.desc()).limit(1)
    async with store.connect("read the reports in") as conn:
        row = (await conn.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def decisions_of(store: Store, report_id: str) -> list[dict[str, Any]]:
    """The decisions of report ``report_id``, by task type, kind and model."""
    query = select(_D).where(_D.c.report_id == report_id).order_by(
        _D.c.task_type, _D.c.kind, _D.c.model)
    async with store.connect("read the reports in") as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings().all()]


async def latest_decision(
    store: Store, task: str, model: str, kind: str = "shadow"
) -> dict[str, Any] | None:
    """The newest report's verdict on ``task`` x ``model`` (``None`` if no report decided it)."""
    query = (
        select(_D)
        .where(_D.c.task_type == task, _D.c.model == model, _D.c.kind == kind)
        .order_by(_D.c.created_at.desc(), _D.c.report_id.desc())
        .limit(1)
    )
    async with store.connect("read the reports in") as conn:
        row = (await conn.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def add_route_change(store: Store, change: Mapping[str, Any]) -> dict[str, Any]:
    """Append one change to the map's history; returns it with its id."""
    async with store.begin("write the route map in") as conn:
        result = await conn.execute(_C.insert().returning(_C.c.id), dict(change))
        new_id = result.scalar_one()
    return {**change, "id": new_id}


async def route_changes(store: Store, task: str | None = None) -> list[dict[str, Any]]:
    """Every change (of ``task``, or of all task types), oldest first."""
    query = select(_C).order_by(_C.c.created_at, _C.c.id)
    if task is not None:
        query = query.where(_C.c.task_type == task)
    async with store.connect("read the route map in") as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings().all()]
