"""Reading request bodies: whole up to the capture limit, streamed on beyond it.

The sidecar captures (and mirrors) a call only when it holds its whole body, so a body is read
into memory up to ``[sidecar] max_body_bytes`` and no further: a larger one is relayed to the
upstream as it arrives (:class:`Body` ``rest``), never held, and not captured. ``read_body``
is the strict form, for ``/v1/captures``, where the body *is* the capture.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ..capture.calls import Api

__all__ = ["Body", "BodyTooLarge", "is_upgrade", "read_body", "read_head", "readable"]


class BodyTooLarge(Exception):
    pass


@dataclass(slots=True)
class Body:
    head: bytes
    """The whole body (when ``rest`` is ``None``)."""
    rest: AsyncIterator[bytes] | None = None
    """A body larger than the capture limit: the chunks already read, then what the client
    has not sent yet, as it arrives."""

    async def stream(self) -> AsyncIterator[bytes]:
        """The whole body as it arrives."""
        if self.rest is None:
            yield self.head
            return
        async for chunk in self.rest:
            yield chunk


def _declared(request: Request) -> int | None:
    value = request.headers.get("content-length")
    # isascii: "²".isdigit() is true too; the length check keeps int() off 5,000-digit values
    if value and value.isascii() and value.isdigit():
        return int(value) if len(value) <= 19 else 10**19
    return None


async def read_head(request: Request, limit: int, ceiling: int | None = None) -> Body:
    """The body, whole if it is at most ``limit`` bytes, else its head and the rest as a
    stream. :class:`BodyTooLarge` beyond ``ceiling`` (``None``: no ceiling), as soon as it is
    known (from Content-Length, or while streaming on)."""
    declared = _declared(request)
    if ceiling is not None and declared is not None and declared > ceiling:
        raise BodyTooLarge
    chunks, size = [], 0
    incoming = request.stream()
    async for chunk in incoming:
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            return Body(b"", _streamed_on(chunks, incoming, size, ceiling))
    return Body(b"".join(chunks))


async def _streamed_on(read: list[bytes], incoming: AsyncIterator[bytes], size: int,
                       ceiling: int | None) -> AsyncIterator[bytes]:
    """The chunks already read (each let go of once sent: never joined into one copy), then
    the rest as it arrives, checked against the ceiling."""
    while read:
        yield read.pop(0)
    async for chunk in incoming:
        size += len(chunk)
        if ceiling is not None and size > ceiling:
            raise BodyTooLarge
        yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed ``limit`` bytes."""
    declared = _declared(request)
    if declared is not None and declared > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def is_upgrade(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """A WebSocket upgrade request (``Upgrade: websocket``)."""
    return any(k.lower() == b"upgrade" and b"websocket" in v.lower() for k, v in headers)


def readable(api: Api | None, body: Body,
             headers: Sequence[tuple[bytes, bytes]]) -> tuple[str | None, dict[str, Any]]:
    """(why the call is relayed without capture, or ``None``; the chat body parsed). Not
    captured: a body larger than the capture limit (``too_large``), a body the client encoded
    (``encoded``: gzip and the like), a chat call whose body is not a JSON object
    (``unparseable``). The upstream decides what to make of such calls: the sidecar is never
    stricter than it."""
    if body.rest is not None:
        return "too_large", {}
    if api is None:
        return None, {}
    if any(k.lower() == b"content-encoding" and v.strip().lower() not in (b"", b"identity")
           for k, v in headers):
        return "encoded", {}
    try:
        parsed = json.loads(body.head)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return "unparseable", {}
    return (None, parsed) if isinstance(parsed, dict) else ("unparseable", {})
