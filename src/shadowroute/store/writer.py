"""The batch writer: exchanges in from a stream, batched writes out, the spool as fallback.

One task reads the mirror workers' stream and writes a batch when it reaches ``batch_size`` or
when its first record has waited ``flush_interval_s``. When the database fails, the batch goes
to the spool and the writer stops trying the database with every batch: new batches go straight
to disk until a drain of the spool, every ``retry_interval_s``, gets through. So an
unreachable database costs one failed attempt per retry interval, never one per batch, and the
stream keeps draining. Nothing here raises out of :meth:`BatchWriter.run` for a store failure.
Counts (daily traffic, and what cascades and partial routes served) are merged in memory and
travel with the next batch, stored or spooled with it. Each batch gets an id when it is formed,
kept with it through retries and the spool, so that writing it again (after a failure the
database may have committed anyway) adds its counts once (see :meth:`.Store.write`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple

import anyio
import anyio.to_thread
from anyio.abc import ObjectReceiveStream

from ..errors import StoreError
from ..records import ExchangeRecord, RoutedRecord, TrafficRecord, new_id
from ..stats import Stats
from .spool import Spool

if TYPE_CHECKING:
    from datetime import date

    from .store import Store

__all__ = ["BatchWriter", "Counts"]

Counts = TrafficRecord | RoutedRecord
"""Counts that travel with a batch of exchanges (stored, or spooled with it)."""


class _Batch(NamedTuple):
    """A batch as formed: it keeps its id however many times it is written or spooled."""

    exchanges: list[ExchangeRecord]
    counts: list[Counts]
    id: str


_NOTHING = object()

log = logging.getLogger("shadowroute.store")

DRAIN_BATCHES_PER_TURN = 4
"""Spool files drained between two looks at the stream, so a long drain cannot stall it."""
CLOSE_DRAIN_S = 2.0
"""How long a closing writer keeps draining the spool into a working database."""


class BatchWriter:
    """Writes exchanges in batches to a :class:`Store`, or to the :class:`Spool` when it fails.

    ``store`` may be ``None`` (no database yet: everything is spooled) and may be replaced at
    any time (``writer.store = store``); the next loop turn then drains the spool into it.
    """

    def __init__(
        self,
        store: Store | None,
        spool: Spool,
        *,
        batch_size: int,
        flush_interval_s: float,
        retry_interval_s: float,
        stats: Stats,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if flush_interval_s <= 0 or retry_interval_s <= 0:
            raise ValueError("flush_interval_s and retry_interval_s must be positive")
        self._store = store
        self.spool = spool
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.retry_interval_s = retry_interval_s
        self.stats = stats
        self.on_error = on_error
        self._batch: list[ExchangeRecord] = []
        self._batch_started = math.inf
        self._traffic: dict[tuple[date, str, str], list[int]] = {}
        self._routed: dict[tuple[date, str, str, str], int] = {}
        self._traffic_started = math.inf
        self._held: list[_Batch] = []
        """Batches neither stored nor spooled (the disk failed too); retried every interval."""
        self._inflight: _Batch | None = None
        """The batch being written or spooled, so a cancellation cannot lose it."""
        self._db_ok = True
        self._next_retry: float | None = None
        self._store_changed = False

    # ------------------------------------------------------------------ public

    @property
    def store(self) -> Store | None:
        return self._store

    @store.setter
    def store(self, store: Store | None) -> None:
        self._store = store
        self._store_changed = True

    def add_traffic(self, record: TrafficRecord) -> None:
        """Count production calls; merged per (day, task, model), written with the next batch.

        Synchronous and cheap: call it from the event loop thread at any time.
        """
        key = (record.day, record.task_type, record.primary_model)
        counts = self._traffic.get(key)
        if counts is None:
            if not self._traffic and not self._routed:
                self._traffic_started = anyio.current_time()
            self._traffic[key] = [record.requests, record.sampled, record.not_shadowable]
        else:
            counts[0] += record.requests
            counts[1] += record.sampled
            counts[2] += record.not_shadowable

    def add_routed(self, record: RoutedRecord) -> None:
        """Count calls a cascade or partial route served; merged per (day, task, model,
        outcome), written with the next batch (with the traffic counts, on the same path:
        stored, or spooled while the database is down). Synchronous and cheap."""
        key = (record.day, record.task_type, record.model, record.outcome)
        if not self._traffic and not self._routed:
            self._traffic_started = anyio.current_time()
        self._routed[key] = self._routed.get(key, 0) + record.calls

    async def run(self, receive: ObjectReceiveStream[ExchangeRecord]) -> None:
        """Write what arrives on ``receive`` until it is closed, then write the rest and return.

        If cancelled, whatever is in hand is spooled (shielded) before the cancellation proceeds.
        ``receive`` is closed on the way out.
        """
        async with receive:
            await self._run(receive)

    async def _run(self, receive: ObjectReceiveStream[ExchangeRecord]) -> None:
        self._sync_pending()
        if self.spool.pending_batches():
            self._next_retry = anyio.current_time()  # drain once at start
        try:
            closed = False
            while not closed:
                closed = await self._fill(receive)
                now = anyio.current_time()
                if self._store_changed:
                    self._store_changed = False
                    self._db_ok = True
                    if self.spool.pending_batches() or self._held:
                        self._next_retry = now
                if (
                    closed
                    or len(self._batch) >= self.batch_size
                    or now >= self._batch_started + self.flush_interval_s
                    or now >= self._traffic_due()
                ):
                    await self._flush()
                if self._next_retry is not None and now >= self._next_retry:
                    await self._retry()
            await self._drain_on_close()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._spool_all()
            raise
        if self._held:
            await self._spool_all()

    async def _drain_on_close(self) -> None:
        """Closing while the database is up: drain what the spool holds, for a few seconds
        at most (checked between spool files), so a clean shutdown leaves it empty."""
        deadline = anyio.current_time() + CLOSE_DRAIN_S
        if self._store_changed:
            self._store_changed = False
            self._db_ok = True
        while (
            self._store is not None
            and self._db_ok
            and (self.spool.pending_batches() or self._held)
            and anyio.current_time() < deadline
        ):
            before = (self.spool.pending_batches(), len(self._held))
            await self._retry()
            if (self.spool.pending_batches(), len(self._held)) == before:
                break  # no progress: leave the rest for the next start

    # ------------------------------------------------------------------ the loop

    async def _fill(self, receive: ObjectReceiveStream[ExchangeRecord]) -> bool:
        """Take records until the batch is full or something is due; True once closed."""
        batch = self._batch
        item: object
        while len(batch) < self.batch_size:
            try:
                item = receive.receive_nowait()
            except anyio.WouldBlock:
                timeout = self._deadline() - anyio.current_time()
                if timeout <= 0:
                    return False
                item = _NOTHING
                with anyio.move_on_after(timeout):
                    try:
                        item = await receive.receive()
                    except (anyio.EndOfStream, anyio.ClosedResourceError):
                        return True
                if item is _NOTHING:
                    return False
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return True
            if not batch:
                self._batch_started = anyio.current_time()
            batch.append(item)  # type: ignore[arg-type]
        return False

    def _traffic_due(self) -> float:
        """When counts waiting alone are written: each flush interval, or while the database is
        down only each retry interval (counts are merged in memory, so waiting costs nothing
        and avoids a stream of tiny spool files)."""
        if self._store is not None and self._db_ok:
            return self._traffic_started + self.flush_interval_s
        return self._traffic_started + max(self.flush_interval_s, self.retry_interval_s)

    def _deadline(self) -> float:
        """When the loop must look up from the stream: a flush or a retry is due."""
        deadline = min(
            self._batch_started + self.flush_interval_s,
            self._traffic_due(),
            # Traffic may arrive while waiting: look again at least once per interval.
            anyio.current_time() + self.flush_interval_s,
        )
        if self._next_retry is not None:
            deadline = min(deadline, self._next_retry)
        return deadline

    async def _flush(self) -> None:
        batch, self._batch = self._batch, []
        self._batch_started = math.inf
        traffic = self._take_traffic()
        if not batch and not traffic:
            return
        formed = self._inflight = _Batch(batch, traffic, new_id())
        store = self._store
        if store is not None and self._db_ok:
            if await self._write(store, formed) == "stored":
                self._inflight = None
                return
        try:
            # Not cancellable while the thread runs: when it returns, the file exists.
            await anyio.to_thread.run_sync(self.spool.append, *formed)
        except Exception as exc:
            self._inflight = None
            self._report("spool", exc)
            self._held.append(formed)
            self._schedule_retry()
            return
        self._inflight = None
        self.stats.spooled_exchanges += len(batch)
        self._sync_pending()
        self._schedule_retry()

    async def _write(self, store: Store, formed: _Batch) -> Literal["stored", "down", "failed"]:
        """One batch to the database: stored (counted), database down (marked, reported), or
        failed for another reason (a bug: reported; the caller keeps the data)."""
        batch = formed.exchanges
        try:
            await store.write(batch, formed.counts, batch_id=formed.id)
        except StoreError as exc:
            self.stats.store_errors += 1
            self._mark_down()
            self._report("store", exc)
            return "down"
        except Exception as exc:
            self._report("writer", exc)
            return "failed"
        self.stats.stored_exchanges += len(batch)
        self.stats.stored_outputs += sum(len(x.outputs) for x in batch)
        return "stored"

    async def _spool_all(self) -> None:
        """Last resort on the way out: everything in memory goes to disk."""
        held, self._held = self._held, []
        if self._inflight is not None:
            held.insert(0, self._inflight)
            self._inflight = None
        batch, self._batch = self._batch, []
        self._batch_started = math.inf
        traffic = self._take_traffic()
        if batch or traffic:
            held.append(_Batch(batch, traffic, new_id()))
        for formed in held:
            try:
                await anyio.to_thread.run_sync(self.spool.append, *formed)
            except Exception as exc:
                log.error("lost %d exchanges: neither stored nor spooled", len(formed.exchanges))
                self.stats.lost_exchanges += len(formed.exchanges)
                self._report("spool", exc)
            else:
                self.stats.spooled_exchanges += len(formed.exchanges)
        self._sync_pending()

    async def _retry(self) -> None:
        """Drain a few spool files (and held batches); on failure, wait one more interval."""
        self._next_retry = None
        store = self._store
        if store is None:
            await self._retry_held(None)
            self._schedule_retry()
            return
        if not await self._retry_held(store):
            return
        before = self.spool.pending_batches()
        try:
            drained = await self.spool.drain(store, max_batches=DRAIN_BATCHES_PER_TURN)
        except Exception as exc:  # a bug or an unreadable spool: report, try again later
            self._report("spool", exc)
            self._sync_pending()
            self._next_retry = anyio.current_time() + self.retry_interval_s
            return
        self.stats.replayed_exchanges += drained
        self._sync_pending()
        error = self.spool.last_error
        if error is not None:
            self.stats.store_errors += 1
            self._mark_down()
            self._report("store", error)
            return
        self._db_ok = True
        left = self.spool.pending_batches()
        if left:
            # Keep going on the next loop turn, unless this turn made no progress at all.
            progressed = left < before or drained > 0
            now = anyio.current_time()
            self._next_retry = now if progressed else now + self.retry_interval_s

    async def _retry_held(self, store: Store | None) -> bool:
        """Write (or else spool) batches the disk refused earlier; False if the store failed."""
        while self._held:
            formed = self._held[0]
            if store is not None:
                outcome = await self._write(store, formed)
                if outcome == "down":
                    return False
                if outcome == "stored":
                    self._held.pop(0)
                    continue
            try:
                await anyio.to_thread.run_sync(self.spool.append, *formed)
            except Exception as exc:
                self._report("spool", exc)
                self._schedule_retry()
                return store is not None
            self._held.pop(0)
            self.stats.spooled_exchanges += len(formed.exchanges)
            self._sync_pending()
        return True

    # ------------------------------------------------------------------ helpers

    def _take_traffic(self) -> list[Counts]:
        """The counts waiting: daily traffic, then what the routes served."""
        traffic, self._traffic = self._traffic, {}
        routed, self._routed = self._routed, {}
        self._traffic_started = math.inf
        out: list[Counts] = [
            TrafficRecord(day, task, model, requests, sampled, not_shadowable)
            for (day, task, model), (requests, sampled, not_shadowable) in traffic.items()
        ]
        out.extend(RoutedRecord(day, task, model, outcome, calls)
                   for (day, task, model, outcome), calls in routed.items())
        return out

    def _mark_down(self) -> None:
        self._db_ok = False
        self._next_retry = anyio.current_time() + self.retry_interval_s

    def _schedule_retry(self) -> None:
        if self._next_retry is None:
            self._next_retry = anyio.current_time() + self.retry_interval_s

    def _sync_pending(self) -> None:
        self.stats.spool_pending = self.spool.pending()

    def _report(self, where: str, exc: BaseException) -> None:
        try:
            self.on_error(where, exc)
        except Exception:  # a broken hook must not stop the writer
            log.exception("shadowroute on_error hook failed")

