"""Queries of ``shadowroute replay`` (:mod:`shadowroute.offline.replay`): which (exchange,
candidate) pairs of a task type lack a stored output.

The scope is a task type's shadow exchanges (``route = shadow``), created at or after ``since``
when given. Each function opens its own connection from the :class:`~shadowroute.store.Store`;
an error becomes a :class:`~shadowroute.errors.StoreError` ("cannot read <url>: ...").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ...records import ROUTE_SHADOW, ExchangeRecord
from ..models import CandidateOutput, Exchange, exchange_of

if TYPE_CHECKING:
    from ..store import Store

__all__ = [
    "exchanges_and_stored_pairs",
    "exchanges_lacking_outputs",
    "primary_models_in_scope",
    "stored_exchange_count",
    "stored_task_types",
]

_X = Exchange.__table__
_O = CandidateOutput.__table__


def _scope(task: str, since: datetime | None) -> list[Any]:
    where = [_X.c.task_type == task, _X.c.route == ROUTE_SHADOW]
    if since is not None:
        where.append(_X.c.created_at >= since)
    return where


async def _read(store: Store, statement: Any) -> list[Any]:
    async with store.connect() as conn:
        return list((await conn.execute(statement)).all())


async def exchanges_and_stored_pairs(
    store: Store, task: str, candidates: Sequence[str], since: datetime | None
) -> tuple[int, int]:
    """(exchanges in scope, pairs of them with a stored output of one of ``candidates``)."""
    scope = _scope(task, since)
    [(exchanges,)] = await _read(store, select(func.count()).select_from(_X).where(*scope))
    [(done,)] = await _read(
        store,
        select(func.count()).select_from(_O.join(_X, exchange_of()))
        .where(*scope, _O.c.model.in_(candidates)))
    return exchanges, done


async def stored_exchange_count(store: Store, task: str) -> int:
    """Exchanges of ``task`` stored at all (any route, any time)."""
    [(n,)] = await _read(store, select(func.count()).select_from(_X).where(_X.c.task_type == task))
    return n


async def stored_task_types(store: Store, limit: int = 20) -> list[str]:
    """The task types of the stored exchanges, sorted, at most ``limit``."""
    rows = await _read(store, select(_X.c.task_type).distinct().order_by(_X.c.task_type)
                       .limit(limit))
    return [row[0] for row in rows]


async def primary_models_in_scope(
    store: Store, task: str, since: datetime | None
) -> list[str]:
    """The primary model names of the exchanges in scope (each once)."""
    rows = await _read(store, select(_X.c.primary_model).where(*_scope(task, since)).distinct())
    return [row[0] for row in rows]


async def exchanges_lacking_outputs(
    store: Store, task: str, candidates: Sequence[str], since: datetime | None, *,
    after: str, limit: int,
) -> list[tuple[ExchangeRecord, list[str]]]:
    """The next ``limit`` exchanges in scope (by id, after ``after``) lacking an output from at
    least one of ``candidates``, each with the candidates it lacks (in the given order)."""
    have = (select(func.count()).select_from(_O)
            .where(exchange_of(), _O.c.model.in_(candidates))
            .scalar_subquery())
    rows = await _read(
        store,
        select(_X).where(*_scope(task, since), _X.c.id > after, have < len(candidates))
        .order_by(_X.c.id).limit(limit))
    if not rows:
        return []
    ids = [row.id for row in rows]
    done: dict[str, set[str]] = {}
    for exchange_id, model in await _read(
        store,
        select(_O.c.exchange_id, _O.c.model)
        .where(_O.c.exchange_id.in_(ids), _O.c.model.in_(candidates))
    ):
        done.setdefault(exchange_id, set()).add(model)
    page = []
    for row in rows:
        m = row._mapping
        exchange = ExchangeRecord(
            task_type=m["task_type"], primary_model=m["primary_model"], request=m["request"],
            primary_output=m["primary_output"], input_tokens=m["input_tokens"],
            output_tokens=m["output_tokens"], latency_ms=m["latency_ms"],
            cost_usd=m["cost_usd"], metadata=m["metadata"] or {}, id=m["id"],
            created_at=m["created_at"], route=m["route"],
        )
        lacking = [c for c in candidates if c not in done.get(exchange.id, ())]
        page.append((exchange, lacking))
    return page
