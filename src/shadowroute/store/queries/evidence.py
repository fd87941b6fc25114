"""The counts a decision rests on: cumulative per (task type, model), surviving ``prune``.

A decision is valid for *growing* evidence (see :mod:`shadowroute.decision`), so it never reads
a sliding window: :func:`evidence_counts` counts every stored output of a task type under its
current scorer versions, and :func:`archived_counts` adds what ``prune`` deleted, which
:func:`.plans.unroll` folded into ``evidence_archive`` (keyed by the digest of the scorer
versions: a scorer change starts the evidence again) just before deleting it.

Per (task, model): ``complete`` (outputs holding every current score), ``counted`` (complete,
and some scorer applied), ``passed`` (every scorer that applied passed), ``judged`` /
``flipped`` / ``flipped_passed`` (the judge scored it; its verdict flipped when the answers
swapped places; and it was counted as a pass), and, for a candidate, the paired cells on the
exchanges where the primary's noise-floor replay was counted too (``pairs``,
``pairs_both_failed``, ``pairs_candidate_failed``, ``pairs_replay_failed``; a flipped judge
verdict is a failure there). Per task, under model ``""``: the schema checks of the primary's
own answer (``schema_checked``, ``schema_invalid``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table, and_, case, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from ...records import NOISE_FLOOR_MODEL, ROUTE_REVERSE, ROUTE_SHADOW
from ..models import CandidateOutput, EvidenceArchive, Exchange, Score, exchange_of, output_of
from .scores import Keys, insert_for, span_of

__all__ = ["COUNTS", "ROUTES", "TASK_ROW", "add_counts", "add_into", "archived_counts",
           "evidence_counts", "keys_digest", "nightly_counts"]

COUNTS = ("complete", "counted", "passed", "judged", "flipped", "flipped_passed", "pairs",
          "pairs_both_failed", "pairs_candidate_failed", "pairs_replay_failed",
          "schema_checked", "schema_invalid")
ROUTES = (ROUTE_SHADOW, ROUTE_REVERSE)
"""Every route an exchange is stored on."""
TASK_ROW = ""
"""The model name of a task type's own row (the primary's schema checks)."""

_X = Exchange.__table__
_O = CandidateOutput.__table__
_S = Score.__table__
_A = EvidenceArchive.__table__
_PAIRS = _S.join(_O, output_of()).join(_X, exchange_of())

Counts = dict[tuple[str, str], dict[str, int]]


def keys_digest(keys: Keys) -> str:
    """A short digest of a task type's current (scorer, version) set."""
    text = "\n".join(f"{scorer}:{version}" for scorer, version in sorted(set(keys)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


Some = tuple[Sequence[str], datetime, datetime]
"""Exchange ids and the span of their times: counts of those only."""


def _window(since: datetime | None, until: datetime | None, route: str,
            ids: Some | None = None) -> list[Any]:
    where: list[Any] = [_X.c.route == route]
    if ids is not None:
        # With their span of time on every table: the planner walks the exchanges of that
        # span by index and each one's outputs and scores by key (on Postgres in the months
        # it covers only). Without the span it scanned every score; with the outputs' ids
        # as an IN list on the scores, each probe of the scores sorted the whole list again.
        where += [_X.c.id.in_(list(ids[0]))]
        where += [column.between(ids[1], ids[2]) for column in (
            _X.c.created_at, _O.c.exchange_created_at, _S.c.exchange_created_at)]
    # The joined tables' copies of the time too: on Postgres the planner then reads the
    # span's months of every table.
    times = (_X.c.created_at, _O.c.exchange_created_at, _S.c.exchange_created_at)
    if since is not None:
        where += [column >= since for column in times]
    if until is not None:
        where += [column < until for column in times]
    return where


def _per_output(task: str, keys: Keys, since: datetime | None, until: datetime | None,
                route: str, ids: Some | None = None) -> Any:
    """One row per output holding every current score (a failed noise-floor call left out,
    as the report leaves it out): model, exchange, created_at, ok (1/0/NULL), flipped (1/0),
    judged (1/0)."""
    flipped = and_(_S.c.scorer == "judge", _S.c.details["flipped"].as_boolean().is_(True))
    per = (
        select(
            _O.c.model.label("model"), _O.c.exchange_id.label("exchange_id"),
            func.min(_X.c.created_at).label("created_at"),
            func.count().label("present"),
            func.min(case((_S.c.passed.is_(True), 1), (_S.c.passed.is_(False), 0))).label("ok"),
            func.max(case((flipped, 1), else_=0)).label("flipped"),
            func.max(case((and_(_S.c.scorer == "judge", _S.c.passed.is_not(None)), 1),
                          else_=0)).label("judged"),
        )
        .select_from(_PAIRS)
        .where(_X.c.task_type == task, tuple_(_S.c.scorer, _S.c.version).in_(list(keys)),
               (_O.c.model != NOISE_FLOOR_MODEL) | _O.c.error_kind.is_(None),
               *_window(since, until, route, ids))
        .group_by(_O.c.model, _O.c.exchange_id, _S.c.output_id)
        .subquery()
    )
    return select(per).where(per.c.present == len(set(keys))).subquery()


async def evidence_counts(
    conn: AsyncConnection, keys_by_task: Mapping[str, Keys], *, since: datetime | None = None,
    until: datetime | None = None, route: str = ROUTE_SHADOW, ids: Sequence[str] | None = None,
) -> Counts:
    """The counts of every stored output of each task type on ``route`` created in
    [``since``, ``until``) (all of them by default; only the exchanges ``ids`` when given),
    under its current scorer versions."""
    out: Counts = {}
    some: Some | None = None
    if ids is not None:
        # Their times, by key (``min()`` and ``max()`` here were planned as a walk of the
        # time index, filtering every row by the ids: 0.1 s a batch).
        span = span_of(await conn.scalars(select(_X.c.created_at).where(_X.c.id.in_(list(ids)))))
        if span is None:
            return out
        some = (ids, *span)
    for task, keys in keys_by_task.items():
        if not keys:
            continue
        per = _per_output(task, keys, since, until, route, some)
        counted = per.c.ok.is_not(None)
        query = select(
            per.c.model, func.count(),
            func.sum(case((counted, 1), else_=0)),
            func.sum(case((per.c.ok == 1, 1), else_=0)),
            func.sum(case((and_(counted, per.c.judged == 1), 1), else_=0)),
            func.sum(case((and_(counted, per.c.flipped == 1), 1), else_=0)),
            func.sum(case((and_(per.c.ok == 1, per.c.flipped == 1), 1), else_=0)),
        ).group_by(per.c.model)
        for model, complete, n, passed, judged, flipped, flipped_passed in (
                await conn.execute(query)).all():
            out[(task, model)] = {
                "complete": int(complete), "counted": int(n or 0), "passed": int(passed or 0),
                "judged": int(judged or 0), "flipped": int(flipped or 0),
                "flipped_passed": int(flipped_passed or 0)}
        for model, cells in (await _paired(conn, per)).items():
            out.setdefault((task, model), _zero()).update(cells)
        checked, invalid = await _schema_checks(conn, task, keys, since, until, route, some)
        if checked:
            out[(task, TASK_ROW)] = {**_zero(), "schema_checked": checked,
                                     "schema_invalid": invalid}
    return out


async def _paired(conn: AsyncConnection, per: Any) -> dict[str, dict[str, int]]:
    """Per candidate: the exchanges where its output and the noise-floor replay were both
    counted, and how their failures (a flipped judge verdict included) fall together.

    One pass: each output row carries its exchange's replay failure (a window over the
    exchange; at most one replay per exchange). A join of the per-output rows with themselves
    was planned as a nested loop on Postgres (the grouped rows are badly estimated): 9 minutes
    for 1M pairs with 50k replays (``bench/report_scale.py``)."""
    fail = case((or_(per.c.ok == 0, per.c.flipped == 1), 1), else_=0)
    replay = and_(per.c.model == NOISE_FLOOR_MODEL, per.c.ok.is_not(None))
    rows = select(
        per.c.model, per.c.ok, fail.label("fail"),
        func.max(case((replay, fail))).over(partition_by=per.c.exchange_id).label("replay_fail"),
    ).subquery()
    c_fail, r_fail = rows.c.fail == 1, rows.c.replay_fail == 1
    query = (
        select(rows.c.model, func.count(),
               func.sum(case((and_(c_fail, r_fail), 1), else_=0)),
               func.sum(case((and_(c_fail, ~r_fail), 1), else_=0)),
               func.sum(case((and_(~c_fail, r_fail), 1), else_=0)))
        .where(rows.c.model != NOISE_FLOOR_MODEL, rows.c.ok.is_not(None),
               rows.c.replay_fail.is_not(None))
        .group_by(rows.c.model)
    )
    return {model: {"pairs": int(n), "pairs_both_failed": int(both or 0),
                    "pairs_candidate_failed": int(c or 0), "pairs_replay_failed": int(r or 0)}
            for model, n, both, c, r in (await conn.execute(query)).all()}


async def _schema_checks(conn: AsyncConnection, task: str, keys: Keys, since: datetime | None,
                         until: datetime | None, route: str,
                         ids: Some | None = None) -> tuple[int, int]:
    """(checked, invalid): the primary's own answer against the task's schema, once per
    exchange (``details.primary_valid`` of the current schema scorer's scores)."""
    versions = [version for scorer, version in keys if scorer == "schema"]
    if not versions:
        return 0, 0
    valid = _S.c.details["primary_valid"].as_boolean()
    per_exchange = (
        select(_X.c.id, func.min(case((valid.is_(True), 1), (valid.is_(False), 0))).label("ok"))
        .select_from(_PAIRS)
        .where(_X.c.task_type == task, _S.c.scorer == "schema", _S.c.version.in_(versions),
               *_window(since, until, route, ids))
        .group_by(_X.c.id).subquery()
    )
    row = (await conn.execute(select(
        func.count(per_exchange.c.ok), func.sum(case((per_exchange.c.ok == 0, 1), else_=0))
    ))).one()
    return int(row[0] or 0), int(row[1] or 0)


def _zero() -> dict[str, int]:
    return dict.fromkeys(COUNTS, 0)


async def archived_counts(
    conn: AsyncConnection, keys_by_task: Mapping[str, Keys], route: str = ROUTE_SHADOW
) -> Counts:
    """What ``prune`` folded into ``evidence_archive`` for each task type's current scorer
    versions on ``route``."""
    out: Counts = {}
    for task, keys in keys_by_task.items():
        if not keys:
            continue
        query = select(_A).where(_A.c.task_type == task, _A.c.route == route,
                                 _A.c.keys_digest == keys_digest(keys))
        for row in (await conn.execute(query)).mappings():
            out[(task, row["model"])] = {name: int(row[name]) for name in COUNTS}
    return out


def add_counts(*parts: Counts) -> Counts:
    """The sum of several count tables, key by key."""
    out: Counts = {}
    for part in parts:
        for key, counts in part.items():
            total = out.setdefault(key, _zero())
            for name in COUNTS:
                total[name] += counts.get(name, 0)
    return out


async def add_into(conn: AsyncConnection, table: Table, route: str, counts: Counts,
                   digest_of: Callable[[str], str]) -> int:
    """Add ``counts`` to the rows of ``table`` (``evidence_archive`` or ``evidence_rollup``:
    keyed by task type, model, route and ``digest_of(task)``); counts that are all zero are
    left out. Returns the rows written."""
    written = 0
    for (task, model), values in sorted(counts.items()):
        if not any(values.get(name, 0) for name in COUNTS):
            continue
        statement = insert_for(conn.dialect.name, table).values(
            task_type=task, model=model, route=route, keys_digest=digest_of(task),
            **{name: values.get(name, 0) for name in COUNTS})
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.task_type, table.c.model, table.c.route,
                            table.c.keys_digest],
            set_={name: table.c[name] + statement.excluded[name] for name in COUNTS})
        await conn.execute(statement)
        written += 1
    return written


async def nightly_counts(
    conn: AsyncConnection, task: str, keys: Keys, model: str, *, since: datetime,
    route: str,
) -> dict[date, tuple[int, int]]:
    """Per UTC day since ``since``: (counted, passed with a flipped judge verdict a failure)
    of ``model``'s outputs of ``task`` on ``route`` (the drift detector's nights)."""
    if not keys:
        return {}
    per = _per_output(task, keys, since, None, route)
    query = select(per.c.created_at, per.c.ok, per.c.flipped).where(
        per.c.model == model, per.c.ok.is_not(None))
    out: dict[date, tuple[int, int]] = {}
    for created_at, ok, flipped in (await conn.execute(query)).all():
        when = created_at if isinstance(created_at, datetime) else \
            datetime.fromisoformat(str(created_at))
        day = (when.astimezone(UTC) if when.tzinfo is not None else when).date()
        n, passed = out.get(day, (0, 0))
        out[day] = (n + 1, passed + int(ok == 1 and not flipped))
    return out
