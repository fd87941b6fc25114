"""Retention: delete stored pairs, traffic counts and reports older than a cutoff.

    report = await prune(store, datetime.now(UTC) - timedelta(days=30))
    report.summary()   # "deleted 1,200 exchanges, 2,400 candidate outputs, ... before ..."

What goes: exchanges created before the cutoff with their candidate outputs and scores,
``traffic_daily`` rows of days before the cutoff's (UTC) date, and reports created before the
cutoff with their decisions — except the newest report, which is always kept so that
``shadowroute promote`` has a latest decision to check. What stays: ``route_changes``,
``retirements``, ``judge_calibrations`` and ``scorer_calibrations`` (history, and tiny), and the decision counts
of the deleted exchanges: each batch's are added to ``evidence_archive`` in the transaction that
deletes it (given the task types' current scorer versions, as the CLI passes them), so no
verdict loses evidence to retention. The ids of applied batches (``applied_batches``, which
stop a replayed spool file from adding its counts twice) go when they are older than both the
cutoff and :data:`KEEP_BATCH_IDS`: a spool file can wait out a long outage before it is
replayed, and prune must not forget a batch it could still meet.

On Postgres a month wholly before the cutoff goes whole (:mod:`.partitions`): one transaction
holds off writes to its partitions, counts its evidence into the archive (as below, one pass
over the month per task type and route) and drops them; nothing of it is left half-done. The
rest goes row by row.

Exchanges go in batches, one transaction each (their outputs locked, then their scores and
queue rows, the outputs and the exchanges deleted, by id: the tables have no foreign keys
between them, see :class:`.models.CandidateOutput`): a large
prune never holds a long lock, and an interrupted one keeps what it already deleted; each batch
starts where the last one ended, so none walks over rows already deleted. A dry run counts the
same rows and deletes nothing (a real prune counts only the exchanges up front, for its
progress, and the rest as it deletes them). SQLite files do not shrink after a prune: ``VACUUM``
reclaims the space (not run here, as it rewrites the whole file under an exclusive lock).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from . import Store
from .models import (
    AppliedBatch,
    CandidateOutput,
    Exchange,
    ReportRun,
    Score,
    StoredDecision,
    TrafficDaily,
)
from .partitions import (
    begins,
    drop_month,
    keep_ahead,
    lock_month,
    month_partitions,
    next_month,
)
from .queries.evidence import ROUTES
from .queries.plans import unroll
from .queries.scores import Keys
from .queries.stale import mark_days, utc_day
from .scoring_tables import ScorePlan, ScoreQueue

__all__ = ["DEFAULT_BATCH", "KEEP_BATCH_IDS", "PruneReport", "prune"]

DEFAULT_BATCH = 5000
"""Exchanges deleted per transaction."""
_ID_SLICE = 500
"""Ids per ``IN (...)`` list, well under every driver's parameter limit."""
KEEP_BATCH_IDS = timedelta(days=30)
"""Batch ids are kept at least this long, whatever the cutoff (a batch spooled during an
outage is replayed when the database is back: its id must still be known then)."""

_X = Exchange.__table__
_O = CandidateOutput.__table__
_S = Score.__table__
_T = TrafficDaily.__table__
_R = ReportRun.__table__
_D = StoredDecision.__table__
_B = AppliedBatch.__table__
_Q = ScoreQueue.__table__


@dataclass
class PruneReport:
    """What a prune deleted (or, for a dry run, would delete)."""

    cutoff: datetime
    dry_run: bool = False
    exchanges: int = 0
    outputs: int = 0
    scores: int = 0
    traffic_days: int = 0
    """``traffic_daily`` rows (one per day x task type x primary model)."""
    reports: int = 0
    decisions: int = 0
    batches: int = 0
    archived: int = 0
    """Rows of ``evidence_archive`` the deleted exchanges' decision counts were added to."""
    months: int = 0
    """Months whose partitions were dropped whole (Postgres; counted in the figures above)."""
    batch_ids: int = 0
    """Rows of ``applied_batches`` (ids of batches whose counts were added; see
    :data:`KEEP_BATCH_IDS`)."""
    kept_report: str | None = None
    """The newest report's id when it is older than the cutoff and kept anyway."""
    backend: str = ""
    source: str | None = None
    """Only this source's exchanges (``prune --source``)."""

    @property
    def deleted_anything(self) -> bool:
        return any((self.exchanges, self.outputs, self.scores, self.traffic_days, self.reports))

    def summary(self) -> str:
        """One line: the counts per table and the cutoff."""
        verb = "would delete" if self.dry_run else "deleted"
        if self.source is not None:
            return (f"{verb} {self.exchanges:,} exchanges of source {self.source!r} with "
                    f"{self.outputs:,} candidate outputs and {self.scores:,} scores, from "
                    f"before {self.cutoff.isoformat(timespec='seconds')} (their counts are "
                    "not archived: that evidence is gone)")
        kept = f" (kept the newest report {self.kept_report})" if self.kept_report else ""
        archived = (f"; their decision counts kept in {self.archived:,} evidence rows"
                    if self.archived else "")
        if self.months:
            archived += (f"; {self.months:,} month{'s' if self.months != 1 else ''} dropped "
                         "whole (partitions)")
        return (
            f"{verb} {self.exchanges:,} exchanges, {self.outputs:,} candidate outputs, "
            f"{self.scores:,} scores, {self.traffic_days:,} traffic rows, "
            f"{self.reports:,} reports ({self.decisions:,} decisions){kept} "
            f"from before {self.cutoff.isoformat(timespec='seconds')}{archived}"
        )

    def hint(self) -> str | None:
        """What to do next, when there is something (SQLite files do not shrink by themselves)."""
        if self.backend == "sqlite" and not self.dry_run and self.deleted_anything:
            return (
                "SQLite keeps the freed pages: run VACUUM on the database file (e.g. "
                "`sqlite3 shadowroute.db VACUUM`) while nothing writes to it to reclaim the space"
            )
        return None


async def prune(
    store: Store,
    older_than: datetime,
    *,
    dry_run: bool = False,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
    keys_by_task: Mapping[str, Keys] | None = None,
    source: str | None = None,
) -> PruneReport:
    """Delete what was stored before ``older_than`` (see the module docstring).

    ``source``: only the exchanges of that source (``remote:app-1``, ``import:old.jsonl``...),
    with their outputs and scores, and nothing else: no traffic, no reports, and their counts
    are *not* archived (removing a source is removing its evidence, e.g. after it was found
    to send fabricated captures).

    ``keys_by_task`` (each task type's current (scorer, version) set; the CLI passes the
    config's): the decision counts of every batch are folded into ``evidence_archive`` in the
    transaction that deletes it, so verdicts keep their evidence (see
    :mod:`.queries.evidence`). Without it the counts go with the rows.

    ``batch`` exchanges (oldest first) per transaction; ``progress(done, total)`` is called
    after each batch with the exchanges deleted so far. Raises :class:`StoreError` when the
    database cannot be read or written; batches committed before the error stay deleted.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if older_than.tzinfo is None:
        older_than = older_than.replace(tzinfo=UTC)
    cutoff = older_than.astimezone(UTC)
    report = PruneReport(cutoff=cutoff, dry_run=dry_run, backend=store.backend, source=source)
    which = [_X.c.created_at < cutoff] + ([_X.c.source == source] if source is not None else [])

    def done() -> str:
        return f" (deleted {report.exchanges:,} exchanges before the error)" if report.exchanges else ""

    async with store.connect("prune", note=done) as conn:
        newest, newest_at = await _newest_report(conn)
        if dry_run:
            counted = await _count(conn, cutoff, newest, which, source is None)
        else:  # the progress total; outputs and scores are counted as they go
            total = int(await conn.scalar(select(func.count()).select_from(_X).where(*which))
                        or 0)
    if source is None and newest is not None and newest_at is not None and newest_at < cutoff:
        report.kept_report = newest
    if dry_run:
        for key in ("exchanges", "outputs", "scores", "traffic_days", "reports", "decisions",
                    "batch_ids"):
            setattr(report, key, counted[key])
        return report
    if source is None and store.backend == "postgresql":
        await keep_ahead(store)
        async with store.connect("prune", note=done) as conn:
            months = [m for m in await month_partitions(conn)
                      if begins(next_month(m)) <= cutoff]
        for month in months:  # whole months: their partitions are dropped
            async with store.begin("prune", note=done) as conn:
                await _drop_month(conn, month, report, keys_by_task)
            if progress is not None:
                progress(report.exchanges, max(total, report.exchanges))
    after: tuple[datetime, str] | None = None
    while True:
        async with store.begin("prune", note=done) as conn:
            # Oldest first, each batch after the last one's (created_at, id): the scan never
            # walks back over the rows it deleted (dead until vacuumed on Postgres).
            query = select(_X.c.id, _X.c.created_at, _X.c.task_type, _X.c.route).where(*which)
            if after is not None:
                query = query.where(_X.c.created_at >= after[0],
                                    tuple_(_X.c.created_at, _X.c.id) > after)
            found = (
                await conn.execute(query.order_by(_X.c.created_at, _X.c.id).limit(batch))
            ).all()
            ids = [row.id for row in found]
            if found:
                after = (found[-1].created_at, found[-1].id)
            if ids:
                # The report's figures of their days are stale (:mod:`.queries.days`).
                await mark_days(conn, {utc_day(row.created_at) for row in found})
                groups: dict[tuple[str, str], list[str]] = {}
                for row in found:
                    groups.setdefault((row.task_type, row.route), []).append(row.id)
                # Out of the live counts the scoring job keeps, into the archive.
                report.archived += await unroll(
                    conn, groups, archive=keys_by_task if source is None else None)
                await _delete_exchanges(conn, [(row.id, row.created_at) for row in found],
                                        report)
        if not ids:
            break
        report.batches += 1
        if progress is not None:
            progress(report.exchanges, max(total, report.exchanges))
        if len(ids) < batch:
            break
    if source is not None:
        return report
    async with store.begin("prune", note=done) as conn:
        report.traffic_days = _rows(
            await conn.execute(delete(_T).where(_T.c.day < cutoff.date()))
        )
        old_reports = select(_R.c.id).where(_R.c.created_at < cutoff)
        if newest is not None:
            old_reports = old_reports.where(_R.c.id != newest)
        report.decisions = _rows(
            await conn.execute(delete(_D).where(_D.c.report_id.in_(old_reports)))
        )
        report.reports = _rows(
            await conn.execute(delete(_R).where(_R.c.id.in_(old_reports)))
        )
        report.batch_ids = _rows(
            await conn.execute(delete(_B).where(_B.c.applied_at < _batch_ids_cutoff(cutoff)))
        )
    return report


async def _drop_month(conn: AsyncConnection, month: date, report: PruneReport,
                      keys_by_task: Mapping[str, Keys] | None) -> None:
    """One month (Postgres): its decision counts archived, then its partitions dropped, in one
    transaction. Writes to the month's rows (a replay, a late score) wait for it, so nothing
    is stored there between the counting and the drop. Every day of the month is marked for
    the report's rollups."""
    await lock_month(conn, month)
    start, end = begins(month), begins(next_month(month))
    await mark_days(conn, [month + timedelta(days=d) for d in range((end - start).days)])
    # Every task type that has a rollup or an archive to keep, on every route: one pass over
    # the month each (a task type with neither keeps nothing of it).
    tasks = set(keys_by_task or {}) | set(
        (await conn.scalars(select(ScorePlan.task_type))).all())
    groups: dict[tuple[str, str], list[str]] = {
        (task, route): [] for task in sorted(tasks) for route in ROUTES}
    report.archived += await unroll(conn, groups, archive=keys_by_task, span=(start, end))
    dropped = await drop_month(conn, month)
    report.exchanges += dropped.exchanges
    report.outputs += dropped.outputs
    report.scores += dropped.scores
    report.months += 1


def _batch_ids_cutoff(cutoff: datetime) -> datetime:
    """Batch ids applied before this go: the cutoff, but never less than
    :data:`KEEP_BATCH_IDS` ago."""
    return min(cutoff, datetime.now(UTC) - KEEP_BATCH_IDS)


async def _delete_exchanges(conn: AsyncConnection, rows: Sequence[tuple[str, datetime]],
                            report: PruneReport) -> None:
    """The exchanges ``rows`` ((id, created_at)) with everything of theirs: their outputs
    locked, then their scores and queue rows, the outputs and the exchanges deleted. Each
    statement is bounded by the span of times too, so that on Postgres it reads the
    partitions of those months only."""
    for start in range(0, len(rows), _ID_SLICE):
        chunk = [row[0] for row in rows[start : start + _ID_SLICE]]
        times = [row[1] for row in rows[start : start + _ID_SLICE]]
        lo, hi = min(times), max(times)
        # The outputs first, locked on Postgres: a scoring batch that holds some commits its
        # scores before this goes on, so none is written after they are deleted.
        outputs = select(_O.c.id).where(_O.c.exchange_id.in_(chunk),
                                        _O.c.exchange_created_at.between(lo, hi))
        if conn.dialect.name == "postgresql":
            outputs = outputs.with_for_update()
        ids = list((await conn.scalars(outputs)).all())
        for first in range(0, len(ids), _ID_SLICE):
            some = ids[first : first + _ID_SLICE]
            report.scores += _rows(await conn.execute(delete(_S).where(
                _S.c.output_id.in_(some), _S.c.exchange_created_at.between(lo, hi))))
            await conn.execute(delete(_Q).where(_Q.c.output_id.in_(some)))
        report.outputs += _rows(await conn.execute(delete(_O).where(
            _O.c.exchange_id.in_(chunk), _O.c.exchange_created_at.between(lo, hi))))
        report.exchanges += _rows(await conn.execute(delete(_X).where(
            _X.c.id.in_(chunk), _X.c.created_at.between(lo, hi))))


async def _count(conn: AsyncConnection, cutoff: datetime, newest: str | None,
                 which: Sequence[Any], rest: bool) -> dict[str, int]:
    """What a prune at ``cutoff`` deletes, per table (the ``newest`` report excluded): the
    exchanges ``which`` selects, and traffic and reports when ``rest``."""
    old_x = select(_X.c.id).where(*which)
    old_o = select(_O.c.id).where(_O.c.exchange_id.in_(old_x))
    old_r = select(_R.c.id).where(_R.c.created_at < cutoff)
    if newest is not None:
        old_r = old_r.where(_R.c.id != newest)

    async def count(query: Any) -> int:
        return int(await conn.scalar(query) or 0)

    exchanges = {
        "exchanges": await count(select(func.count()).select_from(old_x.subquery())),
        "outputs": await count(select(func.count()).select_from(old_o.subquery())),
        "scores": await count(select(func.count()).select_from(_S).where(_S.c.output_id.in_(old_o))),
    }
    if not rest:
        return {**exchanges, "traffic_days": 0, "reports": 0, "decisions": 0, "batch_ids": 0}
    return {
        **exchanges,
        "traffic_days": await count(
            select(func.count()).select_from(_T).where(_T.c.day < cutoff.date())
        ),
        "reports": await count(select(func.count()).select_from(old_r.subquery())),
        "decisions": await count(
            select(func.count()).select_from(_D).where(_D.c.report_id.in_(old_r))
        ),
        "batch_ids": await count(
            select(func.count()).select_from(_B)
            .where(_B.c.applied_at < _batch_ids_cutoff(cutoff))
        ),
    }


async def _newest_report(conn: AsyncConnection) -> tuple[str | None, datetime | None]:
    """The id and creation time of the report ``latest_report`` returns (or ``None``s)."""
    query = select(_R.c.id, _R.c.created_at).order_by(_R.c.created_at.desc(), _R.c.id.desc())
    row = (await conn.execute(query.limit(1))).first()
    return (row[0], row[1]) if row is not None else (None, None)


def _rows(result: Any) -> int:
    return max(int(result.rowcount or 0), 0)
