"""The report's aggregates, computed in SQL: one pass per question over the stored pairs.

Every function takes the task types' current scorer keys (scorer, version) and the exchanges
to read (a window start, or a :class:`~.span.Span` of time ranges: the days the daily rollups
do not cover, :mod:`.days`), and returns plain dicts keyed by task type (and model). They read
shadow pairs only (the primary served production); :func:`outcomes` reads the reverse-shadow
pairs of promoted task types when asked (``route=ROUTE_REVERSE``), for the drift check. Only
scores at the current versions count: an output *counts* when it holds a score from every
current scorer of its task, and it *passes* when each of those that applied (``passed`` not
null) passed. Latencies come back as histograms (:class:`~..figures.Histogram`) that add up
across days. They run on the one connection :func:`reading` gives the report.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from ...records import NOISE_FLOOR_MODEL, ROUTE_SHADOW
from ..figures import Histogram, LatencyKey, Worst
from ..models import CandidateOutput, Exchange, Score, TrafficDaily, exchange_of, output_of
from .scores import Keys
from .span import Since, within

if TYPE_CHECKING:
    from ..store import Store

__all__ = [
    "PAGE_COST",
    "REPORT_PRAGMAS",
    "example_rows",
    "latency_histograms",
    "outcomes",
    "output_totals",
    "primary_schema_checks",
    "primary_totals",
    "reading",
    "score_histograms",
    "not_carried_counts",
    "scoring_spend",
    "traffic_totals",
]

REPORT_PRAGMAS = {"cache_size": -256 * 1024, "mmap_size": 4 << 30}
"""SQLite settings of the report's connection: its scans visit a 1M-pair file in index order."""
PAGE_COST = 1.1
"""Postgres: the report's ``random_page_cost`` when the server's is higher (its default, 4, is
the cost of a seek on a spinning disk). At 4 the planner reads a day's pairs by scanning every
score (a hash or merge join) rather than walking the day's exchanges, outputs and scores by
their indexes: 12-15 s a day instead of 2.2-3.3 s on a 1M-exchange store
(``bench/scale.py``), and the scan grows with the store."""

_X = Exchange.__table__
_O = CandidateOutput.__table__
_S = Score.__table__
_T = TrafficDaily.__table__
_PAIRS = _S.join(_O, output_of()).join(_X, exchange_of())
_OUTPUTS = _O.join(_X, exchange_of())


@contextlib.asynccontextmanager
async def reading(store: Store) -> AsyncIterator[AsyncConnection]:
    """The report's read-only connection, given the memory its few big scans want. SQLite: a
    256 MiB page cache and the file memory-mapped (up to 4 GiB), both put back before the
    connection returns to the pool. Postgres: sorts in memory and index reads priced as on an
    SSD (:data:`PAGE_COST`), with ``SET LOCAL``: this transaction only. An error becomes
    "cannot read the report's data in <url>: ..."."""
    async with store.connect("read the report's data in") as conn:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
            page_cost = await conn.scalar(text("SELECT current_setting('random_page_cost')"))
            if float(page_cost) > PAGE_COST:
                await conn.exec_driver_sql(f"SET LOCAL random_page_cost = {PAGE_COST}")
        if conn.dialect.name != "sqlite":
            yield conn
            return
        before = {name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                  for name in REPORT_PRAGMAS}
        for name, value in REPORT_PRAGMAS.items():
            await conn.exec_driver_sql(f"PRAGMA {name}={value}")
        try:
            yield conn
        finally:
            for name, value in before.items():
                await conn.exec_driver_sql(f"PRAGMA {name}={int(value or 0)}")


_OUTPUT_TIMES = (_O.c.exchange_created_at,)
_PAIR_TIMES = (_O.c.exchange_created_at, _S.c.exchange_created_at)


def _window(since: Since, route: str | None = ROUTE_SHADOW,
            times: Sequence[Any] = ()) -> list[ColumnElement[bool]]:
    """Exchanges in ``since`` (:mod:`.span`) on ``route`` (``None``: every route). ``times``:
    the joined tables' copies of the exchange's time (:data:`_OUTPUT_TIMES`,
    :data:`_PAIR_TIMES`), bounded the same way: on Postgres the planner then reads the
    window's months of every table, not only of ``exchanges``."""
    where = [*within(_X.c.created_at, since), *(c for t in times for c in within(t, since))]
    return where if route is None else [*where, _X.c.route == route]


def _per_output(task: str, keys: Keys, since: Since, route: str) -> Any:
    """One row per output of ``task`` holding current scores: model, how many of the keys it
    holds, 1/0/NULL for passed/failed/nothing applied, and its lowest score value.

    A ``primary@replay`` call that failed is left out: it says nothing about how often the
    primary disagrees with itself (a candidate's failed call does count, as a failure)."""
    ok = func.min(case((_S.c.passed.is_(True), 1), (_S.c.passed.is_(False), 0)))
    return (
        select(
            _O.c.model.label("model"),
            _S.c.output_id.label("output_id"),
            func.count().label("present"),
            ok.label("ok"),
            func.min(_S.c.value).label("worst"),
        )
        .select_from(_PAIRS)
        .where(_X.c.task_type == task, tuple_(_S.c.scorer, _S.c.version).in_(list(keys)),
               or_(_O.c.model != NOISE_FLOOR_MODEL, _O.c.error_kind.is_(None)),
               *_window(since, route, _PAIR_TIMES))
        .group_by(_O.c.model, _S.c.output_id)
        .subquery()
    )


async def outcomes(
    conn: AsyncConnection, keys_by_task: Mapping[str, Keys], since: Since,
    worst_per_model: int = 3, route: str = ROUTE_SHADOW,
) -> tuple[dict[tuple[str, str], dict[str, int]], list[Worst]]:
    """One pass per task type over its current scores (of pairs on ``route``).

    Returns (task, model) -> ``complete`` (outputs holding every current score), ``counted``
    (complete and some scorer applied) and ``passed``; and the worst outputs: up to
    ``worst_per_model`` per candidate (replays left out), the counted outputs that failed
    first, then the lowest score values (:class:`Worst`).
    """
    counts: dict[tuple[str, str], dict[str, int]] = {}
    worst: list[Worst] = []
    for task, keys in keys_by_task.items():
        if not keys:
            continue
        per = _per_output(task, keys, since, route)
        complete = per.c.present == len(set(keys))
        counted = and_(complete, per.c.ok.is_not(None))
        example = case((and_(counted, per.c.model != NOISE_FLOOR_MODEL), 0), else_=1)
        by_model = {"partition_by": per.c.model}
        ranked = select(
            per.c.model, per.c.output_id, example.label("not_example"), per.c.ok, per.c.worst,
            func.row_number().over(
                **by_model,
                order_by=(example, per.c.ok, per.c.worst.asc().nulls_last(), per.c.output_id),
            ).label("rn"),
            func.sum(case((complete, 1), else_=0)).over(**by_model).label("complete"),
            func.sum(case((counted, 1), else_=0)).over(**by_model).label("counted"),
            func.sum(case((and_(counted, per.c.ok == 1), 1), else_=0)).over(**by_model)
            .label("passed"),
        ).subquery()
        query = select(ranked).where(ranked.c.rn <= max(worst_per_model, 1)).order_by(
            ranked.c.model, ranked.c.rn)
        for model, output_id, not_example, ok, value, rn, done, n, passed in (
                await conn.execute(query)).all():
            if rn == 1:
                counts[(task, model)] = {"complete": int(done), "counted": int(n),
                                         "passed": int(passed)}
            if not not_example and rn <= worst_per_model:
                worst.append(Worst(task, model, output_id, int(ok),
                                   None if value is None else float(value)))
    return counts, worst


async def output_totals(
    conn: AsyncConnection, since: Since
) -> dict[tuple[str, str], dict[str, Any]]:
    """(task, model) -> stored outputs, errors, the summed cost (``cost_sum``) of the
    successful calls whose cost is known (``costed`` of them: an answer without usage has no
    cost and is left out of the mean :meth:`~..figures.Figures.finish` works out), total
    spend, and the first and last output time."""
    ok = _O.c.error_kind.is_(None)
    query = (
        select(
            _X.c.task_type, _O.c.model, func.count(),
            func.sum(case((ok, 0), else_=1)),
            func.sum(case((ok, _O.c.cost_usd))),
            func.count(case((ok, _O.c.cost_usd))),
            func.coalesce(func.sum(_O.c.cost_usd), 0.0),
            func.min(_O.c.created_at), func.max(_O.c.created_at),
        )
        .select_from(_OUTPUTS).where(*_window(since, times=_OUTPUT_TIMES))
        .group_by(_X.c.task_type, _O.c.model)
    )
    return {
        (task, model): {"outputs": int(n), "errors": int(errors or 0),
                        "cost_sum": float(total or 0.0),
                        "costed": int(costed or 0),
                        "spend": float(spend), "first": first, "last": last}
        for task, model, n, errors, total, costed, spend, first, last
        in (await conn.execute(query)).all()
    }


async def primary_totals(conn: AsyncConnection, since: Since) -> dict[str, dict[str, Any]]:
    """Task -> stored exchanges, their primary models, the summed primary cost of the
    ``costed`` exchanges whose cost is known (a stream without usage has none; the mean is
    :meth:`~..figures.Figures.finish`'s), first/last time."""
    query = (
        select(_X.c.task_type, _X.c.primary_model, func.count(), func.sum(_X.c.cost_usd),
               func.count(_X.c.cost_usd), func.min(_X.c.created_at), func.max(_X.c.created_at))
        .where(*_window(since)).group_by(_X.c.task_type, _X.c.primary_model)
    )
    out: dict[str, dict[str, Any]] = {}
    for task, model, n, total, costed, first, last in (await conn.execute(query)).all():
        row = out.setdefault(task, {"exchanges": 0, "models": {}, "cost_sum": 0.0, "costed": 0,
                                    "first": first, "last": last})
        row["exchanges"] += int(n)
        row["models"][model] = int(n)
        row["cost_sum"] += float(total or 0.0)
        row["costed"] += int(costed or 0)
        row["first"], row["last"] = min(row["first"], first), max(row["last"], last)
    return out


async def traffic_totals(conn: AsyncConnection, since: datetime | None) -> dict[str, dict[str, int]]:
    """Task -> production requests (sampled or not), sampled calls not shadowable (they depend
    on provider-side state), and the calendar days from its first to its last day with traffic
    (both included)."""
    query = select(_T.c.task_type, func.sum(_T.c.requests), func.sum(_T.c.sampled),
                   func.sum(_T.c.not_shadowable),
                   func.min(_T.c.day), func.max(_T.c.day)).group_by(_T.c.task_type)
    if since is not None:
        query = query.where(_T.c.day >= since.date())
    return {task: {"requests": int(r or 0), "sampled": int(s or 0),
                   "not_shadowable": int(n or 0),
                   "days": (last - first).days + 1 if first and last else 0}
            for task, r, s, n, first, last in (await conn.execute(query)).all()}


async def not_carried_counts(
    conn: AsyncConnection, since: Since
) -> dict[tuple[str, str | None], dict[str, int]]:
    """(task, model) -> setting -> how many requests lacked it: the settings a candidate's API
    could not be given (``model`` its name), and those the canonical form could not hold for
    the primary's request (``model`` ``None``). Empty when everything was carried."""
    outputs = (select(_X.c.task_type, _O.c.model, _O.c.not_carried, func.count())
               .select_from(_OUTPUTS)
               .where(*_window(since, times=_OUTPUT_TIMES), _O.c.not_carried.is_not(None))
               .group_by(_X.c.task_type, _O.c.model, _O.c.not_carried))
    exchanges = (select(_X.c.task_type, _X.c.not_carried, func.count())
                 .where(*_window(since), _X.c.not_carried.is_not(None))
                 .group_by(_X.c.task_type, _X.c.not_carried))
    out: dict[tuple[str, str | None], dict[str, int]] = {}
    rows = [(task, model, names, n) for task, model, names, n in await _all(conn, outputs)]
    rows += [(task, None, names, n) for task, names, n in await _all(conn, exchanges)]
    for task, model, names, n in rows:
        counts = out.setdefault((task, model), {})
        for name in names or ():
            counts[str(name)] = counts.get(str(name), 0) + int(n)
    return out


async def exchanges_by_source(conn: AsyncConnection,
                              since: Since) -> dict[str, dict[str, int]]:
    """task -> source -> shadow exchanges in the window (``unrecorded`` for exchanges stored
    before sources were recorded)."""
    query = (select(_X.c.task_type, _X.c.source, func.count()).where(*_window(since))
             .group_by(_X.c.task_type, _X.c.source))
    out: dict[str, dict[str, int]] = {}
    for task, source, n in await _all(conn, query):
        out.setdefault(task, {})[source or "unrecorded"] = int(n)
    return out


async def _all(conn: AsyncConnection, query: Any) -> list[Any]:
    return list((await conn.execute(query)).all())


async def scoring_spend(conn: AsyncConnection, since: Since) -> dict[str, dict[str, Any]]:
    """Task -> ``spend`` (what scoring its outputs cost: judge calls, every scorer version and
    both routes included), ``calls`` (the scores that cost something) and ``skipped`` (judge
    calls not made because a cheaper scorer decided the pair, ``[judge] when = "needed"``)."""
    # Only judge scores cost anything: filter on the scores first, then join the few left.
    query = (select(_X.c.task_type, func.sum(_S.c.cost_usd), func.count())
             .select_from(_PAIRS).where(_S.c.cost_usd > 0, *_window(since, None, _PAIR_TIMES))
             .group_by(_X.c.task_type))
    out: dict[str, dict[str, Any]] = {
        task: {"spend": float(spend), "calls": int(calls), "skipped": 0}
        for task, spend, calls in await _all(conn, query)}
    skipped = (select(_X.c.task_type, func.count()).select_from(_PAIRS)
               .where(_S.c.scorer == "judge", _S.c.cost_usd == 0,
                      _S.c.details["skipped"].as_string().like("decided by %"),
                      *_window(since, None, _PAIR_TIMES))
               .group_by(_X.c.task_type))
    for task, n in await _all(conn, skipped):
        out.setdefault(task, {"spend": 0.0, "calls": 0, "skipped": 0})["skipped"] = int(n)
    return out


async def latency_histograms(conn: AsyncConnection, since: Since) -> dict[LatencyKey, Histogram]:
    """(task, model) -> the latencies (ms) of successful candidate calls, and (task, None) ->
    the primary's, as :class:`~..figures.Histogram` (percentiles within 1%, exact where a
    bucket holds one value)."""
    out: dict[LatencyKey, Histogram] = {}
    jobs = [
        (_OUTPUTS, [_X.c.task_type, _O.c.model], _O.c.latency_ms,
         [*_window(since, times=_OUTPUT_TIMES), _O.c.error_kind.is_(None)]),
        (_X, [_X.c.task_type], _X.c.latency_ms, _window(since)),
    ]
    for select_from, group, value, where in jobs:
        query = (select(*group, value, func.count()).select_from(select_from)
                 .where(value.is_not(None), *where).group_by(*group, value))
        for row in (await conn.execute(query)).all():
            key = (row[0], row[1] if len(group) == 2 else None)
            out.setdefault(key, Histogram()).add(float(row[-2]), int(row[-1]))
    return out


async def score_histograms(
    conn: AsyncConnection, keys_by_task: Mapping[str, Keys], scorer: str, since: Since,
    buckets: int = 10,
) -> dict[tuple[str, str], list[int]]:
    """(task, model) -> counts of ``scorer``'s values (current version) in ``buckets`` equal
    bins over [0, 1] (1.0 falls in the last)."""
    out: dict[tuple[str, str], list[int]] = {}
    for task, keys in keys_by_task.items():
        versions = [version for name, version in keys if name == scorer]
        if not versions:
            continue
        # A CASE ladder, not floor(): SQLite has floor() only when built with its math
        # functions, and CAST rounds on Postgres.
        bucket = case(*[(_S.c.value < (b + 1) / buckets, b) for b in range(buckets - 1)],
                      else_=buckets - 1)
        query = (
            select(_O.c.model, bucket, func.count()).select_from(_PAIRS)
            .where(_X.c.task_type == task, _S.c.scorer == scorer, _S.c.version.in_(versions),
                   _S.c.value.is_not(None), *_window(since, times=_PAIR_TIMES))
            .group_by(_O.c.model, bucket)
        )
        for model, b, n in (await conn.execute(query)).all():
            counts = out.setdefault((task, model), [0] * buckets)
            counts[min(max(int(b), 0), buckets - 1)] += int(n)
    return out


async def primary_schema_checks(
    conn: AsyncConnection, keys_by_task: Mapping[str, Keys], since: Since
) -> dict[str, dict[str, int]]:
    """Task -> how often the schema scorer checked the primary's own output, and how often
    the primary failed (``details.primary_valid``), counted once per exchange."""
    out: dict[str, dict[str, int]] = {}
    valid = _S.c.details["primary_valid"].as_boolean()
    for task, keys in keys_by_task.items():
        versions = [version for name, version in keys if name == "schema"]
        if not versions:
            continue
        per_exchange = (
            select(_O.c.exchange_id, func.min(case((valid.is_(True), 1), (valid.is_(False), 0)))
                   .label("valid"))
            .select_from(_PAIRS)
            .where(_X.c.task_type == task, _S.c.scorer == "schema", _S.c.version.in_(versions),
                   *_window(since, times=_PAIR_TIMES))
            .group_by(_O.c.exchange_id)
            .subquery()
        )
        checked, invalid = (await conn.execute(select(
            func.count(per_exchange.c.valid), func.sum(case((per_exchange.c.valid == 0, 1), else_=0))
        ))).one()
        out[task] = {"checked": int(checked or 0), "invalid": int(invalid or 0)}
    return out


async def example_rows(
    conn: AsyncConnection, output_ids: Sequence[str], keys_by_task: Mapping[str, Keys]
) -> dict[str, dict[str, Any]]:
    """Output id -> the request, both answers and the current scores of each given output."""
    if not output_ids:
        return {}
    query = (
        select(_O.c.id, _O.c.model, _O.c.output, _O.c.error_kind, _O.c.error, _O.c.latency_ms,
               _X.c.id, _X.c.task_type, _X.c.request, _X.c.primary_model, _X.c.primary_output,
               _X.c.created_at)
        .select_from(_OUTPUTS).where(_O.c.id.in_(list(output_ids)))
    )
    out: dict[str, dict[str, Any]] = {}
    for (oid, model, output, error_kind, error, latency, xid, task, request, primary_model,
         primary_output, created_at) in (await conn.execute(query)).all():
        out[oid] = {"output_id": oid, "model": model, "output": output, "error_kind": error_kind,
                    "error": error, "latency_ms": latency, "exchange_id": xid, "task": task,
                    "request": request, "primary_model": primary_model,
                    "primary_output": primary_output, "created_at": created_at, "scores": []}
    scores = select(_S.c.output_id, _S.c.scorer, _S.c.version, _S.c.value, _S.c.passed,
                    _S.c.details).where(_S.c.output_id.in_(list(out)))
    for oid, scorer, version, value, passed, details in (await conn.execute(scores)).all():
        row = out[oid]
        if (scorer, version) in set(keys_by_task.get(row["task"], ())):
            row["scores"].append({"scorer": scorer, "value": value, "passed": passed,
                                  "details": details})
    for row in out.values():
        row["scores"].sort(key=lambda s: s["scorer"])
    return out
