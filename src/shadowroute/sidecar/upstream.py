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

Calls go straight to aiohttp (:class:`AiohttpUpstream`): no httpx request or response objects
on the hot path (measured with ``bench/proxy_overhead.py``: they were a fifth of the sidecar's
CPU per relayed call). :class:`HttpxUpstream` sends through any httpx transport instead (tests,
in-process use). Both answer an :class:`Answer` or raise one of three errors: the upstream
could not be reached (:class:`Unreachable`: no answer at all, so a routed call may still go to
the primary), did not answer in time (:class:`TimedOut`), or answered something unreadable
(:class:`BadAnswer`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import aiohttp
import httpx

__all__ = [
    "MAX_FIELD_BYTES", "MAX_HEADERS", "AiohttpUpstream", "Answer", "BadAnswer", "HttpxUpstream",
    "TimedOut", "Unreachable", "Upstream", "UpstreamError",
]

MAX_FIELD_BYTES = 64 * 1024
"""Longest header line accepted from an upstream (aiohttp's own default is 8 KiB; browsers
and curl take far longer ones)."""
MAX_HEADERS = 1024
"""Most headers accepted in one upstream answer (aiohttp's own default is 128)."""
CONNECT_TIMEOUT_S = 10.0
_CHUNK = 64 * 1024
_NOT_OURS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
"""Headers aiohttp would add on its own when the client did not send them."""

Headers = Sequence[tuple[bytes, bytes]]
Content = bytes | AsyncIterable[bytes]
OnWait = Callable[[int, float | None], None]
"""``on_wait(change, seconds)``: +1 when a call starts waiting for a connection, -1 with the
seconds it waited when it got one."""


class UpstreamError(Exception):
    """A call that got no usable answer from its upstream."""


class Unreachable(UpstreamError):
    """No answer at all: refused, unknown host, TLS failure, no connection within the connect
    timeout, or the connection closed before an answer. ``timeout``: it was a timeout."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class TimedOut(UpstreamError):
    """Connected, but no answer (or no next byte of it) within the read timeout."""


class BadAnswer(UpstreamError):
    """An answer that is not readable HTTP (a bad status line, oversized headers, ...)."""


class Answer:
    """An upstream's answer while it is relayed: status, headers (``headers.get`` is case
    insensitive; ``raw_headers`` as sent, repeated ones included) and the body as it arrives,
    still content-encoded. ``stream`` is async-iterable with ``aclose()``."""

    __slots__ = ("headers", "raw_headers", "status_code", "stream")

    def __init__(self, status_code: int, headers: Any, raw_headers: Headers, stream: Any) -> None:
        self.status_code, self.headers, self.raw_headers = status_code, headers, raw_headers
        self.stream = stream

    def aiter_raw(self) -> AsyncIterator[bytes]:
        return self.stream.__aiter__()

    async def aclose(self) -> None:
        await self.stream.aclose()


class Upstream(Protocol):
    async def send(self, method: str, url: str, headers: Headers, content: Content) -> Answer: ...

    async def aclose(self) -> None: ...


def _header_text(value: bytes) -> str:
    """A header value as aiohttp takes it (it writes UTF-8): UTF-8 bytes go out unchanged."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class _AiohttpBody:
    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_chunked(_CHUNK):
            yield chunk

    async def aclose(self) -> None:
        # Back to the pool when the body was read to its end; closed otherwise.
        self._response.release()


class AiohttpUpstream:
    """Calls over one aiohttp session (see the module docstring), created on first use inside
    the running event loop. ``read_timeout_s``: the longest wait for the answer and between
    two of its chunks (``None``: no limit)."""

    def __init__(self, max_connections: int, read_timeout_s: float | None,
                 on_wait: OnWait | None = None) -> None:
        self._limit, self._on_wait = max_connections, on_wait
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=read_timeout_s,
            connect=read_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        trace = aiohttp.TraceConfig()
        if self._on_wait is not None:
            waiting = self._on_wait

            async def queued(_: Any, context: Any, __: Any) -> None:
                context.queued_at = time.perf_counter()
                waiting(1, None)

            async def dequeued(_: Any, context: Any, __: Any) -> None:
                waiting(-1, time.perf_counter() - getattr(context, "queued_at", time.perf_counter()))

            trace.on_connection_queued_start.append(queued)
            trace.on_connection_queued_end.append(dequeued)
        connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=0,
                                         ssl=httpx.create_ssl_context())
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_NOT_OURS, auto_decompress=False, trace_configs=[trace],
            max_line_size=MAX_FIELD_BYTES, max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADERS, timeout=self._timeout,
        )

    async def send(self, method: str, url: str, headers: Headers, content: Content) -> Answer:
        session = self._session
        if session is None:
            session = self._session = self._open()
        out = [(k.decode("latin-1"), _header_text(v)) for k, v in headers]
        try:
            response = await session.request(
                method, url, headers=out, data=content or None, allow_redirects=False,
                compress=False)
        except aiohttp.ServerTimeoutError as exc:  # the connect timeout is one too
            if isinstance(exc, aiohttp.ConnectionTimeoutError):
                raise Unreachable(f"{type(exc).__name__}: {exc}", timeout=True) from exc
            raise TimedOut(f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientConnectionError as exc:  # refused, DNS, TLS, closed or reset
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:
            raise TimedOut(type(exc).__name__) from exc
        except (aiohttp.ClientResponseError, aiohttp.ClientPayloadError) as exc:
            raise BadAnswer(f"{type(exc).__name__}: {exc}") from exc
        return Answer(response.status, response.headers, response.raw_headers,
                      _AiohttpBody(response))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _HttpxBody:
    __slots__ = ("_response",)

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._response.is_stream_consumed:  # a transport that hands back read responses
            yield self._response.content
            return
        async for chunk in self._response.aiter_raw():
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxUpstream:
    """Calls through an httpx transport (an ``httpx.MockTransport`` in tests, say); its
    exceptions become the module's three errors as aiohttp's do."""

    def __init__(self, transport: httpx.AsyncBaseTransport, read_timeout_s: float | None) -> None:
        self.transport = transport
        self._timeout = httpx.Timeout(read_timeout_s, connect=CONNECT_TIMEOUT_S).as_dict()

    async def send(self, method: str, url: str, headers: Headers, content: Content) -> Answer:
        request = httpx.Request(method, url, headers=list(headers), content=content,
                                extensions={"timeout": self._timeout})
        try:
            response = await self.transport.handle_async_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}",
                              timeout=isinstance(exc, httpx.ConnectTimeout)) from exc
        except httpx.TimeoutException as exc:
            raise TimedOut(f"{type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        response.request = request
        return Answer(response.status_code, response.headers, response.headers.raw,
                      _HttpxBody(response))

    async def aclose(self) -> None:
        await self.transport.aclose()
