"""httpx transports that shadow the OpenAI and Anthropic SDKs with no other code change.

    client = openai.AsyncOpenAI(http_client=httpx.AsyncClient(transport=ShadowTransport(sh)))

``ShadowTransport`` wraps the real transport. For a sampled ``POST .../chat/completions`` or
``POST .../messages`` it tees the response stream: every chunk goes to the caller as it arrives
(SSE included), a copy is kept, and when the caller has read the whole body the raw bytes are
offered to the :class:`~shadowroute.Shadow`. Parsing happens later, in a mirror worker.

Works with clients of both ``httpx`` and ``httpx2`` (which current OpenAI and Anthropic SDKs use):
the classes derive from both packages' base classes, and the default inner transport is made by
whichever package built the request.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import httpx

from .calls import Api, api_for, model_from_body

try:  # current OpenAI/Anthropic SDKs are built on httpx2, a drop-in successor of httpx
    import httpx2
except ImportError:  # pragma: no cover - httpx2 is optional
    httpx2 = None

__all__ = [
    "FALLBACK_HEADER",
    "REVERSE_HEADER",
    "TASK_HEADER",
    "ShadowTransport",
    "SyncShadowTransport",
    "current_task",
    "plan_call",
    "task",
    "tee_async",
]

TASK_HEADER = "x-shadowroute-task"
REVERSE_HEADER = "x-shadowroute-reverse"
"""Set by the sidecar on a call it routed to a promoted model: names the primary it replaced,
so the call is sampled for the reverse shadow. Stripped before the request leaves."""
FALLBACK_HEADER = "x-shadowroute-fallback"
"""Set by the sidecar when it sends a call to the primary because the promoted model could not
be reached: that call was counted already (its routed attempt failed), so the transport neither
counts nor captures it. Stripped before the request leaves."""
MAX_CAPTURE_BYTES = 8 * 1024 * 1024
"""Responses larger than this pass through but are not captured (counted as ``oversize``)."""

_task: ContextVar[str | None] = ContextVar("shadowroute_task", default=None)


@contextmanager
def task(name: str) -> Iterator[None]:
    """Label the LLM calls made inside this block with a task type::

    with shadowroute.task("classify_intent"):
        await client.chat.completions.create(...)
    """
    token = _task.set(name)
    try:
        yield
    finally:
        _task.reset(token)


def current_task() -> str | None:
    return _task.get()


def _bases(name: str) -> tuple[type, ...]:
    found = [getattr(httpx, name)]
    if httpx2 is not None:
        found.append(getattr(httpx2, name))
    return tuple(found)


class Sink(Protocol):
    """Where the transport reports: a :class:`~shadowroute.Shadow` or a ``SyncShadow``."""

    def sample(self, task: str, model: str, key: Any, *, reverse: bool = False) -> bool: ...

    def offer_raw(self, task: str, **fields: Any) -> bool: ...

    def count(self, name: str) -> None: ...


class _Plan:
    """What the transport decided for one request, and how to finish it."""

    __slots__ = ("sink", "task", "api", "body", "model", "reverse_of", "source", "started")

    def __init__(
        self, sink: Sink, task: str, api: Api, body: bytes, model: str, reverse_of: str | None,
        source: str,
    ) -> None:
        self.sink, self.task, self.api, self.body, self.model = sink, task, api, body, model
        self.reverse_of, self.source = reverse_of, source
        self.started = time.perf_counter()

    def finish(
        self, response: Any, chunks: list[bytes], complete: bool, size: int, *, decoded: bool = False
    ) -> None:
        """Offer the captured body (still content-encoded, as on the wire, unless ``decoded``)."""
        try:
            if not complete:
                self.sink.count("abandoned")
                return
            if size > MAX_CAPTURE_BYTES:
                self.sink.count("oversize")
                return
            content_type = response.headers.get("content-type", "")
            self.sink.offer_raw(
                self.task,
                api=self.api,
                request_body=self.body,
                response_body=b"".join(chunks),
                content_encoding=None if decoded else response.headers.get("content-encoding"),
                streamed=content_type.startswith("text/event-stream"),
                latency_ms=(time.perf_counter() - self.started) * 1000,
                model=self.model,
                reverse_of=self.reverse_of,
                source=self.source,
            )
        except Exception:  # never into production
            self.sink.count("capture_errors")


def plan_call(sink: Sink, api: Api | None, body: bytes, task: str | None, *,
              reverse_of: str | None = None, fallback: bool = False,
              source: str = "transport") -> _Plan | None:
    """Whether a call of ``api`` with this raw ``body`` is sampled, and how to finish its
    capture: ``None`` when it is not a chat call, a fallback (counted already), or not drawn.
    ``task``: the task type named for it (``None``: the :func:`task` context, else
    ``"default"``). Never raises."""
    if api is None or fallback:
        return None
    try:
        name = task or _task.get() or "default"
        model = model_from_body(body)
        if not sink.sample(name, model, lambda: body, reverse=reverse_of is not None):
            return None
        return _Plan(sink, name, api, body, model, reverse_of, source)
    except Exception:
        sink.count("capture_errors")
        return None


def _plan(sink: Sink, request: Any, default_task: str | None,
          source: str = "transport") -> _Plan | None:
    """Strip our headers; decide whether this call is sampled. Never raises."""
    header_task = request.headers.get(TASK_HEADER)
    if header_task is not None:
        del request.headers[TASK_HEADER]
    reverse_of = request.headers.get(REVERSE_HEADER)
    if reverse_of is not None:
        del request.headers[REVERSE_HEADER]
    fallback = request.headers.get(FALLBACK_HEADER)
    if fallback is not None:
        del request.headers[FALLBACK_HEADER]
    api = api_for(request.method, request.url.path)
    if api is None or fallback is not None:
        return None
    try:
        body: bytes = request.content
    except Exception:
        sink.count("capture_errors")
        return None
    return plan_call(sink, api, body, header_task or _task.get() or default_task,
                     reverse_of=reverse_of, source=source)


def _default_transport(request: Any, kind: str) -> Any:
    package = importlib.import_module(type(request).__module__.split(".")[0])
    return getattr(package, kind)()


_STREAM_ENDS = (b"data: [DONE]", b"event: message_stop")


def _ends_stream(chunks: list[bytes]) -> bool:
    """Whether an SSE body read only up to its end marker is whole: SDKs stop reading at
    OpenAI's ``[DONE]`` / Anthropic's ``message_stop`` without waiting for end-of-body."""
    tail = b"".join(chunks[-2:])[-512:]
    return any(marker in tail for marker in _STREAM_ENDS)


class _Tee:
    """Keeps a copy of what the caller reads; offers it once the caller closes the stream."""

    def __init__(self, inner: Any, plan: _Plan, response: Any) -> None:
        self._inner, self._plan, self._response = inner, plan, response
        self._chunks: list[bytes] = []
        self._size = 0
        self._complete = False
        self._finished = False

    def _keep(self, chunk: bytes) -> None:
        if self._size <= MAX_CAPTURE_BYTES:
            self._chunks.append(chunk)
        self._size += len(chunk)

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            complete = self._complete or _ends_stream(self._chunks)
            self._plan.finish(self._response, self._chunks, complete, self._size)


class _AsyncTee(_Tee, *_bases("AsyncByteStream")):  # type: ignore[misc]
    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._keep(chunk)
            yield chunk
        self._complete = True

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._finish()


class _SyncTee(_Tee, *_bases("SyncByteStream")):  # type: ignore[misc]
    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._keep(chunk)
            yield chunk
        self._complete = True

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._finish()


def _tee(sink: Sink, response: Any, plan: _Plan | None, tee: type[_Tee]) -> Any:
    if plan is None:
        return response
    if not 200 <= response.status_code < 300:
        sink.count("primary_errors")
    elif hasattr(response, "_content"):  # already read (e.g. MockTransport): nothing to tee
        plan.finish(response, [response.content], True, len(response.content), decoded=True)
    else:
        response.stream = tee(response.stream, plan, response)
    return response


def tee_async(sink: Sink, response: Any, plan: _Plan | None) -> Any:
    """Capture ``response`` (anything with ``status_code``, ``headers.get`` and an async
    iterable ``stream`` with ``aclose()``) for ``plan``: a 2xx body is copied as the caller
    reads it and offered once the stream is closed; another status is counted as a
    primary error. Returns ``response``, its stream wrapped."""
    return _tee(sink, response, plan, _AsyncTee)


class _Wrapper:
    def __init__(self, shadow: Sink, transport: Any = None, *, task: str | None = None,
                 source: str = "transport") -> None:
        """``source`` labels the stored exchanges (``transport``; the sidecar's ``sidecar``)."""
        self._sink = shadow
        self._inner = transport
        self._task = task
        self._source = source


class ShadowTransport(_Wrapper, *_bases("AsyncBaseTransport")):  # type: ignore[misc]
    """An async httpx / httpx2 transport that shadows chat calls through a ``Shadow``.

    ``task`` labels every call made through this transport (the ``X-Shadowroute-Task`` header
    and :func:`task` context win over it). ``transport`` is the real one to wrap; by default an
    ``AsyncHTTPTransport`` of the package that built the request.
    """

    async def handle_async_request(self, request: Any) -> Any:
        plan = _plan(self._sink, request, self._task, self._source)
        if self._inner is None:
            self._inner = _default_transport(request, "AsyncHTTPTransport")
        try:
            response = await self._inner.handle_async_request(request)
        except Exception:
            if plan is not None:
                self._sink.count("primary_errors")
            raise
        return _tee(self._sink, response, plan, _AsyncTee)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


class SyncShadowTransport(_Wrapper, *_bases("BaseTransport")):  # type: ignore[misc]
    """The synchronous twin of :class:`ShadowTransport`, for ``httpx.Client`` and sync SDK
    clients; it reports to a :class:`~shadowroute.SyncShadow`."""

    def handle_request(self, request: Any) -> Any:
        plan = _plan(self._sink, request, self._task, self._source)
        if self._inner is None:
            self._inner = _default_transport(request, "HTTPTransport")
        try:
            response = self._inner.handle_request(request)
        except Exception:
            if plan is not None:
                self._sink.count("primary_errors")
            raise
        return _tee(self._sink, response, plan, _SyncTee)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
