"""Marking the UTC days whose report figures changed (``report_stale``, see :mod:`.days`):
every write of exchanges, outputs or scores marks the days of the exchanges it touched, in its
own transaction. Insert only, so concurrent writers never wait on one another here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..models import Exchange
from ..scoring_tables import ReportStale

__all__ = ["mark_all", "mark_days", "mark_exchanges", "utc_day"]

_M = ReportStale.__table__
_X = Exchange.__table__
_SLICE = 1000


def utc_day(moment: datetime) -> date:
    """The UTC day of ``moment`` (a naive time is UTC already)."""
    return (moment if moment.tzinfo is None else moment.astimezone(UTC)).date()


async def mark_days(conn: AsyncConnection, days: Iterable[date]) -> None:
    """Mark ``days`` stale."""
    rows = [{"day": day} for day in sorted(set(days))]
    if rows:
        await conn.execute(insert(_M), rows)


async def mark_exchanges(conn: AsyncConnection, ids: Sequence[str]) -> None:
    """Mark the days of the exchanges ``ids``."""
    await _mark(conn, lambda chunk: select(_X.c.created_at).where(_X.c.id.in_(chunk)), ids)


async def _mark(conn: AsyncConnection, query_of: Callable[[list[str]], Select[Any]],
                ids: Sequence[str]) -> None:
    unique = sorted(set(ids))
    days: set[date] = set()
    for start in range(0, len(unique), _SLICE):
        query = query_of(unique[start : start + _SLICE])
        days.update(utc_day(created) for created in (await conn.scalars(query)).all())
    await mark_days(conn, days)


async def mark_all(conn: AsyncConnection) -> None:
    """Mark every day that holds exchanges (a pass over them: ``score --rescan``)."""
    day = ("date(created_at)" if conn.dialect.name == "sqlite"
           else "(created_at AT TIME ZONE 'UTC')::date")
    await conn.exec_driver_sql(f"INSERT INTO report_stale (day) SELECT DISTINCT {day} FROM exchanges")
