"""``shadowroute score``: give every candidate output the scores its task type's scorers owe it.

Incremental and idempotent: an output is work while it lacks a score from one of its task's
scorers at the scorer's current version (see :mod:`.plan`). Work comes from the store's
``score_queue`` (every write queues its outputs; a task whose scorers changed has its outputs
queued again, once), and an output leaves the queue with its last score, so a run costs what is
queued, not what is stored: with nothing new it returns at once (on Postgres a run that took
outputs off the queue vacuums it as it ends, so the next one does not read the dead rows).
Scores are written per batch, in one transaction with the batch's claim (and its outputs
leaving the queue) on Postgres, so an interrupted run loses at most the batches in flight and
the next run picks up the rest.
Several workers (``--workers``, and several processes on Postgres) share the work without
scoring anything twice.

Per output: the deterministic scorers run first; a hard failure (schema) fails the judge score
too, without a judge call, so no favourable judge can override it. Under ``[judge] when =
"needed"`` (the default) no judge call is made either where another scorer already decided the
pair (one failed, or ``exact`` / ``label`` / ``extract`` found the primary's answer): its judge
score is stored as not applicable, naming what decided, and counted in ``judge_skipped``. A candidate call that failed
is a failed score for every scorer (it gave no usable answer). Scorers that need more than the
two texts (``uses_context``, e.g. ``correctness``) also get the exchange's metadata and the
output's model as a :class:`~.correctness.ScoreContext`. A scorer plugin that raises on a pair
(or could not be built) is counted per plugin in the run's report and leaves the pair without
its score for the next run; the other scorers go on (:mod:`.plugins`). Judge calls that fail,
or that the run's budget cannot cover, leave the output without a judge score for the next run;
once the budget is spent the run stops calling the judge and finishes the deterministic scorers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio

from ..config import Config
from ..errors import raised_as_itself
from ..mirror.policy import Completer
from ..records import utcnow
from ..store import Store
from ..store.partitions import keep_ahead
from ..store.queries.days import refresh_days
from ..store.queries.plans import fold, hold_plan, touched_counts
from ..store.queries.scores import (
    Pair,
    ScoreRow,
    Span,
    count_queued,
    dequeue,
    exchange_metadata,
    existing_scores,
    has_outputs,
    insert_scores,
    load_pairs,
    lock_ids,
    span_of,
    vacuum_queue,
    window_ids,
)
from .judge import BudgetExhausted, Judge, JudgeUnavailable
from .options import ScoreOptions, ScoreRunReport, Tally
from .plan import Plans, ScorerSpec, TaskPlan
from .plugins import PluginError, add_failures_to_summary, broken_plugins, count_failure
from .scope import DB as _DB
from .scope import check_judge_is_not_primary, plan_scope
from .scorers.base import ScoreResult
from .scorers.correctness import ScoreContext

__all__ = ["ScoreOptions", "ScoreRunReport", "run_scoring", "score"]

log = logging.getLogger("shadowroute")

Progress = Callable[[int, int], None]
"""Called with (outputs done, outputs to do) after every batch."""

MAX_WORKERS = 8
"""Within the store's connection pool (5 + 5 overflow), leaving room for the run's own reads."""


_YIELD_EVERY = 200
"""Pairs scored between two turns given to the event loop (judge calls in flight)."""

_Meta = dict[str, dict[str, Any]]
"""Exchange id -> its metadata, for the scorers that use it (``ScorerSpec.uses_context``)."""

@dataclass
class _Cursor:
    """Where this process's workers are in one task type's queue (ordered by exchange id,
    then output id)."""

    after: tuple[str, str] = ("", "")
    done: bool = False
    lock: anyio.Lock = field(default_factory=anyio.Lock)


@dataclass(slots=True)
class _Window:
    """A window of queued outputs, and the span of their exchanges' times."""

    ids: list[str]
    span: Span


class _Run:
    def __init__(
        self,
        config: Config,
        store: Store,
        options: ScoreOptions,
        judge: Judge | None,
        progress: Progress | None,
    ) -> None:
        self.config = config
        self.store = store
        self.options = options
        self.judge = judge
        self.progress = progress
        self.report = ScoreRunReport()
        self.tally = Tally()
        self.total = 0
        self.claimed = 0
        self.done = 0
        self.dequeued = 0
        self.locking = store.backend == "postgresql"
        self._schema_checked: set[str] = set()

    # ---------------------------------------------------------------- work distribution

    def _take(self, plan: TaskPlan) -> int:
        size = self.options.batch_size
        if plan.judge is not None and self.judge is not None and not self.report.budget_exhausted:
            size = min(size, 4 * self.judge.settings.concurrency)
        if self.options.limit is not None and self.claimed >= self.options.limit:
            return 0
        return size

    async def run_task(self, plan: TaskPlan) -> None:
        cursor = _Cursor()
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(min(max(1, self.options.workers), MAX_WORKERS)):
                    tg.start_soon(self._worker, plan, cursor)
        except BaseExceptionGroup as group:
            leaf = raised_as_itself(group)  # a StoreError: the CLI's one line
            if leaf is not None:
                raise leaf from None
            raise

    async def _worker(self, plan: TaskPlan, cursor: _Cursor) -> None:
        while not cursor.done:
            if self.locking:
                # One transaction: the claim's row locks hold until its scores are committed.
                async with self.store.begin(**_DB) as conn:
                    async with cursor.lock:
                        window = await self._window(conn, plan, cursor)
                    ids, have, complete = await self._claim(conn, plan, window, lock=True)
                    pairs, metadata = await self._load(conn, plan, ids, have, window.span)
                    rows = await self._score(plan, pairs, have, metadata)
                    await self._write(conn, plan, cursor, pairs, rows,
                                      complete + _completed(plan, ids, have, rows))
            else:
                async with cursor.lock:
                    async with self.store.connect(**_DB) as conn:
                        window = await self._window(conn, plan, cursor)
                        ids, have, complete = await self._claim(conn, plan, window, lock=False)
                        pairs, metadata = await self._load(conn, plan, ids, have, window.span)
                rows = await self._score(plan, pairs, have, metadata)
                done = complete + _completed(plan, ids, have, rows)
                if rows or done:
                    async with self.store.begin(**_DB) as conn:
                        await self._write(conn, plan, cursor, pairs, rows, done)
            self._count(pairs, rows, len(ids))

    async def _window(self, conn: Any, plan: TaskPlan, cursor: _Cursor) -> _Window:
        """The task's next window of queued outputs (scored or not); moves the cursor."""
        take = self._take(plan)
        if cursor.done or take <= 0:
            cursor.done = True
            return _Window([], None)
        window = await window_ids(
            conn, plan.task, self.options.since, after=cursor.after, limit=take
        )
        if len(window) < take:
            cursor.done = True
        if window:
            cursor.after = window[-1][:2]
        return _Window([output_id for _, output_id, _ in window],
                       span_of(at for _, _, at in window))

    async def _write(self, conn: Any, plan: TaskPlan, cursor: _Cursor, pairs: list[Pair],
                     rows: list[ScoreRow], done: list[str]) -> None:
        """Store the batch's scores, move the task's rollup by what they change and take the
        outputs that now hold every score off the queue (:mod:`..store.queries.plans`). When
        the task's scorers changed under this run (another run recorded a new plan and queued
        everything again), the scores are stored (they are right at their versions) and the
        rest is left to the run with the new scorers; this run stops the task."""
        keys = plan.keys()
        if not await hold_plan(conn, plan.task, keys):
            await insert_scores(conn, rows)
            if not cursor.done:
                log.warning("the scorers of %s changed while this run scored it: its queue "
                            "is left to the run with the new scorers", plan.task)
            cursor.done = True
            return
        if rows:
            scored = {row.output_id for row in rows}
            by_route: dict[str, list[str]] = {}
            for pair in pairs:
                if pair.output_id in scored:
                    by_route.setdefault(pair.route, []).append(pair.exchange_id)
            before = await touched_counts(conn, plan.task, keys, by_route, lock=self.locking)
            await insert_scores(conn, rows)
            after = await touched_counts(conn, plan.task, keys, by_route, lock=False)
            await fold(conn, keys, before, after)
        await dequeue(conn, done)
        self.dequeued += len(done)

    async def _claim(
        self, conn: Any, plan: TaskPlan, window: _Window, *, lock: bool
    ) -> tuple[list[str], set[tuple[str, str]], list[str]]:
        """The window's outputs that lack a score (locked on Postgres), their scores, and
        the window's outputs that hold every score already."""
        if not window.ids:
            return [], set(), []
        keys = plan.keys()
        names = [name for name, _ in keys]
        have = await existing_scores(conn, window.ids, keys, span=window.span)
        ids = [i for i in window.ids if any((i, name) not in have for name in names)]
        complete = [i for i in window.ids if all((i, name) in have for name in names)]
        if self.options.limit is not None:
            ids = ids[: max(0, self.options.limit - self.claimed)]
        # Counted before the next await, so workers of this run never overshoot ``limit``
        # together; what the lock below does not get is given back.
        reserved = len(ids)
        self.claimed += reserved
        if lock and ids:
            ids = await lock_ids(conn, ids, span=window.span)
            # Read again under the lock: this sees every score another process committed
            # before it released these rows.
            have = await existing_scores(conn, ids, keys, span=window.span)
            ids = [i for i in ids if any((i, name) not in have for name in names)]
            self.claimed -= reserved - len(ids)
        return ids, have, complete

    async def _load(
        self, conn: Any, plan: TaskPlan, ids: list[str], have: set[tuple[str, str]],
        span: Span,
    ) -> tuple[list[Pair], _Meta]:
        """The pairs to score, and the metadata of their exchanges when a scorer of the plan
        needs it (``uses_context``) and some output still lacks that scorer's score."""
        if not ids:
            return [], {}
        needs_request = plan.judge is not None and any(
            (output_id, plan.judge.name) not in have for output_id in ids
        )
        pairs = await load_pairs(conn, ids, with_request=needs_request, span=span)
        # Candidates of one exchange side by side: scorers cache the last primary they saw.
        pairs.sort(key=lambda pair: pair.exchange_id)
        context_scorers = [spec.name for spec in plan.scorers if spec.uses_context]
        wanted = {pair.exchange_id for pair in pairs
                  if any((pair.output_id, name) not in have for name in context_scorers)}
        return pairs, await exchange_metadata(conn, sorted(wanted), span=span)

    def _count(self, pairs: list[Pair], rows: list[ScoreRow], claimed: int) -> None:
        self.report.outputs += len({row.output_id for row in rows})
        self.report.scores.update(row.scorer for row in rows)
        models = {pair.output_id: (pair.task_type, pair.model) for pair in pairs}
        for row in rows:
            task, model = models[row.output_id]
            self.tally.add(task, model, row.scorer, row.value, row.passed, row.cost_usd)
        self.done += claimed
        if self.progress is not None:
            self.progress(self.done, self.total)

    # ---------------------------------------------------------------- scoring

    async def _score(
        self, plan: TaskPlan, pairs: list[Pair], have: set[tuple[str, str]], metadata: _Meta
    ) -> list[ScoreRow]:
        rows: list[ScoreRow] = []
        to_judge: list[Pair] = []
        now = utcnow()
        for index, pair in enumerate(pairs):
            if index and index % _YIELD_EVERY == 0:
                await anyio.sleep(0)
            try:
                to_judge += self._score_pair(plan, pair, have, rows, now, metadata)
            except Exception:
                self.report.scorer_errors += 1
                log.exception("cannot score output %s", pair.output_id)
        if to_judge:
            async with anyio.create_task_group() as tg:
                for pair in to_judge:
                    tg.start_soon(self._judge_pair, plan, pair, rows)
        return rows

    def _score_pair(
        self,
        plan: TaskPlan,
        pair: Pair,
        have: set[tuple[str, str]],
        rows: list[ScoreRow],
        now: datetime,
        metadata: _Meta,
    ) -> list[Pair]:
        """Append the pair's missing deterministic scores (and its judge score when no call is
        needed) to ``rows``; returns ``[pair]`` when the judge must be asked."""
        judge = plan.judge
        judge_missing = judge is not None and (pair.output_id, judge.name) not in have
        # Under "needed", what the cheaper scorers say decides whether the judge is asked:
        # they run even when already stored (they are cheap; the judge is not).
        needed = judge_missing and judge is not None and judge.when == "needed"
        hard_failure: str | None = None
        hard_unknown = False
        decided: str | None = None
        for spec in plan.scorers:
            missing = (pair.output_id, spec.name) not in have
            if not (missing or (judge_missing and spec.hard) or needed):
                continue
            try:
                result = self._deterministic(spec, pair, metadata)
            except PluginError as exc:
                count_failure(self.report, spec, pair.task_type, pair.model, exc)
                hard_unknown = hard_unknown or spec.hard
                continue
            if spec.hard and result.passed is False:
                hard_failure = hard_failure or spec.name
            elif decided is None and result.passed is False:
                decided = f"{spec.name} failed"  # the pair fails whatever the judge says
            elif decided is None and result.passed and spec.name in _SAME_ANSWER:
                decided = f"{spec.name} equal"  # the primary's answer: the judge says "same"
            if missing:
                rows.append(_row(pair, spec.name, spec.version, result, now))
        if judge is None or not judge_missing or (hard_unknown and hard_failure is None):
            return []  # a hard plugin that raised may yet override the judge: next run
        if pair.error_kind is not None:
            result = _candidate_error(pair)
        elif hard_failure is not None:
            result = ScoreResult(
                0.0, False, {"verdict": "worse", "judged": False, "overridden_by": hard_failure}
            )
        elif pair.primary_output is None or pair.output is None:
            result = ScoreResult(None, None, {"skipped": "no primary output", "judged": False})
        elif needed and decided is not None and not hard_unknown:
            self.report.judge_skipped[decided] += 1
            result = ScoreResult(None, None, {"skipped": f"decided by {decided}",
                                              "judged": False})
        elif self.judge is None or self.report.budget_exhausted:
            return []  # left for the next run
        else:
            return [pair]
        rows.append(_row(pair, judge.name, judge.version, result, now))
        return []

    def _deterministic(self, spec: ScorerSpec, pair: Pair, metadata: _Meta) -> ScoreResult:
        if pair.error_kind is not None or pair.output is None:
            return _candidate_error(pair)
        if spec.uses_context:
            context = ScoreContext(pair.model, pair.primary_model, pair.task_type,
                                   metadata.get(pair.exchange_id) or {})
            result = spec.scorer.score(pair.primary_output, pair.output, context)  # type: ignore[call-arg]
        else:
            result = spec.scorer.score(pair.primary_output, pair.output)
        primary_valid = result.details.get("primary_valid") if spec.name == "schema" else None
        if primary_valid is not None and pair.exchange_id not in self._schema_checked:
            self._schema_checked.add(pair.exchange_id)
            self.report.primary_schema_checked[pair.task_type] += 1
            if primary_valid is False:
                self.report.primary_schema_failures[pair.task_type] += 1
        return result

    async def _judge_pair(self, plan: TaskPlan, pair: Pair, rows: list[ScoreRow]) -> None:
        assert self.judge is not None and plan.judge is not None  # checked by _score_pair
        if self.report.budget_exhausted:
            return
        messages = (pair.request or {}).get("messages") or []
        try:
            result = await self.judge.compare(
                plan.judge, messages, pair.primary_output or "", pair.output or "", task=plan.task
            )
        except BudgetExhausted:
            # No more judge calls in this run; the free, deterministic scorers carry on.
            self.report.budget_exhausted = True
            return
        except JudgeUnavailable as exc:
            self.report.judge_unavailable += 1
            log.debug("judge unavailable for %s: %s", pair.output_id, exc)
            return
        rows.append(_row(pair, plan.judge.name, plan.judge.version, result, utcnow()))


def _completed(
    plan: TaskPlan, ids: list[str], have: set[tuple[str, str]], rows: list[ScoreRow]
) -> list[str]:
    """Of ``ids``, the outputs that hold every score of the plan once ``rows`` are stored."""
    names = [name for name, _ in plan.keys()]
    written = {(row.output_id, row.scorer) for row in rows}
    return [i for i in ids if all((i, n) in have or (i, n) in written for n in names)]


_SAME_ANSWER = frozenset({"exact", "label", "extract"})
"""Scorers whose pass means the candidate gave the primary's own answer."""


def _candidate_error(pair: Pair) -> ScoreResult:
    kind = pair.error_kind or "no_output"
    return ScoreResult(0.0, False, {"candidate_error": kind})


def _row(pair: Pair, scorer: str, version: str, result: ScoreResult, now: datetime) -> ScoreRow:
    return ScoreRow(
        output_id=pair.output_id,
        scorer=scorer,
        version=version,
        value=result.value,
        passed=result.passed,
        details=result.details,
        cost_usd=result.cost_usd,
        created_at=now,
        exchange_created_at=pair.exchange_created_at,
    )


async def score(
    config: Config,
    store: Store,
    options: ScoreOptions = ScoreOptions(),
    *,
    judge_provider: Completer | None = None,
    progress: Progress | None = None,
) -> ScoreRunReport:
    """Score what lacks a score in ``store``; returns what was done. ``judge_provider``
    replaces the judge model's HTTP provider (tests)."""
    with store.errors(**_DB):  # an error outside the connections below too (OSError)
        return await _score(config, store, options, judge_provider, progress)


async def _score(
    config: Config,
    store: Store,
    options: ScoreOptions,
    judge_provider: Completer | None,
    progress: Progress | None,
) -> ScoreRunReport:
    started = time.monotonic()
    since = options.since
    await keep_ahead(store)  # Postgres: this month's partitions and the next ones
    scope = await plan_scope(config, store, options)
    plans = scope.plans
    judged = [task for task, plan in plans.items() if plan.judge is not None]
    judge = (
        Judge(config, provider=judge_provider, budget_usd=options.judge_budget_usd)
        if judged
        else None
    )
    try:
        if judge is not None:
            await check_judge_is_not_primary(store, judge, judged, config)
        run = _Run(config, store, options, judge, progress)
        run.report.plugin_failures = broken_plugins(plans.values())
        run.report.requeued.update(scope.requeued)
        run.report.rescanned = scope.rescanned
        async with store.connect(**_DB) as conn:
            for plan in plans.values():
                run.total += await count_queued(conn, plan.task, since)
        if options.limit is not None:
            run.total = min(run.total, options.limit)
        if progress is not None:
            progress(0, run.total)
        for plan in plans.values():
            if options.limit is not None and run.claimed >= options.limit:
                break
            await run.run_task(plan)
        report = run.report
        if run.dequeued and store.backend == "postgresql":
            # The rows taken off are dead until vacuumed; without this a run with nothing new
            # would read every one of them (seconds per million) wherever autovacuum lags.
            async with store.connect(**_DB) as conn:
                await vacuum_queue(await conn.execution_options(isolation_level="AUTOCOMMIT"))
        async with store.connect(**_DB) as conn:
            for plan in plans.values():
                report.left_unscored += await count_queued(conn, plan.task, since)
            report.stored = await has_outputs(conn, options.task, since)
        # The report's figures of the days this run (and the writers since the last run) changed.
        if options.report_days:
            known = Plans(config)
            known.update(plans)
            began = time.monotonic()
            days = await refresh_days(store, known.keys_of)
            report.report_days, report.report_days_raced = len(days.refreshed), days.raced
            report.report_days_seconds = time.monotonic() - began
        report.summary = run.tally.rows()
        add_failures_to_summary(report)
    finally:
        if judge is not None:
            await judge.aclose()
    if judge is not None:
        report.judge_calls = judge.calls
        report.judge_retries = judge.retries
        report.judge_flips = judge.flips
        report.judge_injections = judge.injections
        report.judge_cost_usd = judge.budget.spent_usd
        report.judge_budget_usd = judge.budget.cap_usd
    report.seconds = time.monotonic() - started
    return report


async def run_scoring(
    config: Config,
    options: ScoreOptions = ScoreOptions(),
    *,
    judge_provider: Completer | None = None,
    progress: Progress | None = None,
) -> ScoreRunReport:
    """Open ``config.database_url`` and :func:`score` it."""
    async with await Store.open(config.database_url) as store:
        return await score(config, store, options, judge_provider=judge_provider, progress=progress)
