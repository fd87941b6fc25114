"""Calling candidates safely: concurrency limit, retries with backoff, circuit breaker, budget.

:class:`Mirror` turns one (task, candidate, request) into a :class:`CandidateOutputRecord`: the
answer, or the failure as part of the observation (GitHub Scientist style). It returns ``None``
when policy skipped the call (budget spent, circuit open); those skips are counted in stats.
Each call that is made (retries included) is one OpenTelemetry span when the ``otel`` extra is
installed (:mod:`shadowroute.telemetry`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from .. import telemetry
from ..config import MirrorConfig, TaskConfig
from ..errors import ProviderError
from ..records import NOISE_FLOOR_MODEL, CandidateOutputRecord, Completion, ExchangeRecord
from ..stats import Stats

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext

    from ..pipeline.rates import Share

__all__ = ["CircuitBreaker", "DailyBudget", "Mirror", "Completer"]

log = logging.getLogger("shadowroute")


class _OpenedWhileWaiting(Exception):
    """The circuit opened while this call waited for a concurrency slot."""


class Completer(Protocol):
    """What the mirror needs from a provider (see :class:`shadowroute.mirror.provider.Provider`)."""

    async def complete(self, request: dict[str, Any]) -> Completion: ...


@dataclass
class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; after ``reset_s`` lets one trial through
    (half-open): its success closes the circuit, its failure opens it again."""

    failures: int
    reset_s: float
    clock: Callable[[], float] = time.monotonic
    consecutive: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False
    name: str = "candidate"
    """The model it guards, for the log line when it opens."""

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.reset_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self.trial_in_flight:
            self.trial_in_flight = True
            return True
        return False

    def record(self, ok: bool, error: BaseException | None = None) -> None:
        """One call's outcome; ``error`` (the failure) is named in the log when it opens."""
        self.trial_in_flight = False
        if ok:
            if self.opened_at is not None:
                log.warning("shadowroute: circuit for %r closed: it answered again", self.name)
            self.consecutive = 0
            self.opened_at = None
            return
        self.consecutive += 1
        if self.opened_at is not None or self.consecutive >= self.failures:
            if self.opened_at is None:
                log.warning(
                    "shadowroute: circuit for %r opened after %d consecutive failures (last: "
                    "%s); its calls are skipped for %gs, then one is tried",
                    self.name, self.consecutive, error if error is not None else "unknown",
                    self.reset_s,
                )
            self.opened_at = self.clock()


@dataclass
class DailyBudget:
    """Candidate spend of one task type per UTC day, against an optional cap."""

    cap_usd: float | None
    today: Callable[[], date] = lambda: datetime.now(UTC).date()
    spent: dict[date, float] = field(default_factory=dict)

    def allows(self) -> bool:
        return (self.cap_usd is None or math.isinf(self.cap_usd)
                or self.spent.get(self.today(), 0.0) < self.cap_usd)

    def add(self, cost_usd: float, day: date | None = None) -> None:
        day = day or self.today()
        self.spent[day] = self.spent.get(day, 0.0) + cost_usd


class Mirror:
    """Calls candidates with the resilience policy from ``[mirror]`` and each model's settings."""

    def __init__(
        self,
        providers: Mapping[str, Completer],
        *,
        settings: MirrorConfig,
        limits: Mapping[str, tuple[int, int]],
        stats: Stats,
        on_error: Callable[[str, BaseException], None],
        clock: Callable[[], float] = time.monotonic,
        targets: Mapping[str, telemetry.Target] | None = None,
    ) -> None:
        """``limits`` maps each model name to (max_concurrency, max_retries); ``targets`` how
        each model's spans name it (see :func:`shadowroute.telemetry.target`)."""
        self._providers = providers
        self._targets = dict(targets or {})
        self._settings = settings
        self._stats = stats
        self._on_error = on_error
        self._limiters = {name: anyio.CapacityLimiter(conc) for name, (conc, _) in limits.items()}
        self._retries = {name: retries for name, (_, retries) in limits.items()}
        self.circuits = {
            name: CircuitBreaker(settings.circuit_failures, settings.circuit_reset_s, clock,
                                 name=name)
            for name in providers
        }
        self.budgets: dict[str, DailyBudget] = {}
        self.shares: dict[str, dict[str, Share]] = {}
        """Task -> candidate -> the share of sampled calls it is called on (see :meth:`share`)."""
        self._seed: int | None = None

    def share(self, shares: dict[str, dict[str, Share]], seed: int | None) -> None:
        """Call each listed candidate (task -> model -> :class:`~shadowroute.pipeline.rates.Share`)
        on its ``rate`` of its task's exchanges with the primary it names, drawn independently
        of the request (by the exchange id with a ``seed``)."""
        self.shares, self._seed = shares, seed

    def _rests(self, task: str, model: str, exchange: ExchangeRecord) -> bool:
        """``model`` has a share for ``task`` against this exchange's primary and sits this
        exchange out (counted by why)."""
        share = self.shares.get(task, {}).get(model)
        if share is None or share.primary != exchange.primary_model:
            return False
        if share.rate <= 0.0:
            keep = False
        elif self._seed is None:
            keep = random.random() < share.rate
        else:
            digest = hashlib.blake2b(f"{exchange.id}\0{model}".encode(), digest_size=8,
                                     key=str(self._seed).encode()).digest()
            keep = int.from_bytes(digest, "big") / 2**64 < share.rate
        if not keep:
            name = f"skipped_{share.why}"
            setattr(self._stats, name, getattr(self._stats, name) + 1)
        return not keep

    def budget(self, task: TaskConfig) -> DailyBudget:
        found = self.budgets.get(task.name)
        if found is None:
            found = self.budgets[task.name] = DailyBudget(task.daily_budget_usd)
        return found

    async def call(
        self,
        task: TaskConfig,
        model: str,
        request: dict[str, Any],
        exchange_id: str,
        *,
        label: str | None = None,
        role: str | None = None,
        origin: SpanContext | None = None,
        span_task: str | None = None,
    ) -> CandidateOutputRecord | None:
        """Call ``model`` once (with retries); the record is stored under ``label`` (default:
        the model's name), e.g. ``primary@replay`` for a noise-floor call of the primary.
        For its span: ``role`` (default ``replay`` for ``primary@replay``, else ``candidate``),
        ``origin`` the primary call's span context to link, ``span_task`` the task type when it
        is not ``task`` (the judge calls under its own)."""
        budget = self.budget(task)
        if not budget.allows():
            self._stats.skipped_budget += 1
            return None
        circuit = self.circuits[model]
        if not circuit.allow():
            self._stats.skipped_circuit_open += 1
            return None
        trial = circuit.opened_at is not None  # this call is the half-open trial
        record = CandidateOutputRecord(exchange_id=exchange_id, model=label or model, attempts=0)
        span = telemetry.model_span(
            self._targets.get(model) or telemetry.target(model, None), request,
            task=span_task or task.name, name=record.model, exchange_id=exchange_id, origin=origin,
            role=role or (telemetry.ROLE_REPLAY if label == NOISE_FLOOR_MODEL
                          else telemetry.ROLE_CANDIDATE),
            stats=self._stats,
        )
        began = time.perf_counter()
        with span:
            try:
                completion = await self._call_with_retries(model, request, record, circuit,
                                                           trial)
            except _OpenedWhileWaiting:
                span.skipped("circuit_open")
                self._stats.skipped_circuit_open += 1
                return None
            except ProviderError as exc:
                span.failed(exc.kind, str(exc), record.attempts)
                circuit.record(False, exc)
                self._stats.candidate_errors[exc.kind] += 1
                self._stats.model_result(model, exc.kind, time.perf_counter() - began, None)
                record.error_kind, record.error = exc.kind, str(exc)[:1000]
                return record
            except Exception as exc:  # a bug, not a candidate failure: keep it visible
                span.failed("internal", f"{type(exc).__name__}: {exc}", record.attempts)
                circuit.record(False, exc)
                self._stats.candidate_errors["internal"] += 1
                self._stats.model_result(model, "internal", time.perf_counter() - began, None)
                self._on_error("mirror", exc)
                record.error_kind = "internal"
                record.error = f"{type(exc).__name__}: {exc}"[:1000]
                return record
            span.succeeded(completion, record.attempts, completion.cost_usd)
        self._stats.model_result(model, None, time.perf_counter() - began, completion.cost_usd)
        circuit.record(True)
        budget.add(completion.cost_usd or 0.0)  # unknown usage: nothing to count
        record.output = completion.text
        record.not_carried = completion.not_carried
        record.finish_reason = completion.finish_reason
        record.input_tokens = completion.input_tokens
        record.output_tokens = completion.output_tokens
        record.latency_ms = completion.latency_ms
        record.cost_usd = completion.cost_usd
        return record

    async def answer(
        self,
        task: TaskConfig,
        exchange: ExchangeRecord,
        *,
        replay: str | None = None,
        origin: SpanContext | None = None,
    ) -> None:
        """Call every candidate of ``task`` concurrently; their records join the exchange.
        ``replay`` names the primary's model to call once more, stored as ``primary@replay``;
        ``origin`` is the primary call's span context (see :meth:`call`)."""

        async def one(model: str, label: str | None = None) -> None:
            output = await self.call(task, model, exchange.request, exchange.id, label=label,
                                     origin=origin)
            if output is not None:
                exchange.outputs.append(output)

        async with anyio.create_task_group() as tg:
            for model in task.candidates:
                if not self._rests(task.name, model, exchange):
                    tg.start_soon(one, model)
            if replay is not None:
                self._stats.primary_replays += 1
                tg.start_soon(one, replay, NOISE_FLOOR_MODEL)

    async def _call_with_retries(
        self,
        model: str,
        request: dict[str, Any],
        record: CandidateOutputRecord,
        circuit: CircuitBreaker,
        trial: bool,
    ) -> Completion:
        provider = self._providers[model]
        limiter = self._limiters[model]
        max_attempts = 1 + self._retries.get(model, 0)
        while True:
            try:
                async with limiter:
                    # Calls queued for a slot while the circuit opened must not go out: against
                    # a hanging model each would hold a worker for a whole timeout.
                    if circuit.opened_at is not None and not trial:
                        raise _OpenedWhileWaiting
                    record.attempts += 1
                    self._stats.candidate_calls += 1
                    return await provider.complete(request)
            except ProviderError as exc:
                if not exc.retryable or record.attempts >= max_attempts:
                    raise
                delay = self._delay(record.attempts, exc)
                if delay is None:
                    raise
                await anyio.sleep(delay)

    def _delay(self, attempt: int, exc: ProviderError) -> float | None:
        """Seconds to wait before the next attempt; ``None`` to give up now."""
        cap = self._settings.retry_backoff_max_s
        if exc.retry_after is not None:
            # Honour the provider; a wait longer than our cap is not worth a worker.
            return exc.retry_after if exc.retry_after <= cap else None
        backoff = self._settings.retry_backoff_s * 2 ** (attempt - 1)
        return random.uniform(0, min(cap, backoff))  # full jitter
