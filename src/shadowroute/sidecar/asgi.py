"""ASGI plumbing of the sidecar: an endpoint for every method, and a relayed body of known
length sent without Starlette's per-response disconnect watch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

__all__ = ["EveryMethod", "KnownLength"]


class KnownLength(StreamingResponse):
    """A relayed body of known length, sent as it arrives without the task group Starlette
    starts per response to watch for a disconnect (uvicorn ignores sends to a client that
    left, and the body ends by itself)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.stream_response(send)


class EveryMethod:
    """An endpoint for every HTTP method, OPTIONS (CORS preflight) and custom ones included:
    Starlette routes a plain function for GET and HEAD only, an ASGI app for any method."""

    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        response = await self.handler(Request(scope, receive))
        await response(scope, receive, send)
