"""The bounded capture queue between the request path and the mirror workers.

What it promises: :meth:`CaptureQueue.put` never blocks and never raises. A capture that does
not fit is dropped and counted (``Stats.dropped_queue_full``), with a warning when drops start
and at most one a minute after; one offered before the queue opened or after it closed is
counted in ``dropped_shutdown``. What goes in is counted (``enqueued``, ``queue_depth``; the
consumer lowers ``queue_depth`` as it takes). At shutdown past the deadline, :meth:`drop_waiting`
drops what still waits, counted (``dropped_shutdown``, ``discarded["shutdown"]``). It never grows
without bound: ``[mirror] queue_size`` captures at most. The request path queues a
:class:`TracedCapture`: the capture and the span context of the primary call, for the workers.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..capture.capture import Capture
from ..stats import Stats

__all__ = ["QUEUE_FULL_LOG_INTERVAL_S", "CaptureQueue", "TracedCapture"]

log = logging.getLogger("shadowroute")
QUEUE_FULL_LOG_INTERVAL_S = 60.0


@dataclass(slots=True)
class TracedCapture(Capture):
    """A :class:`Capture` with the OpenTelemetry span context that was active when the primary
    call returned (:func:`shadowroute.telemetry.span_context`), which the workers link their
    calls' spans to. It lives only between the request path and the workers: it is neither
    stored nor forwarded to a sidecar."""

    origin: Any = None
    """An ``opentelemetry.trace.SpanContext``, or ``None`` (no span, or no OpenTelemetry)."""


class CaptureQueue:
    """A bounded memory stream of :class:`Capture`, open from :meth:`open` to :meth:`close`."""

    def __init__(self, size: int, stats: Stats) -> None:
        self.size = size
        self.stats = stats
        self._send: ObjectSendStream[Capture] | None = None
        self._receive: ObjectReceiveStream[Capture] | None = None
        self._full_logged = -math.inf

    def open(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[Capture](self.size)

    def put(self, capture: Capture) -> bool:
        """Queue ``capture`` now or drop it (counted); whether it was queued. The request
        path: keep it to a ``send_nowait`` and a few counters."""
        if self._send is None:
            self.stats.dropped_queue_full += 1  # not started
            return False
        try:
            self._send.send_nowait(capture)
        except anyio.WouldBlock:
            self.stats.dropped_queue_full += 1
            self._note_full()
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.stats.dropped_shutdown += 1
            return False
        self.stats.enqueued += 1
        self.stats.queue_depth += 1
        return True

    async def put_wait(self, capture: Capture, cut: anyio.Event) -> None:
        """Queue ``capture``, waiting for room (the mirror process: the sidecar's own queue
        is where captures are dropped); once ``cut`` is set (the shutdown deadline passed) it
        is dropped instead, counted. Counted as accepted either way, so the ledger holds it."""
        self.stats.enqueued += 1
        sent = False
        if self._send is not None and not cut.is_set():
            try:
                self._send.send_nowait(capture)
                sent = True
            except anyio.WouldBlock:
                async with anyio.create_task_group() as tg:
                    async def until_cut() -> None:
                        await cut.wait()
                        tg.cancel_scope.cancel()

                    tg.start_soon(until_cut)
                    await self._send.send(capture)
                    sent = True
                    tg.cancel_scope.cancel()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
        if sent:
            self.stats.queue_depth += 1
        else:
            self.stats.dropped_shutdown += 1
            self.stats.discarded["shutdown"] += 1

    def _note_full(self) -> None:
        """A log line when captures start being dropped, then at most one a minute."""
        now = time.monotonic()
        if now < self._full_logged + QUEUE_FULL_LOG_INTERVAL_S:
            return
        self._full_logged = now
        log.warning(
            "shadowroute: queue full ([mirror] queue_size = %d): new captures are dropped and "
            "counted (%d so far); the candidates or the database are not keeping up",
            self.size, self.stats.dropped_queue_full,
        )

    def receiver(self) -> ObjectReceiveStream[Capture]:
        """A receiving end for one consumer (closing it does not close the others)."""
        if self._receive is None:
            raise RuntimeError("the capture queue is not open")
        return self._receive.clone()

    def close(self) -> None:
        """Take no more captures; consumers get what waits, then the end of the stream."""
        if self._send is not None:
            self._send.close()

    def drop_waiting(self) -> None:
        """Drop (and count) every capture still waiting: the shutdown deadline has passed."""
        if self._receive is None:
            return
        while True:
            try:
                self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            self.stats.dropped_shutdown += 1
            self.stats.discarded["shutdown"] += 1
        self.stats.queue_depth = 0

    def close_receiving(self) -> None:
        """Release the queue's own receiving end once every consumer has stopped."""
        if self._receive is not None:
            self._receive.close()
