"""Each task type's scoring plan (``score_plans``) and the decision counts kept under it
(``evidence_rollup``).

The rollup holds, per task type, model and route, what :func:`.evidence.evidence_counts`
would count over every stored output under the plan's scorer versions, without reading them:

- :func:`sync_plan` (at the start of every ``score`` run) records the plan; when it is new or
  changed it counts the task's stored outputs once into the rollup (and, on a change, queues
  them again for the new scores);
- every scoring batch moves it by what the batch changed: the counts of the exchanges it
  touched after its scores, minus before (:func:`touched_counts`, :func:`fold`), in the
  batch's transaction, with the plan row held (:func:`hold_plan`) and, on Postgres, the
  touched exchanges locked, so two batches on one exchange (a candidate and its replay) count
  its pair once;
- ``prune`` takes out what it deletes (:func:`unroll`), in the transaction that deletes it,
  while ``evidence_archive`` takes the same counts in (one count for both).

A task type's rollup is read (:func:`live_counts`) only while the recorded plan is the
config's; otherwise (scorers changed, no ``score`` run yet) the counts come from the store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ...records import ROUTE_SHADOW
from ..models import EvidenceArchive, Exchange
from ..scoring_tables import EvidenceRollup, ScorePlan
from .evidence import COUNTS, ROUTES, Counts, add_into, evidence_counts, keys_digest
from .scores import Keys, insert_for, requeue

__all__ = ["fold", "hold_plan", "live_counts", "plan_text", "sync_plan",
           "touched_counts", "unroll"]

_P = ScorePlan.__table__
_R = EvidenceRollup.__table__
_A = EvidenceArchive.__table__
_X = Exchange.__table__

ByRoute = dict[str, Counts]
"""Route -> counts of one task type."""


def plan_text(keys: Keys) -> str:
    """The canonical form of a plan's keys, as ``score_plans.plan`` holds it."""
    return json.dumps(sorted([name, version] for name, version in keys))


def plan_keys(text: str) -> list[tuple[str, str]]:
    return [(name, version) for name, version in json.loads(text)]


async def sync_plan(conn: AsyncConnection, task: str, keys: Keys, now: datetime) -> int:
    """Record ``keys`` as the task's plan, with its rollup. When another plan was recorded,
    queue every stored output of the task again (its scores at the new versions are owed) and
    return how many the queue holds for it (0 otherwise). Call in a transaction: the plan row
    stays locked until it commits, so a batch still working to the old plan neither takes
    those outputs off the queue nor moves the new rollup (:func:`hold_plan`)."""
    wanted = plan_text(keys)
    await _sqlite_write_lock(conn, task)
    row = (await conn.execute(
        select(_P.c.plan, _P.c.rolled_up).where(_P.c.task_type == task).with_for_update()
    )).first()
    if row is None:
        inserted = await conn.scalar(
            insert_for(conn.dialect.name, _P).values(
                task_type=task, plan=wanted, updated_at=now, rolled_up=True
            ).on_conflict_do_nothing().returning(_P.c.task_type)
        )
        if inserted is None:  # another run recorded it meanwhile: go by its row
            return await sync_plan(conn, task, keys, now)
        await _build(conn, task, keys)
        return 0
    if row.plan == wanted and row.rolled_up:
        return 0
    await conn.execute(update(_P).where(_P.c.task_type == task)
                       .values(plan=wanted, updated_at=now, rolled_up=True))
    await _build(conn, task, keys)
    return 0 if row.plan == wanted else await requeue(conn, task, None)


async def _build(conn: AsyncConnection, task: str, keys: Keys) -> None:
    """The task's rollup under ``keys``, counted from the store."""
    digest = keys_digest(keys)
    await conn.execute(delete(_R).where(_R.c.task_type == task, _R.c.keys_digest == digest))
    if not keys:
        return
    for route in ROUTES:
        await _add(conn, digest, route, await evidence_counts(conn, {task: keys}, route=route))


async def hold_plan(conn: AsyncConnection, task: str, keys: Keys) -> bool:
    """Whether the task's recorded plan is still ``keys``; holds the plan row to the end of
    the transaction (a change of plan waits for it). On SQLite this is a write, the
    transaction's first, so the database's write lock is taken before the counts a batch
    folds are read."""
    where = _P.c.task_type == task
    if conn.dialect.name == "sqlite":
        await _sqlite_write_lock(conn, task)
        plan = await conn.scalar(select(_P.c.plan).where(where))
    else:
        plan = await conn.scalar(select(_P.c.plan).where(where).with_for_update(read=True))
    return plan == plan_text(keys)


async def _sqlite_write_lock(conn: AsyncConnection, task: str) -> None:
    """On SQLite, a write as the transaction's first statement: it waits for the database's
    write lock (busy timeout) and reads after it. A transaction that reads first and writes
    later fails at once ("database is locked") when another connection wrote in between."""
    if conn.dialect.name == "sqlite":
        await conn.execute(update(_P).where(_P.c.task_type == task).values(plan=_P.c.plan))


async def touched_counts(conn: AsyncConnection, task: str, keys: Keys,
                         by_route: Mapping[str, Sequence[str]], *, lock: bool) -> ByRoute:
    """The counts of the exchanges ``by_route`` (route -> exchange ids) of the task; with
    ``lock`` (Postgres, before the batch's scores go in), the exchanges are locked first, in
    id order, until the transaction ends."""
    if lock:
        ids = sorted({i for chunk in by_route.values() for i in chunk})
        await conn.execute(select(_X.c.id).where(_X.c.id.in_(ids)).order_by(_X.c.id)
                           .with_for_update())
    return {route: await evidence_counts(conn, {task: keys}, route=route, ids=list(ids))
            for route, ids in by_route.items() if ids}


async def fold(conn: AsyncConnection, keys: Keys, before: ByRoute, after: ByRoute) -> None:
    """Move the rollup by ``after - before``."""
    digest = keys_digest(keys)
    for route in after.keys() | before.keys():
        await _add(conn, digest, route, _minus(after.get(route, {}), before.get(route, {})))


async def unroll(conn: AsyncConnection, batch: Mapping[tuple[str, str], Sequence[str]],
                 archive: Mapping[str, Keys] | None = None, *,
                 span: tuple[datetime, datetime] | None = None) -> int:
    """Take the exchanges of ``batch`` ((task type, route) -> exchange ids, about to be
    deleted) out of the rollup of their task's recorded plan and, with ``archive`` (task type
    -> its current (scorer, version) set), add their counts to ``evidence_archive`` under that
    set. Each (task type, route, scorer set) is counted once: when the recorded plan is the
    archive's set (the usual case, a ``score`` run having recorded the config's), one count
    serves both, and the archive takes exactly what the rollup gives up. Returns the archive
    rows written.

    ``span`` ((since, until)): the exchanges are all those created in it, per (task type,
    route) of ``batch`` (whose ids are not read): a whole month about to be dropped, counted
    in one pass per task type and route instead of by ids.

    On Postgres a scoring batch may commit scores of these exchanges between this count and
    the delete (prune waits for the batch's output locks, not the other way round): the rollup
    then keeps that batch's share of a deleted exchange, which the archive (counted at the same
    moment) lacks, so their sum, what the report reads, still counts it once."""
    tasks = sorted({task for task, _route in batch})
    plans = {task: plan_keys(plan) for task, plan in (await conn.execute(
        select(_P.c.task_type, _P.c.plan).where(_P.c.task_type.in_(tasks),
                                                 _P.c.rolled_up.is_(True)))).all()}
    written = 0
    for (task, route), ids in sorted(batch.items()):
        rolled, kept = plans.get(task), (archive or {}).get(task)
        # One count per scorer set: the plan's and the archive's are usually the same.
        sets = {keys_digest(keys): keys for keys in (rolled, kept) if keys}
        which: dict[str, Any] = (
            {"ids": list(ids)} if span is None else {"since": span[0], "until": span[1]})
        counted = {digest: await evidence_counts(conn, {task: keys}, route=route, **which)
                   for digest, keys in sets.items()}
        if rolled:
            await _add(conn, keys_digest(rolled), route, _minus({}, counted[keys_digest(rolled)]))
        if kept:
            digest = keys_digest(kept)
            written += await add_into(conn, _A, route, counted[digest],
                                      lambda _task, digest=digest: digest)
    return written


async def live_counts(conn: AsyncConnection, keys_by_task: Mapping[str, Keys],
                      route: str = ROUTE_SHADOW) -> Counts:
    """What :func:`.evidence.evidence_counts` returns over the whole store on ``route``: from
    the rollup for each task type whose recorded plan is ``keys_by_task``'s, counted from the
    store for the others."""
    wanted = {task: keys for task, keys in keys_by_task.items() if keys}
    recorded = dict((await conn.execute(select(_P.c.task_type, _P.c.plan).where(
        _P.c.task_type.in_(list(wanted)), _P.c.rolled_up.is_(True)))).all())
    rolled = {task for task, keys in wanted.items() if recorded.get(task) == plan_text(keys)}
    out: Counts = {}
    if rolled:
        query = select(_R).where(_R.c.route == route, _R.c.task_type.in_(sorted(rolled)))
        for row in (await conn.execute(query)).mappings():
            if row["keys_digest"] == keys_digest(wanted[row["task_type"]]) and any(
                    row[name] for name in COUNTS):
                out[(row["task_type"], row["model"])] = {name: int(row[name]) for name in COUNTS}
    rest = {task: keys for task, keys in wanted.items() if task not in rolled}
    if rest:
        out.update(await evidence_counts(conn, rest, route=route))
    return out


def _minus(a: Counts, b: Counts) -> Counts:
    out: Counts = {}
    for key in a.keys() | b.keys():
        delta = {name: a.get(key, {}).get(name, 0) - b.get(key, {}).get(name, 0)
                 for name in COUNTS}
        if any(delta.values()):
            out[key] = delta
    return out


async def _add(conn: AsyncConnection, digest: str, route: str, counts: Counts) -> None:
    """Add ``counts`` to the rollup rows of ``digest`` on ``route``."""
    await add_into(conn, _R, route, counts, lambda _task: digest)
