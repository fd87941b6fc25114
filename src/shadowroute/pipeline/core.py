"""``Shadow``: the request path and the lifecycle of the pipeline; ``shadow()`` feeds it.

What it promises: the request path does three things: run the primary call, decide sampling,
put a :class:`Capture` on the bounded queue (drop and count when full), with the primary
call's span context when OpenTelemetry is installed (:mod:`shadowroute.telemetry`). It never
blocks and never raises into production (the primary's own result and exceptions reach the
caller as they are). Every production call is counted (``Stats``, daily traffic). Everything else runs in
background tasks owned here and can never delay or break the caller: the queue
(:mod:`.queue`), its workers or the remote forwarder (:mod:`.workers`), the calls to a primary
for reverse shadows and the noise floor (:mod:`.reverse`), the daily traffic counts
(:mod:`.traffic`) and the batch writer. :meth:`Shadow.start` opens the store (or falls back to
the spool and keeps reconnecting) and loads today's spend into the budgets;
:meth:`Shadow.aclose` drains within the deadline and returns a :class:`ShutdownReport`.
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
from anyio.abc import ObjectReceiveStream, TaskGroup

from .. import telemetry
from ..capture.calls import Api, is_sampled, request_key, snapshot_request
from ..capture.capture import Capture
from ..config import Config, load_config
from ..errors import StoreError
from ..mirror.policy import Completer
from ..mirror.wiring import wire_mirror
from ..records import ExchangeRecord
from ..stats import Stats
from ..store import BatchWriter, Spool, Store
from ..store.engine import safe_url
from ..store.queries.retirements import retired_models
from ..store.queries.routes import latest_report
from ..store.redaction import Redactor
from .handoff import EXIT_MARGIN_S, Handoff
from .queue import CaptureQueue, TracedCapture
from .rates import shadow_shares
from .reverse import PrimaryCalls
from .traffic import DailyTraffic
from .workers import ErrorHook, Workers

__all__ = ["Shadow", "ShutdownReport", "active_shadow", "shadow"]

log = logging.getLogger("shadowroute")
T = TypeVar("T")

REPLAY_SHARES_REFRESH_S = 600.0
"""How often a running pipeline re-reads the replay shares of the latest report."""

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
        mirror_process: str = "off",
    ) -> None:
        """``mirror_process``: ``idle`` or ``normal`` hands every capture, unparsed, to a
        mirror process at that scheduling priority (:mod:`.handoff`; the sidecar's
        ``[sidecar] mirror_process``); ``off`` mirrors and stores in this process."""
        self.config = config or load_config()
        self.stats = Stats()
        self.redactor = Redactor.from_config(self.config.redaction)
        """Applied to every exchange before it goes to the writer (see
        :mod:`shadowroute.store.redaction`)."""
        self._on_error_hook = on_error or _log_error
        names = (
            list(providers)
            if providers is not None
            else []
            if self.config.remote or mirror_process != "off"  # another process calls them
            else list(self.config.models)
        )
        self._wiring = wire_mirror(
            self.config, names, stats=self.stats, on_error=self._on_error, providers=providers
        )
        self.mirror = self._wiring.mirror
        self._primaries = PrimaryCalls(self.config, self.mirror, self._wiring.providers, self.stats)
        store_cfg = self.config.store
        self.spool = Spool(store_cfg.spool_dir)
        self.writer = BatchWriter(
            None, self.spool, batch_size=store_cfg.batch_size,
            flush_interval_s=store_cfg.flush_interval_s,
            retry_interval_s=store_cfg.retry_interval_s, stats=self.stats, on_error=self._on_error,
        )
        self._queue = CaptureQueue(self.config.mirror.queue_size, self.stats)
        self._traffic = DailyTraffic()
        self._handoff = None if mirror_process == "off" else Handoff(
            self.config, self.stats, self._traffic, on_error=self._on_error,
            idle=mirror_process == "idle")
        self._workers: Workers | None = None
        self._task_group: TaskGroup | None = None
        self._store: Store | None = None
        self._db_state: tuple[str, float] | None = None
        self._started = False
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
        self._queue.open()
        write_send, write_receive = anyio.create_memory_object_stream[ExchangeRecord](
            self.config.store.batch_size
        )
        workers = self._workers = Workers(
            config=self.config, queue=self._queue, mirror=self.mirror,
            primaries=self._primaries, redactor=self.redactor, stats=self.stats,
            on_error=self._on_error, traffic=self._traffic,
        )
        self._writer_done = anyio.Event()
        self._task_group = tg = anyio.create_task_group()
        await tg.__aenter__()
        if self._handoff is not None or self.config.remote:
            write_send.close()
            write_receive.close()
            self._writer_done.set()
            if self._handoff is not None:
                self._handoff.open()
                tg.start_soon(self._handoff.run, self._queue.receiver())
            else:
                tg.start_soon(workers.forward, self.config.remote)
        else:
            if not await self._open_store():
                log.warning("shadowroute: the database %s cannot be reached at start; captures "
                            "are spooled to %s until it is back", safe_url(self.config.database_url),
                            self.config.store.spool_dir)
                tg.start_soon(self._reconnect_store)
            tg.start_soon(self._run_writer, write_receive)
            tg.start_soon(workers.run, write_send, self._flush_traffic)
            tg.start_soon(self._traffic.tick, self.writer, self.config.store.flush_interval_s)
            tg.start_soon(self._refresh_replay_shares)
        _active.append(self)

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
            await self._load_replay_shares(store)
        return True

    async def _reconnect_store(self) -> None:
        """While the database is unreachable the spool takes the data; keep trying to open it."""
        while not await self._open_store():
            await anyio.sleep(self.config.store.retry_interval_s)

    async def database_state(self, timeout_s: float = 1.0, max_age_s: float = 2.0) -> str:
        """``ok`` (the database answers, nothing waits in the spool), ``spooling`` (it
        answers, spooled exchanges are being written back), ``unreachable`` (captures go to
        the spool) or ``remote`` (remote mode: the sidecar stores). Probed with a bounded
        timeout and cached for ``max_age_s``, so a health check cannot load the database."""
        if self.config.remote:
            return "remote"
        if self._handoff is not None:
            return self._handoff.database
        now = time.monotonic()
        if self._db_state is not None and now - self._db_state[1] < max_age_s:
            return self._db_state[0]
        reachable = self._store is not None and await self._store.ping(timeout_s)
        state = ("unreachable" if not reachable else
                 "spooling" if self.stats.spool_pending else "ok")
        self._db_state = (state, time.monotonic())
        return state

    async def _load_budgets(self, store: Store) -> None:
        """Count today's candidate spend already stored, so a restart does not reset the cap."""
        capped = [t.name for t in self.config.tasks.values() if not math.isinf(t.daily_budget_usd)]
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

    async def _load_replay_shares(self, store: Store) -> None:
        """Replay shares (:meth:`PrimaryCalls.replay_share`) from the latest report, candidate
        shares (:mod:`.rates`) from it and the retirements; those held already when they
        cannot be read."""
        try:
            overview = ((await latest_report(store)) or {}).get("overview") or {}
            retired = await retired_models(store)
        except StoreError as exc:
            return self._on_error("store", exc)
        self._primaries.shares = {str(task): float(share) for task, share in
                                  (overview.get("replay_shares") or {}).items()
                                  if isinstance(share, int | float)}
        self.mirror.share(shadow_shares(self.config, overview.get("shadow_rates"), retired),
                          self.config.seed)

    async def _refresh_replay_shares(self) -> None:
        """Re-read them now and then: the nightly report moves them."""
        while True:
            await anyio.sleep(REPLAY_SHARES_REFRESH_S)
            if self._store is not None:
                await self._load_replay_shares(self._store)

    async def aclose(self, deadline_s: float | None = None) -> ShutdownReport:
        """Stop taking captures; mirror what is queued within the deadline, then write or spool.

        Past the deadline, queued captures are dropped (counted) and in-flight candidate calls
        are cancelled; their exchanges are still written, without the unfinished answers.
        """
        if self.shutdown_report is not None:
            return self.shutdown_report
        workers = self._workers
        if workers is None or self._task_group is None:
            raise RuntimeError("this Shadow was never started")
        if self in _active:
            _active.remove(self)
        started = time.monotonic()
        deadline = self.config.mirror.shutdown_deadline_s if deadline_s is None else deadline_s
        processed_before = self._processed()
        self._queue.close()
        if self._handoff is not None:
            await self._close_handoff(self._handoff, deadline)
            workers.done.set()
        with anyio.move_on_after(deadline):
            await workers.done.wait()
        if not workers.done.is_set():
            self._queue.drop_waiting()
            workers.cancel_in_flight()
            await workers.done.wait()
        await self._writer_done.wait()
        self._task_group.cancel_scope.cancel()
        await self._task_group.__aexit__(None, None, None)
        self._queue.close_receiving()
        await self._wiring.aclose()
        if self._store is not None:
            await self._store.close()
        totals = self.totals()
        child = ((self._handoff.final or {}).get("report") or {}) if self._handoff else {}
        report = ShutdownReport(
            drained=child.get("drained", self._processed() - processed_before),
            dropped=totals.dropped_shutdown,
            spooled=self.spool.pending(),
            seconds=time.monotonic() - started,
            lost=totals.lost_exchanges + totals.ledger()["pending"],
        )
        self.shutdown_report = report
        (log.error if report.lost else log.info)("%s", report)
        return report

    async def _close_handoff(self, handoff: Handoff, deadline: float) -> None:
        """Write what waits to the mirror process within ``deadline``, then give it what is
        left of it (past it: drop what waits, counted, and tell the child to cut)."""
        handoff.closing(deadline)
        with anyio.move_on_after(deadline):
            await handoff.fed.wait()
        if not handoff.fed.is_set():
            handoff.stop_feeding()
            self._queue.drop_waiting()
        with anyio.move_on_after(deadline + EXIT_MARGIN_S):
            await handoff.done.wait()
        if not handoff.done.is_set():
            log.error("shadowroute: the mirror process did not stop in time; killed")
            handoff.kill()
            await handoff.done.wait()

    def totals(self) -> Stats:
        """What :attr:`stats` counts, and with a mirror process, what it counted too (its
        last report): for metrics, health and the shutdown ledger."""
        return self._handoff.totals() if self._handoff is not None else self.stats

    def add_counts(self, traffic: list[list[Any]], routed: list[list[Any]]) -> None:
        """The mirror process: add traffic counts the sidecar handed over."""
        self._traffic.add(traffic, routed)

    async def accept(self, capture: Capture, cut: anyio.Event) -> None:
        """The mirror process: queue a capture the sidecar handed over (already sampled and
        counted there), waiting for room; dropped and counted once ``cut`` is set."""
        await self._queue.put_wait(capture, cut)

    def _processed(self) -> int:
        """Captures taken off the queue and finished: mirrored, forwarded, or failed."""
        return self.stats.mirrored + self.stats.forwarded + self.stats.capture_errors

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
        sample of it in the background. ``request`` is the request the primary was given: an
        OpenAI chat request, an Anthropic one with ``api="anthropic"``, a Responses API one with
        ``api="responses"`` (recognised by its ``input`` too)."""
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
        not_carried: list[str] | None = None,
        source: str = "shadow()",
    ) -> bool:
        """Offer a finished primary call (request + its result) for shadowing. Never blocks
        and never raises (a failure is counted in ``capture_errors`` and sent to ``on_error``).
        ``presampled`` skips the sampling decision (the sender already made it).
        ``reverse_of`` says a promoted model served the call in place of that primary (a
        ``[models]`` key): it is sampled at the reverse-shadow rate and mirrored back to it.
        ``not_carried`` names settings of the original request the (already canonical)
        ``request`` lost (remote mode). ``source`` labels the stored exchange (``shadow()``;
        ``remote:<name>`` for a sidecar's captures). Returns whether it was queued."""
        try:
            return self._offer(task, request, result, latency_ms, metadata, api, output,
                               presampled, reverse_of, not_carried, source)
        except Exception as exc:
            self.stats.capture_errors += 1
            self._on_error("capture", exc)
            return False

    def _offer(
        self, task: str, request: dict[str, Any], result: Any, latency_ms: float | None,
        metadata: dict[str, Any] | None, api: Api, output: Callable[[Any], str | None] | None,
        presampled: bool = False, reverse_of: str | None = None,
        not_carried: list[str] | None = None, source: str = "shadow()",
    ) -> bool:
        model = str(request.get("model") or "")
        sampled = presampled or self.would_sample(task, lambda: request_key(request),
                                                  reverse=reverse_of is not None)
        self.count_offer(task, model, sampled)
        if not sampled:
            return False
        capture = TracedCapture(
            task=task,
            request=snapshot_request(request),
            result=result,
            api=api,
            latency_ms=latency_ms,
            primary_model=model,
            metadata=dict(metadata) if metadata else {},
            output=output,
            reverse_of=reverse_of,
            not_carried=list(not_carried) if not_carried else [],
            source=source,
            origin=telemetry.span_context(self.stats),
        )
        return self._queue.put(capture)

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
        source: str = "transport",
    ) -> bool:
        """Offer a primary call seen as raw HTTP bodies (transport, sidecar). Never blocks.
        ``response_body`` is as on the wire; ``content_encoding`` says how to decode it;
        ``reverse_of`` as for :meth:`offer` (already sampled by :meth:`sample`)."""
        capture = TracedCapture(
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
            source=source,
            origin=telemetry.span_context(self.stats),
        )
        return self._queue.put(capture)

    def sample(
        self, task: str, model: str, key: Callable[[], bytes], *, reverse: bool = False
    ) -> bool:
        """Count a production call and decide whether to capture it (the transport asks before
        it tees the response, so unsampled calls cost nothing more)."""
        sampled = self.would_sample(task, key, reverse=reverse)
        self.count_offer(task, model, sampled)
        return sampled

    def would_sample(
        self, task: str, key: Callable[[], bytes], *, reverse: bool = False
    ) -> bool:
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
        stats.sampled += sampled
        stats.not_sampled += not sampled
        counts = self._traffic.get((task, model))
        if counts is None:
            counts = self._traffic[(task, model)] = [0, 0, 0]
        counts[0] += 1
        counts[1] += sampled

    def count_routed(self, task: str, model: str, outcome: str) -> None:
        """Count one call a cascade or partial route to ``model`` served (``outcome``: see
        :class:`~shadowroute.records.RoutedRecord`), in stats and in the daily counts."""
        self.stats.routed[(task, model, outcome)] += 1
        self._traffic.routed[(task, model, outcome)] += 1

    def _flush_traffic(self) -> None:
        self._traffic.flush(self.writer)

    # ------------------------------------------------------------------ background

    def _on_error(self, stage: str, exc: BaseException) -> None:
        try:
            self._on_error_hook(stage, exc)
        except Exception:  # a broken hook must not break the pipeline
            log.exception("shadowroute on_error hook failed")

    async def _run_writer(self, write_receive: ObjectReceiveStream[ExchangeRecord]) -> None:
        await self.writer.run(write_receive)
        self._writer_done.set()


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
    return await target.shadow(task=task, request=request, call=call, metadata=metadata,
                               api=api, output=output)
