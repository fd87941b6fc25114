"""Queries of the scoring job: which outputs may lack a score, the pairs to score, the
batched, idempotent insert of the scores, and the queue they come off.

Work comes from ``score_queue`` (every output is queued by the write that stores it, and
queued again when its task's scorers change: :func:`.plans.sync_plan`), in windows of a task type's
queued outputs (keyset pagination on the queue's (task_type, exchange_id, output_id) index),
then one lookup of those outputs' existing scores; an output that holds them all leaves the
queue (:func:`dequeue`). So a run costs what is queued, whatever the store holds, and a run
with nothing new reads an empty index range. On Postgres the outputs of a window that still
lack a score are locked with ``FOR UPDATE SKIP LOCKED``: several ``shadowroute score``
processes never take the same output, and because the existing scores are read again after
the lock is taken, an output scored by another process in the meantime is not scored twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    exists,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..models import CandidateOutput, Exchange, Score, exchange_of, output_of
from ..scoring_tables import ScorePlan, ScoreQueue
from .span import Since, within
from .stale import mark_days, utc_day

__all__ = [
    "Pair",
    "ScoreRow",
    "Span",
    "count_queued",
    "dequeue",
    "enqueue_stored",
    "exchange_metadata",
    "existing_scores",
    "has_outputs",
    "insert_for",
    "insert_scores",
    "load_pairs",
    "lock_ids",
    "output_task_types",
    "queued_primaries",
    "queued_task_types",
    "requeue",
    "score_summary",
    "span_of",
    "window_ids",
]

_X = Exchange.__table__
_O = CandidateOutput.__table__
_S = Score.__table__
_Q = ScoreQueue.__table__
_P = ScorePlan.__table__
Keys = Sequence[tuple[str, str]]
"""(scorer, version) pairs an output should have scores for."""
Span = tuple[datetime, datetime] | None
"""The earliest and latest time of the exchanges a batch of ids belongs to (``None``: not
known)."""


@dataclass(slots=True)
class Pair:
    """A candidate output and the exchange it answers, as the scorers need them."""

    output_id: str
    exchange_id: str
    task_type: str
    model: str
    output: str | None
    error_kind: str | None
    primary_model: str
    primary_output: str | None
    route: str
    exchange_created_at: datetime
    request: dict[str, Any] | None
    """Only loaded when the judge needs it."""


@dataclass(slots=True)
class ScoreRow:
    output_id: str
    scorer: str
    version: str
    value: float | None
    passed: bool | None
    details: dict[str, Any]
    cost_usd: float
    created_at: datetime
    exchange_created_at: datetime | None = None
    """The output's exchange's ``created_at`` (half of the output's key); looked up when
    ``None``."""


def _scope(task: str, since: datetime | None) -> list[ColumnElement[bool]]:
    where = [_X.c.task_type == task]
    if since is not None:
        where.append(_X.c.created_at >= since)
    return where


async def output_task_types(conn: AsyncConnection, since: datetime | None) -> list[str]:
    """Task types that have candidate outputs (created since ``since``): a pass over the
    store, for ``score --rescan``."""
    query = (
        select(_X.c.task_type)
        .where(exists().where(exchange_of()))
        .group_by(_X.c.task_type)
        .order_by(_X.c.task_type)
    )
    if since is not None:
        query = query.where(_X.c.created_at >= since)
    return list((await conn.scalars(query)).all())


async def queued_task_types(conn: AsyncConnection) -> list[str]:
    """Task types with queued outputs or a recorded plan (every task type ever scored)."""
    queued = select(_Q.c.task_type).distinct()
    planned = select(_P.c.task_type)
    return sorted(set((await conn.scalars(queued)).all()) | set((await conn.scalars(planned)).all()))


async def requeue(conn: AsyncConnection, task: str, since: datetime | None) -> int:
    """Queue every stored output of the task (created since ``since``) again; returns how
    many the queue holds for it in that scope."""
    await conn.execute(enqueue_stored(conn.dialect.name, *_scope(task, since)))
    return await count_queued(conn, task, since)


def _queued(task: str, since: datetime | None) -> Any:
    query = select(_Q.c.exchange_id, _Q.c.output_id).where(_Q.c.task_type == task)
    if since is not None:
        query = query.join(_X, exchange_of(_Q)).where(_X.c.created_at >= since)
    return query


async def count_queued(conn: AsyncConnection, task: str, since: datetime | None) -> int:
    """Outputs of the task (in scope) in the queue: those that may lack a score."""
    query = select(func.count()).select_from(_queued(task, since).subquery())
    return int(await conn.scalar(query) or 0)


async def window_ids(
    conn: AsyncConnection, task: str, since: datetime | None, *, after: tuple[str, str],
    limit: int,
) -> list[tuple[str, str, datetime]]:
    """The task's next ``limit`` queued (exchange id, output id, exchange's time) past
    ``after`` (an (exchange id, output id)), in that order (a range scan of the queue's index:
    the outputs of an exchange come together)."""
    query = (
        _queued(task, since).add_columns(_Q.c.exchange_created_at)
        .where(tuple_(_Q.c.exchange_id, _Q.c.output_id) > after)
        .order_by(_Q.c.exchange_id, _Q.c.output_id)
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in (await conn.execute(query)).all()]


def span_of(times: Iterable[datetime]) -> Span:
    """The earliest and latest of ``times`` (``None`` when there are none)."""
    seen = list(times)
    return (min(seen), max(seen)) if seen else None


def _in_span(column: Any, span: Span) -> list[ColumnElement[bool]]:
    # Redundant with the ids it comes with, but on Postgres it leaves the planner the
    # partitions of those months only, instead of every month's.
    return [] if span is None else [column.between(*span)]


async def dequeue(conn: AsyncConnection, ids: Sequence[str]) -> None:
    """Take ``ids`` (outputs that hold every score of their task's plan) off the queue; rows
    another transaction holds are left to it (it takes them off, or they stay queued)."""
    if not ids:
        return
    held = select(_Q.c.output_id).where(_Q.c.output_id.in_(sorted(ids)))
    if conn.dialect.name == "postgresql":
        held = held.with_for_update(skip_locked=True)
    await conn.execute(delete(_Q).where(_Q.c.output_id.in_(held.scalar_subquery())))


async def vacuum_queue(conn: AsyncConnection) -> None:
    """Postgres: reclaim the rows runs took off the queue, so the next run's look at the
    queue reads an index of live rows instead of every row ever dequeued (until autovacuum
    gets there, or for ever where it is off). ``conn`` must be in autocommit; a table another
    VACUUM holds is skipped (``SKIP_LOCKED``), not waited for."""
    await conn.execute(text(f"VACUUM (SKIP_LOCKED) {_Q.name}"))


async def has_outputs(conn: AsyncConnection, task: str | None, since: datetime | None) -> bool:
    """Whether the store holds a candidate output (of ``task``, since ``since``)."""
    if task is None and since is None:
        query = select(_O.c.id).limit(1)
    else:
        # The exchanges in scope that have an output (an EXISTS: as a join of the two, the
        # planner hashed every exchange of the task on a partitioned store, 0.8 s at 1M).
        query = select(_X.c.id).where(exists().where(exchange_of())).limit(1)
        if task is not None:
            query = query.where(_X.c.task_type == task)
        if since is not None:
            query = query.where(_X.c.created_at >= since)
    return (await conn.scalar(query)) is not None


async def lock_ids(conn: AsyncConnection, ids: Sequence[str], *, span: Span = None) -> list[str]:
    """Lock ``ids`` for this transaction (Postgres), skipping rows another worker holds
    (``span``: the earliest and latest time of their exchanges, when known)."""
    if not ids:
        return []
    query = (
        select(_O.c.id)
        .where(_O.c.id.in_(list(ids)), *_in_span(_O.c.exchange_created_at, span))
        .order_by(_O.c.id)
        .with_for_update(skip_locked=True)
    )
    return list((await conn.scalars(query)).all())


async def load_pairs(
    conn: AsyncConnection, ids: Sequence[str], *, with_request: bool, span: Span = None,
) -> list[Pair]:
    columns = [
        _O.c.id,
        _O.c.exchange_id,
        _X.c.task_type,
        _O.c.model,
        _O.c.output,
        _O.c.error_kind,
        _X.c.primary_model,
        _X.c.primary_output,
        _X.c.route,
        _O.c.exchange_created_at,
    ]
    if with_request:
        columns.append(_X.c.request)
    query = select(*columns).join(_X, exchange_of()).where(
        _O.c.id.in_(ids), *_in_span(_O.c.exchange_created_at, span),
        *_in_span(_X.c.created_at, span))
    rows = (await conn.execute(query)).all()
    return [Pair(*row) if with_request else Pair(*row, None) for row in rows]


async def existing_scores(
    conn: AsyncConnection, ids: Sequence[str], keys: Keys, *, span: Span = None,
) -> set[tuple[str, str]]:
    """(output id, scorer) of the scores already stored for ``ids`` at the versions in ``keys``."""
    if not ids or not keys:
        return set()
    query = select(_S.c.output_id, _S.c.scorer).where(
        _S.c.output_id.in_(ids), tuple_(_S.c.scorer, _S.c.version).in_(list(keys)),
        *_in_span(_S.c.exchange_created_at, span),
    )
    return {(row[0], row[1]) for row in (await conn.execute(query)).all()}


def insert_for(dialect: str, table: Any) -> Any:
    """``INSERT`` into ``table`` in the dialect named (for its ``ON CONFLICT``)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def enqueue_stored(dialect: str, *where: Any) -> Any:
    """``INSERT`` into the queue the stored outputs ``where`` picks (outputs joined to their
    exchanges), with their exchange's task type; outputs queued already are skipped. The
    writes queue a batch's outputs with it, ``requeue`` a task's."""
    return insert_for(dialect, _Q).from_select(
        ["output_id", "task_type", "exchange_id", "exchange_created_at"],
        select(_O.c.id, _X.c.task_type, _O.c.exchange_id, _O.c.exchange_created_at)
        .join(_X, exchange_of())
        .where(*where),
    ).on_conflict_do_nothing()


async def insert_scores(
    conn: AsyncConnection, rows: Sequence[ScoreRow], *, slice_rows: int = 500
) -> None:
    """Insert ``rows``; a score already stored (same output, scorer, version) is kept as is.
    The days of their exchanges are marked for the report (:mod:`.stale`)."""
    if not rows:
        return
    times = {r.output_id: r.exchange_created_at for r in rows}
    unknown = sorted(k for k, at in times.items() if at is None)
    for start in range(0, len(unknown), slice_rows):
        found = select(_O.c.id, _O.c.exchange_created_at).where(
            _O.c.id.in_(unknown[start : start + slice_rows]))
        times.update({row[0]: row[1] for row in (await conn.execute(found)).all()})
    await mark_days(conn, {utc_day(at) for at in times.values() if at is not None})
    statement = insert_for(conn.dialect.name, _S).on_conflict_do_nothing()
    payload = [
        {
            "output_id": r.output_id,
            "scorer": r.scorer,
            "version": r.version,
            "value": r.value,
            "passed": r.passed,
            "details": r.details,
            "cost_usd": r.cost_usd,
            "created_at": r.created_at,
            "exchange_created_at": times[r.output_id],
        }
        for r in rows
    ]
    for start in range(0, len(payload), slice_rows):
        await conn.execute(statement, payload[start : start + slice_rows])


async def score_summary(
    conn: AsyncConnection, keys_by_task: dict[str, Keys], since: Since = None,
    route: str | None = None,
) -> list[dict[str, Any]]:
    """Per task type, model and scorer (current versions only; pairs on ``route``, or every
    pair when ``None``): how many outputs were scored,
    passed, failed and not applicable, the mean value, and the scoring cost::

        {"task": "classify_intent", "model": "small", "scorer": "judge", "n": 120,
         "passed": 110, "failed": 6, "ignored": 4, "mean": 0.61, "cost_usd": 0.04,
         "better": 9, "same": 101, "worse": 6}

    ``better`` / ``same`` / ``worse`` count judge values 1, 0.5 and 0; ``valued`` the scores
    with a value (the mean's own count).
    """
    out = []
    # One query per task type, as the report's other aggregates: over a day, Postgres then
    # walks the day's exchanges, outputs and scores by their indexes; with every task's keys
    # in one OR it misjudged the rows and scanned every score of the store.
    for task in sorted(keys_by_task):
        keys = list(set(keys_by_task[task]))
        if not keys:
            continue
        query = (
            select(
                _O.c.model,
                _S.c.scorer,
                func.count(),
                func.sum(case((_S.c.passed.is_(True), 1), else_=0)),
                func.sum(case((_S.c.passed.is_(False), 1), else_=0)),
                func.avg(_S.c.value),
                func.coalesce(func.sum(_S.c.cost_usd), 0.0),
                func.sum(case((_S.c.value == 1.0, 1), else_=0)),
                func.sum(case((_S.c.value == 0.5, 1), else_=0)),
                func.sum(case((and_(_S.c.value == 0.0, _S.c.passed.is_not(None)), 1),
                              else_=0)),
                func.count(_S.c.value),
            )
            .select_from(_S.join(_O, output_of()).join(_X, exchange_of()))
            .where(_X.c.task_type == task, tuple_(_S.c.scorer, _S.c.version).in_(keys),
                   *within(_X.c.created_at, since), *within(_O.c.exchange_created_at, since),
                   *within(_S.c.exchange_created_at, since))
            .group_by(_O.c.model, _S.c.scorer)
            .order_by(_O.c.model, _S.c.scorer)
        )
        if route is not None:
            query = query.where(_X.c.route == route)
        for model, scorer, n, passed, failed, mean, cost, better, same, worse, valued in (
            await conn.execute(query)
        ).all():
            passed, failed = int(passed or 0), int(failed or 0)
            out.append(
                {
                    "task": task,
                    "model": model,
                    "scorer": scorer,
                    "n": int(n),
                    "passed": passed,
                    "failed": failed,
                    "ignored": int(n) - passed - failed,
                    "mean": None if mean is None else float(mean),
                    "valued": int(valued or 0),
                    "cost_usd": float(cost),
                    "better": int(better or 0),
                    "same": int(same or 0),
                    "worse": int(worse or 0),
                }
            )
    return out


async def queued_primaries(conn: AsyncConnection, tasks: Sequence[str]) -> dict[str, set[str]]:
    """Task type -> the primary models of its exchanges with queued outputs."""
    query = (
        select(_Q.c.task_type, _X.c.primary_model)
        .join(_X, _X.c.id == _Q.c.exchange_id)
        .where(_Q.c.task_type.in_(list(tasks)))
        .group_by(_Q.c.task_type, _X.c.primary_model)
    )
    found: dict[str, set[str]] = {}
    for task, model in (await conn.execute(query)).all():
        found.setdefault(task, set()).add(model)
    return found


async def exchange_metadata(conn: AsyncConnection, ids: Sequence[str], *,
                            span: Span = None) -> dict[str, dict[str, Any]]:
    """Exchange id -> its ``metadata`` (``{}`` when not a mapping), for the scorers that use the
    exchange's context."""
    if not ids:
        return {}
    rows = await conn.execute(select(Exchange.id, Exchange.meta).where(
        Exchange.id.in_(ids), *_in_span(_X.c.created_at, span)))
    return {exchange_id: meta if isinstance(meta, dict) else {} for exchange_id, meta in rows}
