"""``SyncShadow``: the same pipeline for synchronous apps, on a background event-loop thread.

The caller's thread runs the primary call and decides sampling; the capture is handed to the
loop thread with ``call_soon_threadsafe`` (a few microseconds, never a wait on the loop).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from os import PathLike
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..capture.calls import Api, snapshot_request
from ..config import Config, load_config
from ..stats import Stats
from .core import Shadow, ShutdownReport

__all__ = ["SyncShadow"]

T = TypeVar("T")


class SyncShadow:
    """Synchronous front of a :class:`Shadow` running on its own thread.

    with SyncShadow.from_config("shadowroute.toml") as sh:
        answer = sh.shadow(task="classify_intent", request=req, call=lambda: client.chat...(**req))
    """

    def __init__(self, config: Config | None = None, **shadow_kwargs: Any) -> None:
        self.inner = Shadow(config, **shadow_kwargs)
        self.config = self.inner.config
        self._portal_cm: Any = None
        self._portal: BlockingPortal | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: anyio.Event | None = None
        self._deadline_s: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, path: str | PathLike[str] | None = None, **kwargs: Any) -> SyncShadow:
        return cls(load_config(path), **kwargs)

    @property
    def stats(self) -> Stats:
        return self.inner.stats

    def __enter__(self) -> SyncShadow:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        with self._lock:
            if self._portal is not None:
                raise RuntimeError("this SyncShadow is already running")
            self._portal_cm = start_blocking_portal(name="shadowroute")
            self._portal = self._portal_cm.__enter__()
            self._portal.start_task(self._run)

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        # Shadow's task group must be entered and exited by the same task: this one.
        self._loop = asyncio.get_running_loop()
        self._stop = anyio.Event()
        await self.inner.start()
        try:
            task_status.started()
            await self._stop.wait()
        finally:
            await self.inner.aclose(self._deadline_s)

    def close(self, deadline_s: float | None = None) -> ShutdownReport | None:
        """Drain within the deadline and stop the background thread."""
        with self._lock:
            if self._portal is None:
                return self.inner.shutdown_report
            portal, self._portal = self._portal, None
        self._deadline_s = deadline_s
        portal.call(self._stop.set)  # type: ignore[union-attr]
        self._portal_cm.__exit__(None, None, None)
        return self.inner.shutdown_report

    # ------------------------------------------------------------------ request path

    def shadow(
        self,
        *,
        task: str,
        request: dict[str, Any],
        call: Callable[[], T],
        metadata: dict[str, Any] | None = None,
        api: Api = "openai",
        output: Callable[[T], str | None] | None = None,
    ) -> T:
        """Run ``call()`` in this thread and return its result untouched (exceptions too)."""
        began = time.perf_counter()
        try:
            result = call()
        except Exception:
            self._post(self.inner.count_primary_error)
            raise
        latency_ms = (time.perf_counter() - began) * 1000
        snapshot = snapshot_request(request)  # the caller may mutate it once we return
        self._post(
            lambda: self.inner.offer(
                task, snapshot, result, latency_ms, metadata=metadata, api=api, output=output
            )
        )
        return result

    # The transport's Sink protocol, safe to call from any thread.

    def sample(
        self, task: str, model: str, key: Callable[[], bytes], *, reverse: bool = False
    ) -> bool:
        sampled = self.inner.would_sample(task, key, reverse=reverse)
        self._post(self.inner.count_offer, task, model, sampled)
        return sampled

    def offer_raw(self, task: str, **fields: Any) -> bool:
        self._post(lambda: self.inner.offer_raw(task, **fields))
        return True

    def count(self, name: str) -> None:
        self._post(self.inner.count, name)

    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None or self._portal is None:
            return  # not running: production goes on unshadowed
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed during shutdown
            pass
