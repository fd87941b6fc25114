"""The sidecar's connection to its upstreams: a relay, not a client.

An HTTP client library acts for one user: it keeps cookies and adds the headers it likes
(``Accept``, ``Accept-Encoding: gzip``, ``User-Agent``, a ``Content-Type`` for bytes). The
sidecar acts for every client at once, so it must do neither: a cookie answered to one client
would go out with the next client's calls, and an ``Accept-Encoding`` the client never sent
makes the upstream compress for a client that cannot read it. So the aiohttp session behind
the sidecar keeps no cookies (``DummyCookieJar``), adds no header the client did not send
(``skip_auto_headers``), never decompresses, and reads the upstream's answer as leniently as a
direct client would (header lines up to :data:`MAX_FIELD_BYTES`, up to :data:`MAX_HEADERS`
headers). Its connection pool is as large as ``[sidecar] max_connections`` (0: no limit); a
call that has to wait for a connection is counted (``on_wait``), never queued silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from http.cookiejar import Cookie, CookieJar
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["MAX_FIELD_BYTES", "MAX_HEADERS", "NoCookies", "upstream_transport"]

MAX_FIELD_BYTES = 64 * 1024
"""Longest header line accepted from an upstream (aiohttp's own default is 8 KiB; browsers
and curl take far longer ones)."""
MAX_HEADERS = 1024
"""Most headers accepted in one upstream answer (aiohttp's own default is 128)."""
_NOT_OURS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
"""Headers aiohttp would add on its own when the client did not send them."""

OnWait = Callable[[int, float | None], None]
"""``on_wait(change, seconds)``: +1 when a call starts waiting for a connection, -1 with the
seconds it waited when it got one."""


class NoCookies(CookieJar):
    """A cookie jar that keeps nothing and sends nothing (httpx's client side of the same
    rule: the ``Set-Cookie`` of one client's answer is that client's alone)."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


def upstream_transport(max_connections: int, on_wait: OnWait | None = None) -> AiohttpTransport:
    """The httpx transport the sidecar forwards through (see the module docstring)."""

    def session() -> aiohttp.ClientSession:
        trace = aiohttp.TraceConfig()
        if on_wait is not None:
            waiting = on_wait

            async def queued(_: Any, context: Any, __: Any) -> None:
                context.queued_at = time.perf_counter()
                waiting(1, None)

            async def dequeued(_: Any, context: Any, __: Any) -> None:
                waiting(-1, time.perf_counter() - getattr(context, "queued_at", time.perf_counter()))

            trace.on_connection_queued_start.append(queued)
            trace.on_connection_queued_end.append(dequeued)
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0,
                                         ssl=httpx.create_ssl_context())
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_NOT_OURS, auto_decompress=False, trace_configs=[trace],
            max_line_size=MAX_FIELD_BYTES, max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADERS,
        )

    return AiohttpTransport(client=session)
