"""``shadowroute replay``: run candidates offline over stored (or imported) exchanges.

Every call goes through the normal :class:`~shadowroute.mirror.policy.Mirror` (per-model concurrency
limits, retries with backoff, circuit breaker, the task's daily budget; an OpenTelemetry span
with role ``offline_replay`` when the ``otel`` extra is installed), and each answer is
stored as an ordinary candidate output of its exchange, so ``shadowroute score`` and
``shadowroute report`` treat it like a mirrored one.

Resumable: only (exchange, candidate) pairs without a stored output are called, walking the
task's exchanges in id order (keyset pagination); outputs are written in batches as they come
and, when the run is interrupted (Ctrl-C), what has arrived is written before it stops. So a
re-run continues where the last one stopped and never calls a pair whose answer was stored.
A failed call is stored too (as the mirror does: the failure is part of the observation), and
is not retried by a later run; pairs skipped by policy (budget, open circuit) are left to do.

The candidate name ``primary@replay`` calls each exchange's own primary model again (it must be
declared under ``[models]``) and stores the answer as the pipeline's noise-floor replays are
stored: imported traffic gets a noise floor for the report that way.

``[redaction]`` applies to each output (its answer and error text) before it is written; an
output whose redaction fails (a hook raised) is counted in ``redaction_errors`` and not stored,
so its pair stays to do.

Budgets: before each call its cost is estimated from the exchange's tokens at the model's
prices and reserved, so calls in flight cannot together overshoot ``--budget`` (or the task's
``daily_budget_usd``) by more than the estimates' error.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from .. import telemetry
from ..config import Config, TaskConfig
from ..errors import ConfigError, raised_as_itself
from ..mirror.policy import Completer, Mirror
from ..mirror.wiring import wire_mirror
from ..records import NOISE_FLOOR_MODEL, CandidateOutputRecord, ExchangeRecord
from ..stats import Stats
from ..store import Store
from ..store.queries import replay as q
from ..store.redaction import Redactor, redact_or_drop

__all__ = ["PAGE_ROWS", "Replay", "ReplayReport", "replay"]

log = logging.getLogger("shadowroute")

PAGE_ROWS = 200
"""Exchanges read from the database at a time."""

Progress = Callable[[int, int], None]
"""Called with (pairs done, pairs to do) as the run goes."""


@dataclass
class ReplayReport:
    task: str
    candidates: tuple[str, ...]
    exchanges: int = 0
    """Exchanges of the task in scope (``--since``)."""
    to_do: int = 0
    """(exchange, candidate) pairs without an output when the run started."""
    already_done: int = 0
    """Pairs skipped because an output was stored before (an earlier run or the mirror)."""
    stored: Counter[str] = field(default_factory=Counter)
    """Outputs stored per candidate (answers and failures)."""
    errors: Counter[str] = field(default_factory=Counter)
    """Failed calls by kind (stored as failures, not retried by a later run)."""
    calls: int = 0
    """HTTP calls made, retries included."""
    cost_usd: float = 0.0
    skipped_budget: int = 0
    skipped_circuit_open: int = 0
    no_primary_model: int = 0
    """``primary@replay`` pairs whose primary is not declared under ``[models]`` (left to do)."""
    budget_reached: str | None = None
    """Which cap stopped the run: ``--budget`` or the task's ``daily_budget_usd``."""
    left: int | None = None
    """Pairs in scope still without an output at the end (``None`` when interrupted)."""
    interrupted: bool = False
    redactions: Counter[str] = field(default_factory=Counter)
    """Strings replaced in outputs before storage, by redactor name."""
    redaction_errors: int = 0
    """Outputs not stored because their redaction failed (never stored unredacted)."""
    seconds: float = 0.0

    @property
    def outputs(self) -> int:
        return sum(self.stored.values())

    def lines(self) -> list[str]:
        """The run in a few plain sentences, for the CLI and logs."""
        per_model = ", ".join(f"{m}: {self.stored[m]:,}" for m in self.candidates)
        out = [f"replayed {self.task}: stored {self.outputs:,} outputs ({per_model}) in "
               f"{self.seconds:.1f}s, {self.calls:,} calls, ${self.cost_usd:,.4f}"]
        out.append(f"{self.exchanges:,} exchanges in scope; {self.already_done:,} pairs already "
                   "had an output (skipped)")
        if self.errors:
            kinds = ", ".join(f"{kind}: {n:,}" for kind, n in sorted(self.errors.items()))
            out.append(f"failed calls (stored as failures): {kinds}")
        if self.budget_reached:
            out.append(f"budget reached ({self.budget_reached}): stopped calling")
        if self.skipped_budget or self.skipped_circuit_open:
            out.append(f"skipped by policy: {self.skipped_budget:,} over budget, "
                       f"{self.skipped_circuit_open:,} with the circuit open (left to do)")
        if self.no_primary_model:
            out.append(f"{self.no_primary_model:,} {NOISE_FLOOR_MODEL} calls not made: the "
                       "exchange's primary model is not declared under [models]")
        if self.redaction_errors:
            out.append(f"{self.redaction_errors:,} outputs not stored: redaction failed (see "
                       "the log; fix the [redaction] hook and run again)")
        if self.interrupted:
            out.append("interrupted: what arrived is stored; run the same command again to "
                       "continue")
        elif self.left:
            out.append(f"{self.left:,} pairs still lack an output: run the same command again "
                       "to continue")
        return out


class Replay:
    """One replay run; :attr:`report` is up to date even when :meth:`run` is interrupted."""

    def __init__(
        self,
        config: Config,
        store: Store,
        task: str,
        candidates: Sequence[str],
        *,
        limit: int | None = None,
        since: datetime | None = None,
        budget_usd: float | None = None,
        concurrency: int = 8,
        providers: Mapping[str, Completer] | None = None,
        progress: Progress | None = None,
        batch_size: int | None = None,
        flush_interval_s: float | None = None,
    ) -> None:
        names = tuple(dict.fromkeys(c.strip() for c in candidates if c.strip()))
        if not names:
            raise ConfigError("name at least one candidate model", key="--candidates")
        for name in names:
            if name not in config.models and name != NOISE_FLOOR_MODEL:
                known = ", ".join(sorted(config.models)) or "none declared"
                raise ConfigError(f"unknown model {name!r}: declare it under [models] in "
                                  f"{config.source} (models: {known})", key="--candidates")
        if providers is not None:
            missing = [n for n in names if n not in providers and n != NOISE_FLOOR_MODEL]
            if missing:
                raise ConfigError(f"no provider given for {', '.join(missing)}",
                                  key="--candidates")
        if limit is not None and limit < 1:
            raise ConfigError("must be at least 1", key="--limit")
        if budget_usd is not None and budget_usd < 0:
            raise ConfigError("must not be negative", key="--budget")
        self.config = config
        self.store = store
        self.task: TaskConfig = config.task(task)
        self.candidates = names
        self.limit = limit
        self.since = since
        self.budget_usd = budget_usd
        self.concurrency = max(1, concurrency)
        self._given = providers
        self.progress = progress
        self.batch_size = batch_size or config.store.batch_size
        self.flush_interval_s = flush_interval_s or config.store.flush_interval_s
        self.report = ReplayReport(task=task, candidates=names)
        self.stats = Stats()
        self.redactor = Redactor.from_config(config.redaction)
        self._spent = 0.0
        self._reserved = 0.0
        self._done = 0
        self._total = 0
        self._stop = False

    # ------------------------------------------------------------------ the run

    async def run(self) -> ReplayReport:
        started = time.monotonic()
        report = self.report
        await self._count_scope()
        needed = set(self.candidates) - {NOISE_FLOOR_MODEL}
        if NOISE_FLOOR_MODEL in self.candidates:
            needed |= await self._primaries()
        wiring = wire_mirror(
            self.config, sorted(needed), providers=self._given, stats=self.stats,
            on_error=lambda stage, exc: log.warning("shadowroute replay %s error: %s: %s",
                                                    stage, type(exc).__name__, exc),
        )
        mirror = wiring.mirror
        try:
            await self._load_daily_spend(mirror)
            if self.progress is not None:
                self.progress(0, self._total)
            await self._pipeline(mirror)
            report.left = await self._missing_pairs()
        except BaseException:
            report.interrupted = True
            raise
        finally:
            self._collect()
            report.seconds = time.monotonic() - started
            with anyio.CancelScope(shield=True):
                await wiring.aclose()
        return report

    async def _pipeline(self, mirror: Mirror) -> None:
        pairs_send, pairs_receive = anyio.create_memory_object_stream[
            tuple[ExchangeRecord, str]](self.concurrency)
        out_send, out_receive = anyio.create_memory_object_stream[
            tuple[ExchangeRecord, CandidateOutputRecord]](self.batch_size)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._write, out_receive)
                async with out_send, pairs_receive:
                    for _ in range(self.concurrency):
                        tg.start_soon(self._work, mirror, pairs_receive.clone(), out_send.clone())
                tg.start_soon(self._produce, mirror, pairs_send)
        except BaseExceptionGroup as group:
            # A StoreError (or Ctrl-C) from one task: raise it as itself, for the CLI's one line.
            leaf = raised_as_itself(group)
            if leaf is not None:
                raise leaf from None
            raise

    def _estimate(self, exchange: ExchangeRecord, model: str) -> float:
        """What calling ``model`` on ``exchange`` should cost: its tokens at the model's prices."""
        found = self.config.models.get(model)
        if found is None:
            return 0.0
        return found.cost(exchange.input_tokens or 0, exchange.output_tokens or 0)

    def _over_budget(self, mirror: Mirror, estimate: float = 0.0) -> bool:
        """Whether a call estimated at ``estimate`` would go over a cap (with the calls in
        flight reserved); records which cap."""
        committed = self._reserved + estimate
        cap = self.budget_usd
        if cap is not None and (self._spent >= cap or self._spent + committed > cap):
            self.report.budget_reached = f"--budget ${cap:,.4g} for this run"
            return True
        daily = mirror.budget(self.task)
        cap = daily.cap_usd
        today = daily.spent.get(daily.today(), 0.0)
        if cap is not None and (not daily.allows() or today + committed > cap):
            self.report.budget_reached = (f"tasks.{self.task.name}.daily_budget_usd "
                                          f"${cap:,.4g} for today")
            return True
        return False

    def _model_for(self, exchange: ExchangeRecord, label: str) -> str | None:
        if label != NOISE_FLOOR_MODEL:
            return label
        found = self.config.model_named(exchange.primary_model)
        return found.name if found is not None else None

    async def _produce(self, mirror: Mirror, send: ObjectSendStream[tuple[ExchangeRecord, str]]
                       ) -> None:
        async with send:
            after, taken = "", 0
            while not self._stop:
                page = await self._page(after)
                if not page:
                    return
                for exchange, missing in page:
                    after = exchange.id
                    if self.limit is not None and taken >= self.limit:
                        return
                    taken += 1
                    for label in missing:
                        if self._stop or self._over_budget(mirror):
                            self._stop = True
                            return
                        await send.send((exchange, label))

    async def _work(
        self,
        mirror: Mirror,
        receive: ObjectReceiveStream[tuple[ExchangeRecord, str]],
        send: ObjectSendStream[tuple[ExchangeRecord, CandidateOutputRecord]],
    ) -> None:
        async with receive, send:
            async for exchange, label in receive:
                model = self._model_for(exchange, label)
                if model is None or model not in mirror.circuits:
                    self.report.no_primary_model += 1
                    self._advance()
                    continue
                estimate = self._estimate(exchange, model)
                if self._stop or self._over_budget(mirror, estimate):
                    self._stop = True
                    self.report.skipped_budget += 1
                    self._advance()
                    continue
                self._reserved += estimate
                try:
                    record = await mirror.call(self.task, model, exchange.request, exchange.id,
                                               label=label, role=telemetry.ROLE_OFFLINE_REPLAY)
                finally:
                    self._reserved -= estimate
                if record is None:
                    self._advance()
                    continue
                self._spent += record.cost_usd or 0.0
                if not self._redact(record):
                    self._advance()
                    continue
                try:  # without a checkpoint when there is room: an answer had is not dropped
                    send.send_nowait((exchange, record))
                except anyio.WouldBlock:
                    await send.send((exchange, record))

    def _redact(self, output: CandidateOutputRecord) -> bool:
        """Redact an output for storage; when that fails it is not stored (counted, logged
        once)."""
        if redact_or_drop(self.redactor, output, self.report,
                          lambda exc: log.warning("shadowroute replay: %s", exc)):
            return True
        self.stats.redaction_errors += 1
        return False

    async def _write(
        self, receive: ObjectReceiveStream[tuple[ExchangeRecord, CandidateOutputRecord]]
    ) -> None:
        pending: list[tuple[ExchangeRecord, CandidateOutputRecord]] = []
        first_at = 0.0
        async with receive:
            try:
                while True:
                    item = None
                    with anyio.move_on_after(self.flush_interval_s if pending else math.inf):
                        try:
                            item = await receive.receive()
                        except anyio.EndOfStream:
                            break
                    if item is not None:
                        if not pending:
                            first_at = time.monotonic()
                        pending.append(item)
                    full = len(pending) >= self.batch_size
                    due = pending and time.monotonic() - first_at >= self.flush_interval_s
                    if full or due:
                        batch, pending = pending, []
                        await self._flush(batch)
            finally:
                # Finished or interrupted: store what arrived, buffered answers included, so
                # that a re-run does not call those pairs again.
                while True:
                    try:
                        pending.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                if pending:
                    with anyio.CancelScope(shield=True):
                        await self._flush(pending)

    async def _flush(self, batch: list[tuple[ExchangeRecord, CandidateOutputRecord]]) -> None:
        grouped: dict[str, ExchangeRecord] = {}
        for exchange, output in batch:
            record = grouped.get(exchange.id)
            if record is None:
                record = grouped[exchange.id] = dataclasses.replace(exchange, outputs=[])
            record.outputs.append(output)
        # The exchange rows exist already (ON CONFLICT DO NOTHING): only the outputs are added.
        await self.store.write(list(grouped.values()))
        for _, output in batch:
            self.report.stored[output.model] += 1
            if output.error_kind is not None:
                self.report.errors[output.error_kind] += 1
            else:
                self.report.cost_usd += output.cost_usd or 0.0
        self._advance(len(batch))

    def _advance(self, n: int = 1) -> None:
        self._done += n
        if self.progress is not None:
            self.progress(self._done, self._total)

    def _collect(self) -> None:
        report = self.report
        report.calls = self.stats.candidate_calls
        report.skipped_budget += self.stats.skipped_budget
        report.skipped_circuit_open = self.stats.skipped_circuit_open
        self.stats.skipped_budget = 0

    # ------------------------------------------------------------------ queries

    async def _pairs(self) -> tuple[int, int]:
        """(exchanges in scope, pairs of them with a stored output)."""
        return await q.exchanges_and_stored_pairs(self.store, self.task.name, self.candidates,
                                                  self.since)

    async def _count_scope(self) -> None:
        report = self.report
        exchanges, done = await self._pairs()
        if exchanges == 0 and not await q.stored_exchange_count(self.store, self.task.name):
            types = await q.stored_task_types(self.store, limit=20)
            known = ", ".join(types) or "none: import or capture some first"
            raise ConfigError(f"no exchanges of task type {self.task.name!r} are stored "
                              f"(stored task types: {known})", key="--task")
        report.exchanges, report.already_done = exchanges, done
        report.to_do = self._total = exchanges * len(self.candidates) - done
        if self.limit is not None:
            self._total = min(self._total, self.limit * len(self.candidates))

    async def _primaries(self) -> set[str]:
        """The declared models that are primaries of exchanges in scope (for primary@replay)."""
        names = await q.primary_models_in_scope(self.store, self.task.name, self.since)
        found = (self.config.model_named(name) for name in names)
        return {model.name for model in found if model is not None}

    async def _missing_pairs(self) -> int:
        exchanges, done = await self._pairs()
        return exchanges * len(self.candidates) - done

    async def _load_daily_spend(self, mirror: Mirror) -> None:
        """Today's candidate spend already stored for the task counts against its daily cap."""
        if math.isinf(self.task.daily_budget_usd):
            return
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        spent = await self.store.spend_since(midnight)
        mirror.budget(self.task).add(spent.get(self.task.name, 0.0))

    async def _page(self, after: str) -> list[tuple[ExchangeRecord, list[str]]]:
        """The next exchanges (by id) lacking an output from at least one candidate, each with
        the candidates it lacks."""
        return await q.exchanges_lacking_outputs(self.store, self.task.name, self.candidates,
                                                 self.since, after=after, limit=PAGE_ROWS)


async def replay(
    config: Config,
    store: Store,
    task: str,
    candidates: Sequence[str],
    *,
    limit: int | None = None,
    since: datetime | None = None,
    budget_usd: float | None = None,
    concurrency: int = 8,
    providers: Mapping[str, Completer] | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Call each of ``candidates`` (``[models]`` keys) on the stored exchanges of ``task`` that
    lack its output, and store the outputs; see the module docstring.

    ``limit`` caps the exchanges visited, ``since`` the exchanges' age, ``budget_usd`` this run's
    candidate spend (the task's ``daily_budget_usd`` applies too). ``providers`` replaces the
    HTTP providers built from the config (tests). Raises :class:`ConfigError` for an unknown
    candidate or a task type with no stored exchanges, :class:`StoreError` when the database
    cannot be read or written.
    """
    run = Replay(config, store, task, candidates, limit=limit, since=since, budget_usd=budget_usd,
                 concurrency=concurrency, providers=providers, progress=progress)
    return await run.run()
