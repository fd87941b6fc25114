"""The report's figures per UTC day (``report_days``), so a report over a month (or a year)
reads a row per day instead of every stored pair.

- Every write marks the days it touched stale (``report_stale``, insert only, :mod:`.stale`):
  a batch of exchanges (:meth:`.Store.write`), scores (:func:`.scores.insert_scores`), a
  ``prune``.
- :func:`refresh_days` (at the end of every ``score`` run) counts each stale day, and each day
  counted under other scorers than the config's, over that day's exchanges with the same
  queries a report runs (:func:`gather`), stores the figures and deletes the marks it read. A
  mark written meanwhile stays, so the day stays stale; two refreshes of one day cannot both
  store (``version``).
- :func:`window_figures` (the report) adds the rows of the window's fresh days to the figures
  of the rest, counted from the pairs: the window's first day when it starts mid-day, stale
  days, days counted under other scorers, today. So the report's figures are the same
  whichever days the rows cover (tests compare them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ...records import ROUTE_SHADOW
from ..figures import Figures
from ..scoring_tables import ReportDay, ReportStale
from . import report as q
from .plans import plan_text
from .scores import Keys, insert_for, score_summary
from .span import Since, Span
from .stale import utc_day
from .validity import scorer_failures

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["KEPT_EXAMPLES", "DayRefresh", "gather", "refresh_days", "window_figures"]

KEPT_EXAMPLES = 20
"""Worst outputs kept per candidate and day (the CLI's ``--examples`` goes up to 20); a report
asking for more counts every day from the pairs."""

DAY = timedelta(days=1)

_D = ReportDay.__table__
_M = ReportStale.__table__

KeysOf = Callable[[str], Keys]
"""Task type -> its current (scorer, version) keys."""


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def gather(conn: AsyncConnection, keys_of: KeysOf, since: Since,
                 examples: int) -> Figures:
    """The report's figures over the exchanges in ``since``, counted from the pairs."""
    if isinstance(since, Span) and since.empty:
        return Figures()
    outputs = await q.output_totals(conn, since)
    keys = {task: keys_of(task) for task in sorted({task for task, _ in outputs})}
    counts, worst = await q.outcomes(conn, keys, since, examples)
    summaries = {}
    for row in await score_summary(conn, keys, since, ROUTE_SHADOW):
        task, model, scorer = row.pop("task"), row.pop("model"), row.pop("scorer")
        mean = row.pop("mean")
        row["value_sum"] = 0.0 if mean is None else mean * row["valued"]
        summaries[(task, model, scorer)] = row
    return Figures(
        primaries=await q.primary_totals(conn, since), outputs=outputs, counts=counts,
        worst=worst, summaries=summaries,
        latency=await q.latency_histograms(conn, since),
        similarity=await q.score_histograms(conn, keys, "similarity", since),
        schema=await q.primary_schema_checks(conn, keys, since),
        judging=await q.scoring_spend(conn, since),
        not_carried=await q.not_carried_counts(conn, since),
        failures=await scorer_failures(conn, keys, since),
        sources=await q.exchanges_by_source(conn, since),
    )


def _plans(figures: Figures, keys_of: KeysOf) -> dict[str, str]:
    return {task: plan_text(keys_of(task)) for task in figures.tasks()}


def _current(plans: Mapping[str, str], keys_of: KeysOf) -> bool:
    return all(plan == plan_text(keys_of(task)) for task, plan in plans.items())


@dataclass
class DayRefresh:
    """What :func:`refresh_days` did."""

    refreshed: list[date] = field(default_factory=list)
    emptied: int = 0
    """Days whose exchanges are all gone (pruned): their rows were deleted."""
    raced: int = 0
    """Days another refresh (or a write) changed meanwhile: left for the next run."""


async def refresh_days(store: Store, keys_of: KeysOf, *,
                       now: datetime | None = None) -> DayRefresh:
    """Count every stale day, and every day counted under other scorers than ``keys_of``'s,
    into ``report_days`` (one transaction per day)."""
    async with store.connect("read the report's days in") as conn:
        marks: dict[date, list[int]] = {}
        for mark_id, day in (await conn.execute(select(_M.c.id, _M.c.day))).all():
            marks.setdefault(day, []).append(mark_id)
        rows = {day: (version, json.loads(plans)) for day, version, plans in
                (await conn.execute(select(_D.c.day, _D.c.version, _D.c.plans))).all()}
    todo = sorted(set(marks) | {day for day, (_, plans) in rows.items()
                                if not _current(plans, keys_of)})
    done = DayRefresh()
    for day in todo:
        version = rows[day][0] if day in rows else None
        async with q.reading(store) as conn:
            start = day_start(day)
            figures = await gather(conn, keys_of, Span(((start, start + DAY),)), KEPT_EXAMPLES)
        async with store.begin("store the report's days in") as conn:
            if await _save(conn, day, version, figures, keys_of, now or datetime.now(UTC)):
                ids = marks.get(day, [])
                for first in range(0, len(ids), 1000):
                    await conn.execute(delete(_M).where(_M.c.id.in_(ids[first : first + 1000])))
                if figures.empty:
                    done.emptied += 1
                else:
                    done.refreshed.append(day)
            else:
                done.raced += 1
    return done


async def _save(conn: AsyncConnection, day: date, version: int | None, figures: Figures,
                keys_of: KeysOf, now: datetime) -> bool:
    """Store the day's figures if its row is still at ``version`` (``None``: no row);
    whether it was."""
    if figures.empty:
        if version is None:
            return True
        result = await conn.execute(delete(_D).where(_D.c.day == day, _D.c.version == version))
        return bool(result.rowcount)
    values = {"plans": json.dumps(_plans(figures, keys_of), sort_keys=True),
              "payload": json.dumps(figures.to_json()), "refreshed_at": now}
    if version is None:
        inserted = await conn.scalar(
            insert_for(conn.dialect.name, _D)
            .values(day=day, version=1, **values).on_conflict_do_nothing().returning(_D.c.day))
        return inserted is not None
    result = await conn.execute(update(_D).where(_D.c.day == day, _D.c.version == version)
                                .values(version=version + 1, **values))
    return bool(result.rowcount)


async def window_figures(conn: AsyncConnection, keys_of: KeysOf, since: datetime | None,
                         examples: int) -> tuple[Figures, int]:
    """The report's figures over the exchanges created at or after ``since``: the stored rows
    of the window's whole days that are fresh, plus the rest counted from the pairs. Returns
    them (finished: means and ``examples`` worst outputs) and how many days came from rows."""
    rows: list[tuple[date, str]] = []
    if examples <= KEPT_EXAMPLES:
        first = None if since is None else utc_day(since)
        if since is not None and since != day_start(utc_day(since)):
            first = utc_day(since) + DAY  # the first day is partial: from the pairs
        # One statement, one snapshot: a row and the marks that make it stale.
        stale = exists().where(_M.c.day == _D.c.day)
        query = (select(_D.c.day, _D.c.plans, _D.c.payload).where(~stale)
                 .order_by(_D.c.day))
        if first is not None:
            query = query.where(_D.c.day >= first)
        rows = [(day, payload) for day, plans, payload in (await conn.execute(query)).all()
                if _current(json.loads(plans), keys_of)]
    figures = await gather(conn, keys_of, _rest(since, [day for day, _ in rows]), examples)
    for _, payload in rows:
        figures.add(Figures.from_json(json.loads(payload)))
    figures.finish(examples)
    return figures, len(rows)


def _rest(since: datetime | None, days: Sequence[date]) -> Since:
    """``since`` onwards, less the (sorted) ``days``."""
    if not days:
        return since
    ranges: list[tuple[datetime | None, datetime | None]] = []
    start: datetime | None = since
    for day in days:
        if start is None or start < day_start(day):
            ranges.append((start, day_start(day)))
        start = day_start(day) + DAY
    ranges.append((start, None))
    return Span(tuple(ranges))
