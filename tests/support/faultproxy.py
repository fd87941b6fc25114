"""A fault-injecting proxy on loopback, for the fault suite (``pytest -m fault``).

:class:`TcpProxy` pipes bytes to an upstream (a database, an HTTP server) and can :meth:`cut`
the link like a server that stops: every open connection is reset and new ones are refused
until :meth:`restore`. :class:`FaultProxy` does the same for one-request-per-connection HTTP
and, by its :attr:`~FaultProxy.fault`, answers in place of the upstream the way a broken
provider would:

========= ==================================================================================
pass      forward the request, relay the answer
hang      read the request, never answer (until the client gives up)
drip      relay the answer one small piece every ``drip_interval_s`` (headers at once)
reset     read the request, then reset the connection (TCP RST)
429       ``429 Too Many Requests`` with ``Retry-After: retry_after`` (a rate-limit storm)
500       ``500`` with an API-shaped JSON error
bad_json  ``200 application/json`` whose body is cut half-way
bad_sse   ``200 text/event-stream`` with broken events and no terminator
========= ==================================================================================

Both run their own event loop in a daemon thread; use them as context managers.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections import Counter
from types import TracebackType
from typing import Self

from shadowroute.serving import tcp_socket

__all__ = ["FAULTS", "FaultProxy", "TcpProxy"]

FAULTS = ("pass", "hang", "drip", "reset", "429", "500", "bad_json", "bad_sse")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the peer sees a connection reset, not a clean end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class TcpProxy:
    """``127.0.0.1:<port>`` -> ``upstream``; :meth:`cut` and :meth:`restore` the link."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="fault-proxy")
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    def __enter__(self) -> Self:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _listen(self) -> None:
        sock = tcp_socket("127.0.0.1", self.port)  # the same port again after a restore()
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._open):
            _reset(writer)
        self._open.clear()

    def cut(self) -> None:
        """Like a server going down: reset every connection, refuse new ones."""
        self._call(self._stop())

    def restore(self) -> None:
        """Listen again on the same port."""
        self._call(self._listen())

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        try:
            await self.handle(reader, writer)
            writer.close()  # after what was written has gone out
            await writer.wait_closed()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            writer.transport.abort()
        finally:
            self._open.discard(writer)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._open.add(up_writer)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._open.discard(up_writer)
            up_writer.transport.abort()

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


class FaultProxy(TcpProxy):
    """An HTTP upstream behind a switchable fault (one request per connection)."""

    def __init__(self, upstream_host: str, upstream_port: int, *, fault: str = "pass",
                 retry_after: float = 1.0, drip_interval_s: float = 0.2,
                 delay_s: float = 0.0) -> None:
        super().__init__(upstream_host, upstream_port)
        self.fault = fault
        self.delay_s = delay_s
        """``pass``: hold each request this long before forwarding it (a slow upstream)."""
        self.retry_after = retry_after
        self.drip_interval_s = drip_interval_s
        self.hits: Counter[str] = Counter()
        """Requests seen, by the fault they met."""

    @property
    def fault(self) -> str:
        return self._fault

    @fault.setter
    def fault(self, value: str) -> None:
        if value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; one of {', '.join(FAULTS)}")
        self._fault = value

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        fault = self.fault
        self.hits[fault] += 1
        if fault == "hang":
            await reader.read()  # until the client closes
        elif fault == "reset":
            _reset(writer)
            return
        elif fault in ("pass", "drip"):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            answer = await self._forward(head, body)
            if fault == "pass":
                writer.write(answer)
            else:
                split = answer.index(b"\r\n\r\n") + 4
                writer.write(answer[:split])
                for i in range(split, len(answer), 8):
                    await writer.drain()
                    await asyncio.sleep(self.drip_interval_s)
                    writer.write(answer[i:i + 8])
        else:
            writer.write(self._canned(fault))
        await writer.drain()

    async def _forward(self, head: bytes, body: bytes) -> bytes:
        lines = [
            line for line in head.rstrip(b"\r\n").split(b"\r\n")
            if not line.lower().startswith((b"connection:", b"keep-alive:"))
        ]
        request = b"\r\n".join([*lines, b"connection: close"]) + b"\r\n\r\n" + body
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            up_writer.write(request)
            await up_writer.drain()
            return await up_reader.read(-1)
        finally:
            up_writer.close()

    def _canned(self, fault: str) -> bytes:
        if fault == "429":
            status, headers = "429 Too Many Requests", f"retry-after: {self.retry_after:g}\r\n"
            body = json.dumps({"error": {"message": "rate limited", "type": "rate_limit"}})
        elif fault == "500":
            status, headers = "500 Internal Server Error", ""
            body = json.dumps({"error": {"message": "boom", "type": "server_error"}})
        elif fault == "bad_json":
            status, headers = "200 OK", ""
            body = '{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"mess'
        else:  # bad_sse
            status, headers = "200 OK", ""
            body = ('data: {"id": "c", "choices": [{"delta": {"content": "ok"\n\n'
                    'event: content_block_delta\ndata: [1, 2\n\n: comment\ndata: not json\n\n')
        kind = "text/event-stream" if fault == "bad_sse" else "application/json"
        data = body.encode()
        return (f"HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {len(data)}\r\n"
                f"{headers}connection: close\r\n\r\n").encode() + data
