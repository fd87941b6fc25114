"""ASGI plumbing of the sidecar: the front door that sends relayed calls straight to the proxy,
an endpoint for every method, and a relayed body of known length sent without Starlette's
per-response disconnect watch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

__all__ = ["EveryMethod", "Front", "KnownLength"]


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
