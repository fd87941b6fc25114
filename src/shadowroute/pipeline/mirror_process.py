"""The mirror process (``python -m shadowroute.pipeline.mirror_process [--idle]``): the other
end of :mod:`.handoff`.

It reads the sidecar's frames on stdin: the configuration first, then captures (queued for
its own :class:`~shadowroute.Shadow`, which mirrors and stores them as the sidecar would in
process), the day's traffic counts, and a close frame with what is left of the shutdown
deadline. It writes its status, one JSON line a second, on the stdout it was given (stray
prints of hooks go to stderr instead) and a last one once stopped. It stops when its stdin
ends, never on SIGINT or SIGTERM (a Ctrl-C reaches the whole process group: the sidecar
decides when it stops); ``SIGUSR1`` means the deadline passed: what it has not started is
dropped, counted, and the calls under way are cut. ``--idle``: it runs at the idle scheduling
class (Linux; elsewhere the lowest priority), so it uses only CPU the sidecar leaves.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import sys
from typing import IO, Any

import anyio

from .core import Shadow
from .handoff import STATUS_INTERVAL_S, capture_of, read_frame

__all__ = ["main"]


def _lower_priority() -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


async def _status(shadow: Shadow, out: IO[bytes], **extra: Any) -> None:
    status = {"stats": shadow.stats.snapshot(), "database": await shadow.database_state(),
              **extra}
    out.write(json.dumps(status, separators=(",", ":")).encode() + b"\n")
    out.flush()


async def _report(shadow: Shadow, out: IO[bytes]) -> None:
    while True:
        await _status(shadow, out)
        await anyio.sleep(STATUS_INTERVAL_S)


async def _take(reader: asyncio.StreamReader, shadow: Shadow, cut: anyio.Event) -> float | None:
    """Queue the captures and add the counts the sidecar sends, until its close frame (its
    deadline) or the end of the stream (``None``: the sidecar is gone)."""
    while True:
        got = await read_frame(reader)
        if got is None:
            return None
        head, first, second = got
        kind = head["k"]
        if kind == "close":
            return float(head["deadline_s"])
        if kind == "counts":
            shadow.add_counts(head["traffic"], head["routed"])
            continue
        try:
            capture = capture_of(head, first, second)
        except Exception as exc:  # counted as the sidecar would count an unreadable capture
            shadow.stats.enqueued += 1
            shadow.stats.capture_failed()
            shadow._on_error("capture", exc)
            continue
        await shadow.accept(capture, cut)


async def _run(out: IO[bytes]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                 os.fdopen(0, "rb", buffering=0))
    got = await read_frame(reader)
    if got is None or got[0].get("k") != "config":
        raise SystemExit("shadowroute mirror process: no configuration on stdin")
    shadow = Shadow(pickle.loads(got[1]))
    cut = anyio.Event()
    try:
        loop.add_signal_handler(signal.SIGUSR1, cut.set)
    except (AttributeError, NotImplementedError, RuntimeError):  # no such signal here
        pass
    await shadow.start()
    deadline = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_report, shadow, out)
            deadline = await _take(reader, shadow, cut)
            tg.cancel_scope.cancel()
    finally:
        report = await shadow.aclose(0.0 if cut.is_set() else deadline)
    await _status(shadow, out, final=True, report={
        "drained": report.drained, "dropped": report.dropped, "spooled": report.spooled,
        "seconds": report.seconds, "lost": report.lost})


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    for name in ("SIGINT", "SIGTERM", "SIGUSR1"):  # SIGUSR1: until the loop takes it
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    if "--idle" in args:
        _lower_priority()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() of a hook goes to stderr, never into the status lines
    anyio.run(_run, out)


if __name__ == "__main__":
    main()
