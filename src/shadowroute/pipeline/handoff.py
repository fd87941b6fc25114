"""The sidecar's mirror process: captures leave the serving process as raw bytes.

With ``[sidecar] mirror_process`` on, the sidecar's :class:`~shadowroute.Shadow` keeps only the
request path (sampling, the capture's raw bodies, the day's traffic counts) and a
:class:`Handoff` that writes each capture, unparsed, to a child process
(:mod:`.mirror_process`) over its stdin: parsing, translation, the candidates, redaction,
budgets and the store all run there, at the idle scheduling class by default, so they cannot
take the serving process's CPU (measured in ``bench/proxy_overhead.py``).

What it promises: the request path is unchanged (``CaptureQueue.put``: never blocks, drops and
counts when full); a capture leaves the queue as one length-prefixed frame; the child takes
frames only as fast as its own queue empties, so backpressure reaches the sidecar's queue and
nothing is dropped between the two. The child reports its :class:`~shadowroute.stats.Stats`
and database state every :data:`STATUS_INTERVAL_S` on its stdout; :meth:`Handoff.totals` adds
them to the sidecar's own for ``/metrics``, ``/healthz`` and the last words, whose ledger then
accounts for every capture across both processes. A child that dies is counted
(``mirror_process_exits``), logged and started again; what it held shows as lost. At shutdown
the sidecar writes what waits, then a close frame carrying what is left of the deadline; the
child drains within it and sends its final status.

A frame: ``>III`` (header length, first body length, second body length), the JSON header,
then the bodies. Headers: ``{"k": "config"}`` (first frame; the pickled :class:`Config`),
``{"k": "raw", ...}`` (request and response bytes as on the wire), ``{"k": "parsed", ...}``
(a capture of ``POST /v1/captures``: request and response as JSON), ``{"k": "counts",
"traffic": [...], "routed": [...]}`` and ``{"k": "close", "deadline_s": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import (
    ByteReceiveStream,
    ByteSendStream,
    ObjectReceiveStream,
    Process,
    TaskStatus,
)
from anyio.streams.buffered import BufferedByteReceiveStream

from .. import telemetry
from ..capture.capture import Capture
from ..config import Config
from ..stats import Stats
from .queue import TracedCapture
from .traffic import DailyTraffic

__all__ = ["FRAME", "STATUS_INTERVAL_S", "Handoff", "capture_frame", "frame", "read_frame"]

log = logging.getLogger("shadowroute")

FRAME = struct.Struct(">III")
STATUS_INTERVAL_S = 1.0
"""How often the mirror process reports its counts and database state."""
RESTART_DELAY_S = 1.0
"""The wait before starting another mirror process; doubled after each one that ended within
:data:`STEADY_S` of its start (up to :data:`MAX_RESTART_DELAY_S`), so a child that cannot
start (a broken install, an unreadable config) does not spin."""
MAX_RESTART_DELAY_S = 60.0
STEADY_S = 10.0
EXIT_MARGIN_S = 10.0
"""How long past the shutdown deadline the sidecar waits for the child's last write."""
BATCH = 256
"""Captures written at once, at most (one write call)."""
MAX_STATUS_BYTES = 64 * 1024 * 1024


def frame(head: dict[str, Any], first: bytes = b"", second: bytes = b"") -> bytes:
    header = json.dumps(head, separators=(",", ":"), ensure_ascii=False).encode()
    return b"".join((FRAME.pack(len(header), len(first), len(second)), header, first, second))


def capture_frame(capture: Capture) -> bytes:
    """One queued capture as a frame: its raw bodies untouched, or (a capture of
    ``POST /v1/captures``) its request and response as JSON."""
    head: dict[str, Any] = {
        "task": capture.task, "api": capture.api, "streamed": capture.streamed,
        "latency_ms": capture.latency_ms, "model": capture.primary_model,
        "metadata": capture.metadata, "at": capture.created_at.timestamp(),
        "reverse_of": capture.reverse_of, "source": capture.source,
        "origin": telemetry.context_ids(getattr(capture, "origin", None)),
    }
    if capture.raw_request is not None and capture.raw_response is not None:
        head["k"], head["encoding"] = "raw", capture.content_encoding
        return frame(head, capture.raw_request, capture.raw_response)
    head["k"], head["not_carried"] = "parsed", capture.not_carried
    return frame(head, json.dumps(capture.request).encode(), json.dumps(capture.result).encode())


def capture_of(head: dict[str, Any], first: bytes, second: bytes) -> TracedCapture:
    """The capture a ``raw`` or ``parsed`` frame carries (the mirror process's side), linked
    to the sidecar's request span as it would be in process."""
    common = {
        "origin": telemetry.context_of(head.get("origin")),
        "task": head["task"], "api": head["api"], "streamed": head["streamed"],
        "latency_ms": head["latency_ms"], "primary_model": head["model"],
        "metadata": head["metadata"], "reverse_of": head["reverse_of"],
        "source": head["source"], "created_at": datetime.fromtimestamp(head["at"], UTC),
    }
    if head["k"] == "raw":
        return TracedCapture(raw_request=first, raw_response=second,
                             content_encoding=head["encoding"], **common)
    return TracedCapture(request=json.loads(first), result=json.loads(second),
                         not_carried=list(head["not_carried"] or ()), **common)


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes, bytes] | None:
    """The next frame from ``reader``; ``None`` at a clean end of the stream (a stream that
    ends inside a frame raises ``asyncio.IncompleteReadError``)."""
    try:
        prefix = await reader.readexactly(FRAME.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    head_size, first_size, second_size = FRAME.unpack(prefix)
    head = json.loads(await reader.readexactly(head_size))
    return head, await reader.readexactly(first_size), await reader.readexactly(second_size)


class Handoff:
    """The sidecar's side: runs the mirror process, feeds it the queue, keeps its status."""

    def __init__(self, config: Config, stats: Stats, traffic: DailyTraffic, *,
                 on_error: Callable[[str, BaseException], None], idle: bool = True) -> None:
        self.config, self.stats, self.traffic = config, stats, traffic
        self._on_error = on_error
        self._command = [sys.executable, "-m", "shadowroute.pipeline.mirror_process",
                         *(["--idle"] if idle else [])]
        self.child = Stats()
        """The running mirror process's counts, as it last reported them."""
        self._ended = Stats()
        """The counts of mirror processes that ended (a restart does not forget them)."""
        self.database = "starting"
        """The database state the child last reported (see ``Shadow.database_state``)."""
        self.final: dict[str, Any] | None = None
        """The child's last status, sent once it stopped: its shutdown report."""
        self._deadline_at: float | None = None
        self._stopping = False
        self._process: Process | None = None
        self._unsent: tuple[int, bytes] | None = None

    def open(self) -> None:
        """Make what needs the event loop (:meth:`run` starts the process)."""
        self.fed = anyio.Event()
        """Set once every queued capture and the close frame were written."""
        self.done = anyio.Event()
        """Set once the mirror process has exited (or was never started) for good."""
        self._feeding = anyio.CancelScope()
        self._lock = anyio.Lock()

    def totals(self) -> Stats:
        """The sidecar's counts and the mirror process's as one pipeline: the sidecar's
        requests and queue, the child's mirroring and storage; captures handed over are not
        counted twice (the child's ledger says where they went)."""
        total = self.stats.plus(self._ended).plus(self.child)
        total.enqueued = self.stats.enqueued
        total.forwarded = 0
        return total

    def closing(self, deadline_s: float) -> None:
        """Shutdown has begun: the queue is closed; the child gets what is left of
        ``deadline_s`` (from now) once the queue is written."""
        self._deadline_at = time.monotonic() + deadline_s

    def stop_feeding(self) -> None:
        """The deadline passed: stop writing (what is still queued is dropped by the caller)
        and tell the child (``SIGUSR1``) to drop what it has not started and cut its calls."""
        self._stopping = True
        self._feeding.cancel()
        cut = getattr(signal, "SIGUSR1", None)  # not on Windows: the child then uses its deadline
        if cut is not None and self._process is not None and self._process.returncode is None:
            self._process.send_signal(cut)

    def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()

    async def run(self, receive: ObjectReceiveStream[Capture]) -> None:
        """Run mirror processes, one at a time, until the queue has ended and the last one
        stopped."""
        quick = 0  # mirror processes in a row that ended within STEADY_S of their start
        try:
            async with receive:
                while True:
                    began = time.monotonic()
                    try:
                        if await self._session(receive):
                            return
                    except Exception as exc:  # a bug here must not stop the relay
                        self._on_error("mirror_process", exc)
                        self.kill()
                    self.stats.mirror_process_exits += 1
                    self._ended = self._ended.plus(self.child)
                    self.child, self.database = Stats(), "starting"
                    quick = 0 if time.monotonic() - began > STEADY_S else quick + 1
                    await anyio.sleep(min(RESTART_DELAY_S * 2 ** max(quick - 1, 0),
                                          MAX_RESTART_DELAY_S))
        finally:
            self.fed.set()
            self.done.set()

    async def _session(self, receive: ObjectReceiveStream[Capture]) -> bool:
        """One mirror process from start to exit; whether it ended because it was asked to."""
        try:
            process = await anyio.open_process(self._command, stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, stderr=None)
        except OSError as exc:
            self._on_error("mirror_process", exc)
            return False
        self._process = process
        self._feeding = anyio.CancelScope()
        if self._stopping:
            self._feeding.cancel()
        assert process.stdin is not None and process.stdout is not None
        stdin, asked = process.stdin, False
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._listen, process.stdout)
            try:
                await self._send(stdin, frame({"k": "config"}, pickle.dumps(self.config)))
                if self._unsent is not None:  # refused by the process before this one
                    await self._send(stdin, self._unsent[1])
                    self.stats.forwarded += self._unsent[0]
                    self._unsent = None
                counting = await tg.start(self._counts, stdin)
                with self._feeding:
                    await self._feed(receive, stdin)
                counting.cancel()
                if self._feeding.cancel_called and not self._stopping:
                    raise anyio.BrokenResourceError  # the child closed its stdout: it is gone
                asked = True
                await self._send(stdin, self._counts_frame() + frame(
                    {"k": "close", "deadline_s": self._left()}))
                await stdin.aclose()
                self.fed.set()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
            code = await process.wait()
            tg.cancel_scope.cancel()
        self._process = None
        if code != 0 or not asked:
            log.error("shadowroute: the mirror process exited with status %s%s", code,
                      "" if asked else "; starting another (captures it held are lost)")
        return asked

    async def _feed(self, receive: ObjectReceiveStream[Capture], stdin: ByteSendStream) -> None:
        """Write captures as they come until the queue ends."""
        stats = self.stats
        while True:
            try:
                batch = [await receive.receive()]
            except anyio.EndOfStream:
                return
            while len(batch) < BATCH:
                try:
                    batch.append(receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            stats.queue_depth -= len(batch)
            frames = []
            for capture in batch:
                try:
                    frames.append(capture_frame(capture))
                except Exception as exc:  # a parsed capture JSON cannot carry
                    stats.capture_failed()
                    self._on_error("capture", exc)
            # Kept until written: a batch the pipe refused (the child died) goes to the next
            # mirror process first. One whose write was cancelled at the deadline is in the
            # pipe's buffer already: the child's ledger accounts for it.
            self._unsent = (len(frames), b"".join(frames))
            await self._send(stdin, self._unsent[1])
            stats.forwarded += self._unsent[0]
            self._unsent = None

    async def _send(self, stdin: ByteSendStream, data: bytes) -> None:
        async with self._lock:
            await stdin.send(data)

    def _counts_frame(self) -> bytes:
        traffic, routed = self.traffic.take()
        return frame({"k": "counts", "traffic": traffic, "routed": routed}) \
            if traffic or routed else b""

    async def _counts(self, stdin: ByteSendStream, *,
                      task_status: TaskStatus[anyio.CancelScope] = anyio.TASK_STATUS_IGNORED,
                      ) -> None:
        """The day's traffic counts, handed over every ``[store] flush_interval_s`` until
        the scope it starts with is cancelled (then the close frame carries the rest)."""
        with anyio.CancelScope() as scope:
            task_status.started(scope)
            while True:
                await anyio.sleep(self.config.store.flush_interval_s)
                data = self._counts_frame()
                try:
                    if data:
                        await self._send(stdin, data)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    return  # the child is gone: the session sees it

    def _left(self) -> float:
        if self._deadline_at is None:
            return self.config.mirror.shutdown_deadline_s
        return max(0.0, self._deadline_at - time.monotonic())

    async def _listen(self, stdout: ByteReceiveStream) -> None:
        """Keep the child's last status until it closes its stdout (it has exited: stop
        feeding it, so that another is started at once)."""
        lines = BufferedByteReceiveStream(stdout)
        while True:
            try:
                line = await lines.receive_until(b"\n", MAX_STATUS_BYTES)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError,
                    anyio.BrokenResourceError):
                self._feeding.cancel()
                return
            try:
                status = json.loads(line)
                self.child = Stats.restore(status["stats"])
                self.database = str(status["database"])
            except (ValueError, KeyError, TypeError) as exc:
                self._on_error("mirror_process", exc)
                continue
            if status.get("final"):
                self.final = status
