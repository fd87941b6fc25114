"""Reads behind scorer validity: the outputs labels name, the scores of labelled outputs, and
which scorer made the failing outputs fail (for the report).

    async with store.connect() as conn:
        found = await outputs_by_id(conn, ["5f0c..."])           # id -> where it belongs
        found = await outputs_by_exchange(conn, [("9a1e...", "mini")])
        rows = await outcome_outputs(conn, "classify")            # outputs with recorded outcomes
        scores = await labelled_scores(conn, ids, plan.keys())    # current scores of those
        failures = await scorer_failures(conn, keys_by_task, since)

Ids are looked up in slices, so a labels file of any length stays within every backend's limit
on bound parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, case, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from ...records import NOISE_FLOOR_MODEL, ROUTE_SHADOW
from ..models import CandidateOutput, Exchange, Score, exchange_of, output_of
from .scores import Keys
from .span import Since, within

__all__ = [
    "StoredOutput",
    "labelled_scores",
    "outcome_outputs",
    "outputs_by_exchange",
    "outputs_by_id",
    "scorer_failures",
    "task_types",
]

_X = Exchange.__table__
_O = CandidateOutput.__table__
_S = Score.__table__
_SLICE = 500
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredOutput:
    """A stored candidate output, as a label needs it."""

    id: str
    exchange_id: str
    task_type: str
    model: str
    primary_model: str
    error_kind: str | None
    metadata: dict[str, Any] | None = None
    """The exchange's ``metadata`` (only read by :func:`outcome_outputs`)."""


def _slices(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _SLICE):
        yield items[start:start + _SLICE]


_COLUMNS = (_O.c.id, _O.c.exchange_id, _X.c.task_type, _O.c.model, _X.c.primary_model,
            _O.c.error_kind)
_JOINED = _O.join(_X, exchange_of())
_META = _X.c["metadata"]


async def task_types(conn: AsyncConnection) -> list[str]:
    """Every task type with a stored exchange, sorted."""
    query = select(_X.c.task_type).group_by(_X.c.task_type).order_by(_X.c.task_type)
    return list((await conn.scalars(query)).all())


async def outputs_by_id(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, StoredOutput]:
    """Output id -> the stored output, for those of ``ids`` that exist."""
    out: dict[str, StoredOutput] = {}
    for part in _slices(sorted(set(ids))):
        query = select(*_COLUMNS).select_from(_JOINED).where(_O.c.id.in_(list(part)))
        out.update({row[0]: StoredOutput(*row) for row in (await conn.execute(query)).all()})
    return out


async def outputs_by_exchange(
    conn: AsyncConnection, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], StoredOutput]:
    """(exchange id, model) -> the stored output, for those of ``pairs`` that exist."""
    out: dict[tuple[str, str], StoredOutput] = {}
    for part in _slices(sorted(set(pairs))):
        query = (select(*_COLUMNS).select_from(_JOINED)
                 .where(tuple_(_O.c.exchange_id, _O.c.model).in_(list(part))))
        for row in (await conn.execute(query)).all():
            found = StoredOutput(*row)
            out[(found.exchange_id, found.model)] = found
    return out


async def outcome_outputs(conn: AsyncConnection, task: str) -> tuple[int, list[StoredOutput]]:
    """(how many candidate outputs ``task`` has, those of them whose exchange's metadata holds
    ``outcomes``), shadow pairs only, the primary's replays left out; each with its exchange's
    metadata."""
    where = [_X.c.task_type == task, _X.c.route == ROUTE_SHADOW, _O.c.model != NOISE_FLOOR_MODEL]
    total = int(await conn.scalar(
        select(func.count()).select_from(_JOINED).where(*where)) or 0)
    query = (select(*_COLUMNS, _META).select_from(_JOINED)
             .where(*where, _META["outcomes"].as_string().is_not(None)).order_by(_O.c.id))
    found = []
    for row in (await conn.execute(query)).all():
        meta = row[-1]
        if isinstance(meta, dict) and "outcomes" in meta:
            found.append(StoredOutput(*row))
    return total, found


async def labelled_scores(
    conn: AsyncConnection, ids: Sequence[str], keys: Keys
) -> list[tuple[str, str, float | None, bool | None]]:
    """(output id, scorer, value, passed) of the scores ``ids`` hold at the versions in
    ``keys`` (the task's current scorers)."""
    if not keys:
        return []
    out: list[tuple[str, str, float | None, bool | None]] = []
    for part in _slices(sorted(set(ids))):
        query = select(_S.c.output_id, _S.c.scorer, _S.c.value, _S.c.passed).where(
            _S.c.output_id.in_(list(part)), tuple_(_S.c.scorer, _S.c.version).in_(list(keys)))
        out += [(o, s, v, p) for o, s, v, p in (await conn.execute(query)).all()]
    return out


async def scorer_failures(
    conn: AsyncConnection, keys_by_task: Mapping[str, Keys], since: Since,
) -> dict[tuple[str, str], dict[str, dict[str, int]]]:
    """(task, model) -> scorer -> ``failed`` and ``sole``: of the outputs that count and fail
    (shadow pairs since ``since``, every current score present, the primary's replays left
    out), how many this scorer failed, and how many it alone failed.

    A failure is the scorer's own: a failed call (``details.candidate_error``: every scorer
    fails it) and a judge score failed because a hard scorer failed first
    (``details.overridden_by``) are left out, so the scorer that decided is named."""
    out: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
    own = and_(_S.c.passed.is_(False),
               _S.c.details["candidate_error"].as_string().is_(None),
               _S.c.details["overridden_by"].as_string().is_(None))
    ok = func.min(case((_S.c.passed.is_(True), 1), (_S.c.passed.is_(False), 0)))
    for task, keys in keys_by_task.items():
        names = sorted({name for name, _ in keys})
        if not names:
            continue
        where = [_X.c.task_type == task, _X.c.route == ROUTE_SHADOW,
                 _O.c.model != NOISE_FLOOR_MODEL, tuple_(_S.c.scorer, _S.c.version).in_(list(keys))]
        where += [*within(_X.c.created_at, since), *within(_O.c.exchange_created_at, since),
                  *within(_S.c.exchange_created_at, since)]
        # One pass over the task's scores: per output, whether it counts and fails, and for
        # each scorer whether it failed the output itself (1/0).
        per = (
            select(_O.c.model.label("model"), func.count().label("present"), ok.label("ok"),
                   *[func.max(case((and_(own, _S.c.scorer == name), 1), else_=0)).label(f"f{i}")
                     for i, name in enumerate(names)])
            .select_from(_S.join(_JOINED, output_of()))
            .where(*where)
            .group_by(_O.c.model, _S.c.output_id)
            .subquery()
        )
        flags = [per.c[f"f{i}"] for i in range(len(names))]
        failing = and_(per.c.present == len(set(keys)), per.c.ok == 0)
        alone = sum(flags[1:], flags[0]) == 1
        query = select(
            per.c.model,
            *[func.sum(case((and_(failing, f == 1), 1), else_=0)) for f in flags],
            *[func.sum(case((and_(failing, f == 1, alone), 1), else_=0)) for f in flags],
        ).group_by(per.c.model)
        for model, *counts in (await conn.execute(query)).all():
            failed, sole = counts[:len(names)], counts[len(names):]
            found = {name: {"failed": int(f or 0), "sole": int(s or 0)}
                     for name, f, s in zip(names, failed, sole, strict=True) if f}
            if found:
                out[(task, model)] = found
    return out
