"""Remote mode: an app process captures as usual but leaves mirroring and storage to a sidecar.

With ``remote = "http://127.0.0.1:8787"`` in the config, :class:`~shadowroute.Shadow` runs no
mirror workers and opens no database: a :class:`Forwarder` resolves the queued captures (off
the request path, as workers would) and posts them in batches to the sidecar's
``POST /v1/captures``. Sampling is decided here, so only sampled calls cross the network.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import anyio
import httpx
from anyio.abc import ObjectReceiveStream

from ..formats.chat import NotShadowable
from ..stats import Stats
from .capture import Capture

__all__ = ["Forwarder"]

RETRY_DELAY_S = 0.5


class Forwarder:
    """Sends captures to a sidecar in batches; one retry, then the batch is dropped and counted."""

    def __init__(
        self,
        url: str,
        *,
        stats: Stats,
        on_error: Callable[[str, BaseException], None],
        batch_size: int = 100,
        flush_interval_s: float = 0.25,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str | None = None,
        name: str | None = None,
    ) -> None:
        """``token``: the sidecar's ingest token (sent as ``Authorization: Bearer``);
        ``name``: how the sidecar labels these captures (``remote:<name>``; the host name by
        default)."""
        self.url = url.rstrip("/") + "/v1/captures"
        self._headers = {"x-shadowroute-source": name or socket.gethostname()}
        if token:
            self._headers["authorization"] = f"Bearer {token}"
        self._stats = stats
        self._on_error = on_error
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._timeout_s = timeout_s
        self._transport = transport

    async def run(self, receive: ObjectReceiveStream[Capture]) -> None:
        async with receive, httpx.AsyncClient(transport=self._transport, timeout=self._timeout_s,
                                              headers=self._headers) as client:
            closed = False
            while not closed:
                try:
                    batch = [await receive.receive()]
                except anyio.EndOfStream:
                    break
                with anyio.move_on_after(self._flush_interval_s):
                    while len(batch) < self._batch_size:
                        try:
                            batch.append(await receive.receive())
                        except anyio.EndOfStream:
                            closed = True
                            break
                self._stats.queue_depth -= len(batch)
                await self._send(client, batch)

    async def _send(self, client: httpx.AsyncClient, batch: list[Capture]) -> None:
        items = []
        for capture in batch:
            try:
                capture.resolve()
                items.append(_payload(capture))
            except NotShadowable as exc:
                self._stats.discarded["not_shadowable"] += 1
                self._stats.not_shadowable[exc.feature] += 1
            except Exception as exc:
                self._stats.capture_failed()
                self._on_error("capture", exc)
        if not items:
            return
        try:
            await self._post(client, items)
        except anyio.get_cancelled_exc_class():
            self._stats.dropped_shutdown += len(items)  # the shutdown deadline passed mid-send
            self._stats.discarded["shutdown"] += len(items)
            raise

    async def _post(self, client: httpx.AsyncClient, items: list[dict[str, Any]]) -> None:
        error: BaseException | None = None
        for attempt in range(2):
            if attempt:
                await anyio.sleep(RETRY_DELAY_S)
            try:
                response = await client.post(self.url, json={"captures": items})
            except httpx.HTTPError as exc:
                error = exc
                continue
            if response.status_code == 202:
                self._stats.forwarded += len(items)
                return
            error = RuntimeError(f"{self.url} answered {response.status_code}: {response.text[:300]}")
            if response.status_code < 500:
                break  # the sidecar refused the batch; sending it again will not help
        self._stats.dropped_forward += len(items)
        assert error is not None
        self._on_error("forward", error)


def _payload(capture: Capture) -> dict[str, Any]:
    return {
        "task": capture.task,
        "request": capture.request,
        "response": capture.response if capture.response is not None else (capture.output_text or ""),
        "latency_ms": capture.latency_ms,
        "metadata": capture.metadata,
        "sampled": True,
        **({"reverse_of": capture.reverse_of} if capture.reverse_of is not None else {}),
        **({"not_carried": capture.not_carried} if capture.not_carried else {}),
    }
