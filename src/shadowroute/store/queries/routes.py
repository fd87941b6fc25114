"""The decisions of each report and the route map's history, in the database.

    await save_report(engine, report_row, decision_rows)       # shadowroute report
    await latest_decision(engine, "classify_intent", "small")  # shadowroute promote's gate
    await add_route_change(engine, change)                     # promote / demote
    await route_changes(engine)                                # the map's history, oldest first

Rows go in and come out as plain dicts keyed by column name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..models import ReportRun, RouteChange, StoredDecision

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
    engine: AsyncEngine, report: Mapping[str, Any], decisions: Sequence[Mapping[str, Any]]
) -> None:
    """Store a report run and its decisions in one transaction."""
    async with engine.begin() as conn:
        await conn.execute(_R.insert(), [dict(report)])
        if decisions:
            await conn.execute(_D.insert(), [dict(d) for d in decisions])


async def latest_report(engine: AsyncEngine) -> dict[str, Any] | None:
    """The most recent report run, or ``None`` before the first."""
    query = select(_R).order_by(_R.c.created_at.desc(), _R.c.id.desc()).limit(1)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def decisions_of(engine: AsyncEngine, report_id: str) -> list[dict[str, Any]]:
    query = select(_D).where(_D.c.report_id == report_id).order_by(
        _D.c.task_type, _D.c.kind, _D.c.model)
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings().all()]


async def latest_decision(
    engine: AsyncEngine, task: str, model: str, kind: str = "shadow"
) -> dict[str, Any] | None:
    """The newest report's verdict on ``task`` x ``model`` (``None`` if no report decided it)."""
    query = (
        select(_D)
        .where(_D.c.task_type == task, _D.c.model == model, _D.c.kind == kind)
        .order_by(_D.c.created_at.desc(), _D.c.report_id.desc())
        .limit(1)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def add_route_change(engine: AsyncEngine, change: Mapping[str, Any]) -> dict[str, Any]:
    """Append one change to the map's history; returns it with its id."""
    async with engine.begin() as conn:
        result = await conn.execute(_C.insert().returning(_C.c.id), dict(change))
        new_id = result.scalar_one()
    return {**change, "id": new_id}


async def route_changes(engine: AsyncEngine, task: str | None = None) -> list[dict[str, Any]]:
    """Every change (of ``task``, or of all task types), oldest first."""
    query = select(_C).order_by(_C.c.created_at, _C.c.id)
    if task is not None:
        query = query.where(_C.c.task_type == task)
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings().all()]
