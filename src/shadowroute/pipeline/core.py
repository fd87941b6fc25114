"""``Shadow``: owns the queue, the mirror workers and the batch writer; ``shadow()`` feeds it.

The request path does three things: run the primary call, decide sampling, ``send_nowait`` a
:class:`Capture` into a bounded stream (drop and count when full). Everything else — parsing,
candidate calls, storage — runs in background tasks and can never delay or break the caller.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from typing import Any, TypeVar

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream, TaskGroup

from ..capture.calls import Api, is_sampled, request_key, snapshot_request
from ..capture.capture import Capture
from ..capture.remote import Forwarder
from ..config import Config, TaskConfig, load_config
from ..errors import StoreError
from ..mirror.policy import Completer, Mirror
from ..mirror.provider import Provider
from ..records import (
    NOISE_FLOOR_MODEL,
    ROUTE_REVERSE,
    CandidateOutputRecord,
    ExchangeRecord,
    TrafficRecord,
)
from ..stats import Stats
from ..store import BatchWriter, Spool, Store
from ..store.redaction import Redactor

__all__ = ["Shadow", "ShutdownReport", "active_shadow", "shadow"]

log = logging.getLogger("shadowroute")
T = TypeVar("T")
QUEUE_FULL_LOG_INTERVAL_S = 60.0
ErrorHook = Callable[[str, BaseException], None]

_active: list[Shadow] = []
"""Shadows entered with ``async with``, newest last; module-level :func:`shadow` uses the last."""


def active_shadow() -> Shadow | None:
    return _active[-1] if _active else None


def _log_error(stage: str, exc: BaseException) -> None:
    log.warning("shadowroute %s error: %s: %s", stage, type(exc).__name__, exc)


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    drained: int
    """Captures that were waiting or in flight at shutdown and were mirrored and written."""
    dropped: int
    """Captures given up because the deadline passed (their exchange is still written when the
    primary answer was known; see ``Stats.dropped_shutdown``)."""
    spooled: int
    """Exchanges waiting in the spool for the database."""
    seconds: float
    lost: int = 0
    """Accepted captures neither stored, spooled nor discarded by a counted policy (see
    ``Stats.ledger``); anything but 0 is a bug or a failed disk."""

    def __str__(self) -> str:
        return (
            f"shadowroute stopped in {self.seconds:.2f}s: drained {self.drained}, "
            f"dropped {self.dropped}, spooled {self.spooled}, lost {self.lost}"
        )


class Shadow:
    """Mirrors sampled production calls to candidate models and stores the pairs.

    Use as ``async with Shadow.from_config("shadowroute.toml") as sh:`` and call
    ``await sh.shadow(task=..., request=..., call=...)`` (or the module-level :func:`shadow`).
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        providers: Mapping[str, Completer] | None = None,
        on_error: ErrorHook | None = None,
    ) -> None:
        self.config = config or load_config()
        self.stats = Stats()
        self.redactor = Redactor.from_config(self.config.redaction)
        """Applied to every exchange before it goes to the writer (see :mod:`.redaction`)."""
        self._redaction_warned = False
        self._on_error_hook = on_error or _log_error
        self._own_providers = providers is None
        self._providers: Mapping[str, Completer] = (
            providers
            if providers is not None
            else {}
            if self.config.remote  # the sidecar calls the candidates
            else {name: Provider(model) for name, model in self.config.models.items()}
        )
        models = self.config.models
        self.mirror = Mirror(
            self._providers,
            settings=self.config.mirror,
            limits={
                name: (models[name].max_concurrency, models[name].max_retries)
                if name in models
                else (8, 2)
                for name in self._providers
            },
            stats=self.stats,
            on_error=self._on_error,
        )
        store_cfg = self.config.store
        self.spool = Spool(store_cfg.spool_dir)
        self.writer = BatchWriter(
            None,
            self.spool,
            batch_size=store_cfg.batch_size,
            flush_interval_s=store_cfg.flush_interval_s,
            retry_interval_s=store_cfg.retry_interval_s,
            stats=self.stats,
            on_error=self._on_error,
        )
        self._send: ObjectSendStream[Capture] | None = None
        self._receive: ObjectReceiveStream[Capture] | None = None
        self._task_group: TaskGroup | None = None
        self._store: Store | None = None
        self._in_flight: set[anyio.CancelScope] = set()
        self._traffic: dict[tuple[str, str], list[int]] = {}
        self._replay_warned: set[str] = set()
        self._started = False
        self._queue_full_logged = -math.inf
        self.shutdown_report: ShutdownReport | None = None

    @classmethod
    def from_config(cls, path: str | PathLike[str] | None = None, **kwargs: Any) -> Shadow:
        return cls(load_config(path), **kwargs)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Shadow:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the store (or fall back to the spool), start the workers."""
        if self._started:
            raise RuntimeError("this Shadow is already running")
        self._started = True
        self._send, self._receive = anyio.create_memory_object_stream[Capture](
            self.config.mirror.queue_size
        )
        write_send, write_receive = anyio.create_memory_object_stream[ExchangeRecord](
            self.config.store.batch_size
        )
        self._workers_done = anyio.Event()
        self._writer_done = anyio.Event()
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        if self.config.remote:
            write_send.close()
            write_receive.close()
            self._writer_done.set()
            self._task_group.start_soon(self._run_forwarder, self.config.remote)
        else:
            if not await self._open_store():
                self._task_group.start_soon(self._reconnect_store)
            self._task_group.start_soon(self._run_writer, write_receive)
            self._task_group.start_soon(self._run_workers, write_send)
            self._task_group.start_soon(self._tick_traffic)
        _active.append(self)

    async def _run_forwarder(self, url: str) -> None:
        """Remote mode: captures go to the sidecar instead of local workers and storage."""
        assert self._receive is not None
        forwarder = Forwarder(
            url,
            stats=self.stats,
            on_error=self._on_error,
            flush_interval_s=self.config.store.flush_interval_s,
        )
        with anyio.CancelScope() as scope:  # cancelled only past the shutdown deadline
            self._in_flight.add(scope)
            await forwarder.run(self._receive.clone())
        self._workers_done.set()

    async def _open_store(self) -> bool:
        """One attempt to open (and for SQLite migrate) the database. Shielded: an open
        cancelled half-way could leave a driver thread behind; the drivers' own connect
        timeouts bound it."""
        with anyio.CancelScope(shield=True):
            try:
                store = await Store.open(self.config.database_url)
            except StoreError as exc:
                self.stats.store_errors += 1
                self._on_error("store", exc)
                return False
            self._store = self.writer.store = store
            await self._load_budgets(store)
        return True

    async def _reconnect_store(self) -> None:
        """While the database is unreachable the spool takes the data; keep trying to open it."""
        while not await self._open_store():
            await anyio.sleep(self.config.store.retry_interval_s)

    async def _load_budgets(self, store: Store) -> None:
        """Count today's candidate spend already stored, so a restart does not reset the cap."""
        capped = [t.name for t in self.config.tasks.values() if t.daily_budget_usd is not None]
        if not capped:
            return
        try:
            midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            spent = await store.spend_since(midnight)
        except StoreError as exc:
            self._on_error("store", exc)
            return
        for name in capped:
            self.mirror.budget(self.config.tasks[name]).add(spent.get(name, 0.0))

    async def aclose(self, deadline_s: float | None = None) -> ShutdownReport:
        """Stop taking captures; mirror what is queued within the deadline, then write or spool.

        Past the deadline, queued captures are dropped (counted) and in-flight candidate calls
        are cancelled; their exchanges are still written, without the unfinished answers.
        """
        if self.shutdown_report is not None:
            return self.shutdown_report
        if self._send is None or self._task_group is None:
            raise RuntimeError("this Shadow was never started")
        if self in _active:
            _active.remove(self)
        started = time.monotonic()
        deadline = self.config.mirror.shutdown_deadline_s if deadline_s is None else deadline_s
        processed_before = self._processed()
        self._send.close()
        with anyio.move_on_after(deadline):
            await self._workers_done.wait()
        if not self._workers_done.is_set():
            self._drop_waiting()
            for scope in list(self._in_flight):
                scope.cancel()
            await self._workers_done.wait()
        await self._writer_done.wait()
        self._task_group.cancel_scope.cancel()
        await self._task_group.__aexit__(None, None, None)
        self._receive.close()  # type: ignore[union-attr]
        if self._own_providers:
            for provider in self._providers.values():
                await provider.aclose()  # type: ignore[attr-defined]
        if self._store is not None:
            await self._store.close()
        report = ShutdownReport(
            drained=self._processed() - processed_before,
            dropped=self.stats.dropped_shutdown,
            spooled=self.spool.pending(),
            seconds=time.monotonic() - started,
            lost=self.stats.lost_exchanges + self.stats.ledger()["pending"],
        )
        self.shutdown_report = report
        (log.error if report.lost else log.info)("%s", report)
        return report

    def _processed(self) -> int:
        """Captures taken off the queue and finished: mirrored, forwarded, or failed."""
        return self.stats.mirrored + self.stats.forwarded + self.stats.capture_errors

    def _drop_waiting(self) -> None:
        assert self._receive is not None
        while True:
            try:
                self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            self.stats.dropped_shutdown += 1
            self.stats.discarded["shutdown"] += 1
        self.stats.queue_depth = 0

    # ------------------------------------------------------------------ request path

    async def shadow(
        self,
        *,
        task: str,
        request: dict[str, Any],
        call: Callable[[], Awaitable[T]] | Awaitable[T],
        metadata: dict[str, Any] | None = None,
        api: Api = "openai",
        output: Callable[[T], str | None] | None = None,
    ) -> T:
        """Run the primary ``call`` and return its result untouched (exceptions too); mirror a
        sample of it in the background. ``request`` is the chat request the primary was given
        (OpenAI shape, or Anthropic with ``api="anthropic"``)."""
        began = time.perf_counter()
        try:
            result = await (call() if callable(call) else call)
        except Exception:
            self.count_primary_error()
            raise
        latency_ms = (time.perf_counter() - began) * 1000
        self.offer(task, request, result, latency_ms, metadata=metadata, api=api, output=output)
        return result

    def offer(
        self,
        task: str,
        request: dict[str, Any],
        result: Any,
        latency_ms: float | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        api: Api = "openai",
        output: Callable[[Any], str | None] | None = None,
        presampled: bool = False,
        reverse_of: str | None = None,
    ) -> bool:
        """Offer a finished primary call (request + its result) for shadowing. Never blocks
        and never raises (a failure is counted in ``capture_errors`` and sent to ``on_error``).
        ``presampled`` skips the sampling decision (the sender already made it).
        ``reverse_of`` says a promoted model served the call in place of that primary (a
        ``[models]`` key): it is sampled at the reverse-shadow rate and mirrored back to it.
        Returns whether it was queued."""
        try:
            return self._offer(task, request, result, latency_ms, metadata, api, output,
                               presampled, reverse_of)
        except Exception as exc:
            self.stats.capture_errors += 1
            self._on_error("capture", exc)
            return False

    def _offer(
        self,
        task: str,
        request: dict[str, Any],
        result: Any,
        latency_ms: float | None,
        metadata: dict[str, Any] | None,
        api: Api,
        output: Callable[[Any], str | None] | None,
        presampled: bool = False,
        reverse_of: str | None = None,
    ) -> bool:
        model = str(request.get("model") or "")
        sampled = presampled or self.decide(task, lambda: request_key(request),
                                            reverse=reverse_of is not None)
        self.count_offer(task, model, sampled)
        if not sampled:
            return False
        capture = Capture(
            task=task,
            request=snapshot_request(request),
            result=result,
            api=api,
            latency_ms=latency_ms,
            primary_model=model,
            metadata=dict(metadata) if metadata else {},
            output=output,
            reverse_of=reverse_of,
        )
        return self._enqueue(capture)

    def offer_raw(
        self,
        task: str,
        *,
        api: Api,
        request_body: bytes,
        response_body: bytes,
        streamed: bool,
        latency_ms: float | None,
        model: str,
        content_encoding: str | None = None,
        metadata: dict[str, Any] | None = None,
        reverse_of: str | None = None,
    ) -> bool:
        """Offer a primary call seen as raw HTTP bodies (transport, sidecar). Never blocks.
        ``response_body`` is as on the wire; ``content_encoding`` says how to decode it;
        ``reverse_of`` as for :meth:`offer` (already sampled by :meth:`sample`)."""
        capture = Capture(
            task=task,
            raw_request=request_body,
            raw_response=response_body,
            content_encoding=content_encoding,
            api=api,
            streamed=streamed,
            latency_ms=latency_ms,
            primary_model=model,
            metadata=dict(metadata) if metadata else {},
            reverse_of=reverse_of,
        )
        return self._enqueue(capture)

    def sample(
        self, task: str, model: str, key: Callable[[], bytes], *, reverse: bool = False
    ) -> bool:
        """Count a production call and decide whether to capture it (the transport asks before
        it tees the response, so unsampled calls cost nothing more)."""
        sampled = self.decide(task, key, reverse=reverse)
        self.count_offer(task, model, sampled)
        return sampled

    def decide(self, task: str, key: Callable[[], bytes], *, reverse: bool = False) -> bool:
        """The sampling decision alone, without counting: safe from any thread. ``reverse``:
        a promoted model served the call; sample it at the task's reverse-shadow rate."""
        config = self.config
        rate = config.reverse_rate(task) if reverse else config.task(task).sample_rate
        return is_sampled(rate, config.seed, key)

    def count_primary_error(self) -> None:
        self.stats.offered += 1
        self.stats.primary_errors += 1

    def count(self, name: str) -> None:
        """Add one to the named counter of :attr:`stats` (used by the transports)."""
        setattr(self.stats, name, getattr(self.stats, name) + 1)

    def count_offer(self, task: str, model: str, sampled: bool) -> None:
        """Count one production call, sampled or not, in stats and in the daily traffic."""
        stats = self.stats
        stats.offered += 1
        if sampled:
            stats.sampled += 1
        else:
            stats.not_sampled += 1
        counts = self._traffic.get((task, model))
        if counts is None:
            counts = self._traffic[(task, model)] = [0, 0]
        counts[0] += 1
        counts[1] += sampled

    def _flush_traffic(self) -> None:
        if not self._traffic:
            return
        today = datetime.now(UTC).date()
        for (task, model), (requests, sampled) in self._traffic.items():
            self.writer.add_traffic(TrafficRecord(today, task, model, requests, sampled))
        self._traffic.clear()

    def _enqueue(self, capture: Capture) -> bool:
        if self._send is None:
            self.stats.dropped_queue_full += 1  # not started or already closed
            return False
        try:
            self._send.send_nowait(capture)
        except anyio.WouldBlock:
            self.stats.dropped_queue_full += 1
            self._note_queue_full()
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.stats.dropped_shutdown += 1
            return False
        self.stats.enqueued += 1
        self.stats.queue_depth += 1
        return True

    def _note_queue_full(self) -> None:
        """A log line when captures start being dropped, then at most one a minute."""
        now = time.monotonic()
        if now < self._queue_full_logged + QUEUE_FULL_LOG_INTERVAL_S:
            return
        self._queue_full_logged = now
        log.warning(
            "shadowroute: queue full ([mirror] queue_size = %d): new captures are dropped and "
            "counted (%d so far); the candidates or the database are not keeping up",
            self.config.mirror.queue_size, self.stats.dropped_queue_full,
        )

    # ------------------------------------------------------------------ background

    def _on_error(self, stage: str, exc: BaseException) -> None:
        try:
            self._on_error_hook(stage, exc)
        except Exception:  # a broken hook must not break the pipeline
            log.exception("shadowroute on_error hook failed")

    async def _run_workers(self, write_send: ObjectSendStream[ExchangeRecord]) -> None:
        assert self._receive is not None
        async with write_send:
            async with anyio.create_task_group() as tg:
                for _ in range(self.config.mirror.workers):
                    tg.start_soon(self._worker, self._receive.clone(), write_send.clone())
            self._flush_traffic()  # last counts go out with the final batch
        self._workers_done.set()

    async def _run_writer(self, write_receive: ObjectReceiveStream[ExchangeRecord]) -> None:
        await self.writer.run(write_receive)
        self._writer_done.set()

    async def _tick_traffic(self) -> None:
        while True:
            await anyio.sleep(self.config.store.flush_interval_s)
            self._flush_traffic()

    async def _worker(
        self,
        receive: ObjectReceiveStream[Capture],
        write_send: ObjectSendStream[ExchangeRecord],
    ) -> None:
        async with receive, write_send:
            async for capture in receive:
                self.stats.queue_depth -= 1
                try:
                    record = await self._mirror_one(capture)
                except Exception as exc:
                    self.stats.capture_errors += 1
                    self.stats.discarded["capture_error"] += 1
                    self._on_error("capture", exc)
                    continue
                self.stats.mirrored += 1
                if record is None:
                    self.stats.discarded["reverse_failed"] += 1
                elif self._redact(record):
                    await write_send.send(record)

    def _redact(self, record: ExchangeRecord) -> bool:
        """Redact ``record`` once the candidates answered (they need the real request), before
        the writer: the database and the spool only ever see redacted data. A failing redactor
        drops the capture (counted, reported once) rather than store it unredacted."""
        try:
            counts = self.redactor.redact_exchange(record)
        except Exception as exc:
            self.stats.redaction_errors += 1
            self.stats.discarded["redaction_error"] += 1
            if not self._redaction_warned:
                self._redaction_warned = True
                self._on_error("redaction", exc)
            return False
        if counts:
            self.stats.redactions.update(counts)
        return True

    async def _mirror_one(self, capture: Capture) -> ExchangeRecord | None:
        capture.resolve()
        record = capture.to_record(self.config)
        task = self.config.task(capture.task)
        reverse = capture.reverse_of
        stored: ExchangeRecord | None = None if reverse is not None else record
        with anyio.CancelScope() as scope:  # cancelled only past the shutdown deadline
            self._in_flight.add(scope)
            try:
                if reverse is not None:
                    stored = await self._reverse(task, reverse, record)
                else:
                    await self.mirror.answer(task, record, replay=self._replay_model(task, record))
            finally:
                self._in_flight.discard(scope)
        if scope.cancel_called:
            if reverse is not None and stored is None:
                self.stats.reverse_failed += 1  # no reference before the deadline
            else:
                self.stats.cut_shutdown += 1
        return stored

    async def _reverse(
        self, task: TaskConfig, primary: str, served: ExchangeRecord
    ) -> ExchangeRecord | None:
        """Ask the replaced ``primary`` the same request, and store the pair the usual way
        round: the primary's answer as the reference, the promoted model's production answer
        as the candidate output (see ``records.ROUTE_REVERSE``). Without the reference there is
        nothing to compare: the exchange is counted in ``reverse_failed``, not stored."""
        model = self.config.models.get(primary)
        if model is None or primary not in self._providers:
            self.stats.reverse_failed += 1
            if primary not in self._replay_warned:
                self._replay_warned.add(primary)
                log.warning("shadowroute: no reverse shadow to %r: declare it under [models]",
                            primary)
            return None
        promoted = self.config.model_named(served.primary_model)
        request = {**served.request, "model": model.model}
        record = ExchangeRecord(
            task_type=served.task_type, primary_model=model.model, request=request,
            primary_output=None, metadata=served.metadata, created_at=served.created_at,
            route=ROUTE_REVERSE,
        )
        record.outputs.append(CandidateOutputRecord(
            exchange_id=record.id, model=promoted.name if promoted else served.primary_model,
            output=served.primary_output, input_tokens=served.input_tokens,
            output_tokens=served.output_tokens, latency_ms=served.latency_ms,
            cost_usd=served.cost_usd, created_at=served.created_at,
        ))
        reference = await self.mirror.call(task, primary, request, record.id)
        if reference is None or reference.error_kind is not None:
            self.stats.reverse_failed += 1
            return None
        record.primary_output = reference.output
        record.input_tokens, record.output_tokens = reference.input_tokens, reference.output_tokens
        record.latency_ms, record.cost_usd = reference.latency_ms, reference.cost_usd
        replay = self._replay_model(task, record)
        if replay is not None:
            self.stats.primary_replays += 1
            again = await self.mirror.call(task, replay, request, record.id, label=NOISE_FLOOR_MODEL)
            if again is not None:
                record.outputs.append(again)
        self.stats.reverse_shadows += 1
        return record

    def _replay_model(self, task: TaskConfig, record: ExchangeRecord) -> str | None:
        """The primary's model to call again for the noise floor, when this exchange is in the
        task's ``noise_floor_rate`` slice (drawn independently of the sampling decision)."""
        key = lambda: b"replay\x00" + request_key(record.request)  # noqa: E731
        if not task.candidates or not is_sampled(task.noise_floor_rate, self.config.seed, key):
            return None
        model = self.config.model_named(record.primary_model)
        if model is None or model.name not in self._providers:
            self.stats.replay_unavailable += 1
            if record.primary_model not in self._replay_warned:
                self._replay_warned.add(record.primary_model)
                log.warning(
                    "shadowroute: no noise floor for primary %r: declare it under [models] so it "
                    "can be called again (or set noise_floor_rate = 0)",
                    record.primary_model,
                )
            return None
        return model.name


async def shadow(
    *,
    task: str,
    request: dict[str, Any],
    call: Callable[[], Awaitable[T]] | Awaitable[T],
    metadata: dict[str, Any] | None = None,
    api: Api = "openai",
    output: Callable[[T], str | None] | None = None,
    via: Shadow | None = None,
) -> T:
    """Run ``call`` (the production request) and mirror a sample of it through ``via`` or the
    most recently started :class:`Shadow`. With none running, it is just ``await call()``."""
    target = via or active_shadow()
    if target is None:
        return await (call() if callable(call) else call)
    return await target.shadow(
        task=task, request=request, call=call, metadata=metadata, api=api, output=output
    )
