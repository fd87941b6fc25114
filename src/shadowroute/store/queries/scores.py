"""Queries of the scoring job: which outputs still lack a score, the pairs to score, and the
batched, idempotent insert of the scores.

Work is found in windows of a task type's exchanges (keyset pagination on the (task_type, id)
index), their outputs, then one lookup of those outputs' existing scores, so each window costs
the same however much is already scored and the planner never has to guess through correlated
subqueries. On Postgres the outputs of a
window that still lack a score are locked with ``FOR UPDATE SKIP LOCKED``: several ``shadowroute
score`` processes never take the same output, and because the existing scores are read again
after the lock is taken, an output scored by another process in the meantime is not scored
twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..models import CandidateOutput, Exchange, Score

__all__ = [
    "Pair",
    "ScoreRow",
    "count_pending",
    "exchange_metadata",
    "existing_scores",
    "insert_scores",
    "load_pairs",
    "lock_ids",
    "primary_models",
    "score_summary",
    "scored_task_types",
    "window_ids",
]

_X = Exchange.__table__
_O = CandidateOutput.__table__
_S = Score.__table__
Keys = Sequence[tuple[str, str]]
"""(scorer, version) pairs an output should have scores for."""


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


def _scope(task: str, since: datetime | None) -> list[ColumnElement[bool]]:
    where = [_X.c.task_type == task]
    if since is not None:
        where.append(_X.c.created_at >= since)
    return where


async def scored_task_types(conn: AsyncConnection, since: datetime | None) -> list[str]:
    """Task types that have candidate outputs (created since ``since``)."""
    query = (
        select(_X.c.task_type)
        .where(exists().where(_O.c.exchange_id == _X.c.id))
        .group_by(_X.c.task_type)
        .order_by(_X.c.task_type)
    )
    if since is not None:
        query = query.where(_X.c.created_at >= since)
    return list((await conn.scalars(query)).all())


async def count_pending(
    conn: AsyncConnection, task: str, keys: Keys, since: datetime | None
) -> int:
    """Outputs of the task (in scope) that lack at least one of ``keys``.

    Counted as all outputs minus those holding every key, with plain joins and a GROUP BY: a
    correlated NOT EXISTS per output would be planned from the statistics of a ``scores``
    table that the run itself has just filled, and Postgres then picks sequential scans.
    """
    outputs = select(func.count()).select_from(_O.join(_X, _X.c.id == _O.c.exchange_id)).where(
        *_scope(task, since)
    )
    total = int((await conn.scalar(outputs)) or 0)
    if not keys:
        return 0
    complete = (
        select(_S.c.output_id)
        .select_from(_S.join(_O, _O.c.id == _S.c.output_id).join(_X, _X.c.id == _O.c.exchange_id))
        .where(*_scope(task, since), tuple_(_S.c.scorer, _S.c.version).in_(list(keys)))
        .group_by(_S.c.output_id)
        .having(func.count() == len(set(keys)))
    )
    done = int((await conn.scalar(select(func.count()).select_from(complete.subquery()))) or 0)
    return total - done


async def window_ids(
    conn: AsyncConnection, task: str, since: datetime | None, *, after: str, limit: int
) -> tuple[list[str], list[str]]:
    """The task's next ``limit`` exchanges past exchange id ``after`` (a range scan of the
    (task_type, id) index: a window costs the same however much is already scored), and the
    ids of their candidate outputs, grouped by exchange."""
    exchanges = list(
        (
            await conn.scalars(
                select(_X.c.id)
                .where(*_scope(task, since), _X.c.id > after)
                .order_by(_X.c.id)
                .limit(limit)
            )
        ).all()
    )
    if not exchanges:
        return [], []
    outputs = await conn.execute(
        select(_O.c.id).where(_O.c.exchange_id.in_(exchanges)).order_by(_O.c.exchange_id, _O.c.id)
    )
    return exchanges, list(outputs.scalars().all())


async def lock_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[str]:
    """Lock ``ids`` for this transaction (Postgres), skipping rows another worker holds."""
    if not ids:
        return []
    query = (
        select(_O.c.id)
        .where(_O.c.id.in_(list(ids)))
        .order_by(_O.c.id)
        .with_for_update(skip_locked=True)
    )
    return list((await conn.scalars(query)).all())


async def load_pairs(
    conn: AsyncConnection, ids: Sequence[str], *, with_request: bool
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
    ]
    if with_request:
        columns.append(_X.c.request)
    query = select(*columns).join(_X, _X.c.id == _O.c.exchange_id).where(_O.c.id.in_(ids))
    rows = (await conn.execute(query)).all()
    return [Pair(*row) if with_request else Pair(*row, None) for row in rows]


async def existing_scores(
    conn: AsyncConnection, ids: Sequence[str], keys: Keys
) -> set[tuple[str, str]]:
    """(output id, scorer) of the scores already stored for ``ids`` at the versions in ``keys``."""
    if not ids or not keys:
        return set()
    query = select(_S.c.output_id, _S.c.scorer).where(
        _S.c.output_id.in_(ids), tuple_(_S.c.scorer, _S.c.version).in_(list(keys))
    )
    return {(row[0], row[1]) for row in (await conn.execute(query)).all()}


def _insert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_S).on_conflict_do_nothing()


async def insert_scores(
    conn: AsyncConnection, rows: Sequence[ScoreRow], *, slice_rows: int = 500
) -> None:
    """Insert ``rows``; a score already stored (same output, scorer, version) is kept as is."""
    if not rows:
        return
    statement = _insert(conn.dialect.name)
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
        }
        for r in rows
    ]
    for start in range(0, len(payload), slice_rows):
        await conn.execute(statement, payload[start : start + slice_rows])


async def score_summary(
    conn: AsyncConnection, keys_by_task: dict[str, Keys], since: datetime | None = None,
    route: str | None = None,
) -> list[dict[str, Any]]:
    """Per task type, model and scorer (current versions only; pairs on ``route``, or every
    pair when ``None``): how many outputs were scored,
    passed, failed and not applicable, the mean value, and the scoring cost::

        {"task": "classify_intent", "model": "small", "scorer": "judge", "n": 120,
         "passed": 110, "failed": 6, "ignored": 4, "mean": 0.61, "cost_usd": 0.04,
         "better": 9, "same": 101, "worse": 6}

    ``better`` / ``same`` / ``worse`` count judge values 1, 0.5 and 0.
    """
    wanted = [
        and_(_X.c.task_type == task, _S.c.scorer == name, _S.c.version == version)
        for task, keys in keys_by_task.items()
        for name, version in keys
    ]
    if not wanted:
        return []
    query = (
        select(
            _X.c.task_type,
            _O.c.model,
            _S.c.scorer,
            func.count(),
            func.sum(case((_S.c.passed.is_(True), 1), else_=0)),
            func.sum(case((_S.c.passed.is_(False), 1), else_=0)),
            func.avg(_S.c.value),
            func.coalesce(func.sum(_S.c.cost_usd), 0.0),
            func.sum(case((_S.c.value == 1.0, 1), else_=0)),
            func.sum(case((_S.c.value == 0.5, 1), else_=0)),
            func.sum(case((and_(_S.c.value == 0.0, _S.c.passed.is_not(None)), 1), else_=0)),
        )
        .select_from(_S.join(_O, _O.c.id == _S.c.output_id).join(_X, _X.c.id == _O.c.exchange_id))
        .where(or_(*wanted))
        .group_by(_X.c.task_type, _O.c.model, _S.c.scorer)
        .order_by(_X.c.task_type, _O.c.model, _S.c.scorer)
    )
    if since is not None:
        query = query.where(_X.c.created_at >= since)
    if route is not None:
        query = query.where(_X.c.route == route)
    out = []
    for task, model, scorer, n, passed, failed, mean, cost, better, same, worse in (
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
                "cost_usd": float(cost),
                "better": int(better or 0),
                "same": int(same or 0),
                "worse": int(worse or 0),
            }
        )
    return out


async def primary_models(
    conn: AsyncConnection, tasks: Sequence[str], since: datetime | None
) -> dict[str, set[str]]:
    """Task type -> the primary models of its exchanges (that have candidate outputs)."""
    query = (
        select(_X.c.task_type, _X.c.primary_model)
        .where(_X.c.task_type.in_(list(tasks)), exists().where(_O.c.exchange_id == _X.c.id))
        .group_by(_X.c.task_type, _X.c.primary_model)
    )
    if since is not None:
        query = query.where(_X.c.created_at >= since)
    found: dict[str, set[str]] = {}
    for task, model in (await conn.execute(query)).all():
        found.setdefault(task, set()).add(model)
    return found


async def exchange_metadata(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Exchange id -> its ``metadata`` (``{}`` when not a mapping), for the scorers that use the
    exchange's context."""
    if not ids:
        return {}
    rows = await conn.execute(select(Exchange.id, Exchange.meta).where(Exchange.id.in_(ids)))
    return {exchange_id: meta if isinstance(meta, dict) else {} for exchange_id, meta in rows}
