"""Reading request bodies with a size limit (413 instead of unbounded memory)."""

from __future__ import annotations

from starlette.requests import Request

__all__ = ["BodyTooLarge", "read_body"]


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    # isascii: "²".isdigit() is true too; the length check keeps int() off 5,000-digit values
    if declared and declared.isascii() and declared.isdigit() and (
        len(declared) > 19 or int(declared) > limit
    ):
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
