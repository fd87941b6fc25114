"""The consumers of the capture queue: mirror workers, or the forwarder in remote mode.

What it promises: each capture taken off the queue is finished exactly one way, and counted:
resolved (parsed), its candidates called (and the primary again for the noise floor, or the
replaced primary for a reverse shadow; each call's span linked to the primary call's span the
capture carries, see :mod:`shadowroute.telemetry`), redacted, and handed to the writer (``mirrored``); or
dropped, counted in ``discarded`` by reason: it could not be read (``capture_error``), its
reverse shadow got no reference (``reverse_failed``), its redaction failed
(``redaction_error``; never stored unredacted), or it depends on state its provider keeps and
no other model can be given the same request (``not_shadowable``: counted by feature in
``Stats.not_shadowable`` and in the day's traffic, logged once per feature). Redaction happens once the candidates answered
(they need the real request) and before the writer, so the database and the spool only see
redacted data. Nothing here raises into the pipeline: failures go to the ``on_error`` hook.
Calls in flight can be cut at the shutdown deadline (:meth:`Workers.cancel_in_flight`); a cut
exchange is still written, without the unfinished answers (``cut_shutdown``).
In remote mode, :meth:`Workers.forward` sends the captures to the sidecar instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..capture.capture import Capture
from ..capture.remote import Forwarder
from ..config import Config
from ..formats.chat import NotShadowable
from ..mirror.policy import Mirror
from ..records import ExchangeRecord
from ..stats import Stats
from ..store.redaction import Redactor, redact_or_drop
from .queue import CaptureQueue
from .reverse import PrimaryCalls
from .traffic import DailyTraffic

__all__ = ["Workers", "count_not_shadowable"]

log = logging.getLogger("shadowroute")
ErrorHook = Callable[[str, BaseException], None]


def count_not_shadowable(stats: Stats, exc: NotShadowable) -> None:
    """Count a capture left out because no other model can be given its request; the first of
    each feature is logged (a warning: the report will show fewer pairs than calls)."""
    stats.discarded["not_shadowable"] += 1
    stats.not_shadowable[exc.feature] += 1
    if stats.not_shadowable[exc.feature] == 1:
        log.warning("shadowroute: calls using %s are counted but not shadowed: another model "
                    "cannot be given the state their provider keeps", exc.feature)


class Workers:
    """``[mirror] workers`` tasks taking captures off ``queue``; one run per started Shadow."""

    def __init__(
        self,
        *,
        config: Config,
        queue: CaptureQueue,
        mirror: Mirror,
        primaries: PrimaryCalls,
        redactor: Redactor,
        stats: Stats,
        on_error: ErrorHook,
        traffic: DailyTraffic | None = None,
    ) -> None:
        self.config = config
        self.traffic = traffic
        self.queue = queue
        self.mirror = mirror
        self.primaries = primaries
        self.redactor = redactor
        self.stats = stats
        self._on_error = on_error
        self.done = anyio.Event()
        """Set once every consumer has stopped (the queue is closed and drained, or cut)."""
        self._in_flight: set[anyio.CancelScope] = set()

    def cancel_in_flight(self) -> None:
        """Cut the candidate calls (or the forwarding) under way: the deadline has passed."""
        for scope in list(self._in_flight):
            scope.cancel()

    async def run(
        self,
        write_send: ObjectSendStream[ExchangeRecord],
        on_drained: Callable[[], None],
    ) -> None:
        """Run the workers until the queue ends; ``on_drained`` runs once they all stopped,
        before the writer's stream closes (so what it hands the writer goes out with the
        final batch)."""
        async with write_send:
            async with anyio.create_task_group() as tg:
                for _ in range(self.config.mirror.workers):
                    tg.start_soon(self._worker, self.queue.receiver(), write_send.clone())
            on_drained()
        self.done.set()

    async def forward(self, url: str) -> None:
        """Remote mode: captures go to the sidecar at ``url`` instead of local workers and
        storage."""
        token_env = self.config.remote_token_env
        forwarder = Forwarder(
            url,
            stats=self.stats,
            on_error=self._on_error,
            flush_interval_s=self.config.store.flush_interval_s,
            token=os.environ.get(token_env) if token_env else None,
            name=self.config.remote_name,
        )
        with anyio.CancelScope() as scope:  # cancelled only past the shutdown deadline
            self._in_flight.add(scope)
            await forwarder.run(self.queue.receiver())
        self.done.set()

    async def _worker(
        self,
        receive: ObjectReceiveStream[Capture],
        write_send: ObjectSendStream[ExchangeRecord],
    ) -> None:
        stats = self.stats
        async with receive, write_send:
            async for capture in receive:
                stats.queue_depth -= 1
                try:
                    record = await self._mirror_one(capture)
                except NotShadowable as exc:
                    count_not_shadowable(stats, exc)
                    if self.traffic is not None:
                        self.traffic.count_not_shadowable(capture.task, capture.primary_model)
                    continue
                except Exception as exc:
                    stats.capture_failed()
                    self._on_error("capture", exc)
                    continue
                stats.mirrored += 1
                if record is None:
                    stats.discarded["reverse_failed"] += 1
                elif redact_or_drop(self.redactor, record, stats, self._report_redaction):
                    await write_send.send(record)
                else:
                    stats.discarded["redaction_error"] += 1

    def _report_redaction(self, exc: BaseException) -> None:
        self._on_error("redaction", exc)

    async def _mirror_one(self, capture: Capture) -> ExchangeRecord | None:
        """The exchange to store for ``capture`` with its candidates' answers, or ``None``
        when a reverse shadow got no reference."""
        capture.resolve()
        record = capture.to_record(self.config)
        task = self.config.task(capture.task)
        reverse = capture.reverse_of
        origin = getattr(capture, "origin", None)  # a TracedCapture's; see .queue
        stored: ExchangeRecord | None = None if reverse is not None else record
        with anyio.CancelScope() as scope:  # cancelled only past the shutdown deadline
            self._in_flight.add(scope)
            try:
                if reverse is not None:
                    stored = await self.primaries.reverse(task, reverse, record, origin=origin)
                else:
                    replay = self.primaries.replay_model(task, record)
                    await self.mirror.answer(task, record, replay=replay, origin=origin)
            finally:
                self._in_flight.discard(scope)
        if scope.cancel_called:
            if reverse is not None and stored is None:
                self.stats.reverse_failed += 1  # no reference before the deadline
            else:
                self.stats.cut_shutdown += 1
        return stored
