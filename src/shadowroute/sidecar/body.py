"""Reading request bodies: whole up to the capture limit, streamed on beyond it.

The sidecar captures (and mirrors) a call only when it holds its whole body, so a body is read
into memory up to ``[sidecar] max_body_bytes`` and no further: a larger one is relayed to the
upstream as it arrives (:class:`Body` ``rest``), never held, and not captured. ``read_body``
is the strict form, for ``/v1/captures``, where the body *is* the capture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.requests import Request

__all__ = ["Body", "BodyTooLarge", "read_body", "read_head"]


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
