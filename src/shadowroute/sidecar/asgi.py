"""ASGI plumbing of the sidecar: the front door that sends relayed calls straight to the proxy,
an endpoint for every method, and a relayed body of known length sent without Starlette's
per-response disconnect watch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["EveryMethod", "Front", "KnownLength", "Reply"]


class KnownLength:
    """A relayed body of ``length`` bytes, sent as it arrives, the chunk that completes it
    marked as the last (no empty closing message), and without the task group Starlette
    starts per response to watch for a disconnect (uvicorn ignores sends to a client that
    left, and the body ends by itself). ``body`` is read to its end before the last chunk is
    sent, so what the relay does at the end (the capture, the metrics) is done when the
    client has the whole answer."""

    __slots__ = ("body", "length", "raw_headers", "status_code")

    def __init__(self, body: AsyncIterator[bytes], status_code: int, length: int) -> None:
        self.body, self.status_code, self.length = body, status_code, length
        self.raw_headers: list[tuple[bytes, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        left, last = self.length, b""
        async for chunk in self.body:
            left -= len(chunk)
            if left > 0:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            else:
                last = chunk  # the end of the body: the next read ends it
        await send({"type": "http.response.body", "body": last, "more_body": False})


Reply = Response | KnownLength
"""What the proxy answers with: an ASGI app for one response."""


class EveryMethod:
    """An endpoint for every HTTP method, OPTIONS (CORS preflight) and custom ones included:
    Starlette routes a plain function for GET and HEAD only, an ASGI app for any method."""

    def __init__(self, handler: Callable[[Request], Awaitable[Reply]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        response = await self.handler(Request(scope, receive))
        await response(scope, receive, send)


class Front:
    """The sidecar's ASGI app: an HTTP request for any path but the sidecar's own endpoints
    goes straight to ``proxy``; the rest (its endpoints, lifespan) to the Starlette ``app``.

    Every relayed call used to pass Starlette's router and its two middleware layers, about a
    tenth of the sidecar's CPU per call (py-spy, 16 clients) for nothing the proxy uses: it
    answers every error itself. ``state`` and ``router`` (its lifespan) are the Starlette
    app's."""

    def __init__(self, app: Any, proxy: Callable[[Any, Any, Any], Awaitable[None]],
                 own: frozenset[str]) -> None:
        self.app, self.proxy, self.own = app, proxy, own
        self.state, self.router = app.state, app.router

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] not in self.own:
            await self.proxy(scope, receive, send)
        else:
            await self.app(scope, receive, send)
