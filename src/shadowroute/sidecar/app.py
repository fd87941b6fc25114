"""The sidecar: an OpenAI- and Anthropic-compatible gateway that forwards every call to the
primary upstream, byte for byte, and mirrors a sample through the capture pipeline.

Forwarding goes through :class:`~shadowroute.ShadowTransport`: the sidecar names the task type
(header, config rules, default) and the transport does what it does under an SDK: tee the
response while relaying it chunk by chunk, then offer the raw bodies to the :class:`Shadow`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
from httpx_aiohttp import AiohttpTransport
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..capture import Api, api_for
from ..config import Config
from ..pipeline import Shadow
from ..transport import TASK_HEADER, ShadowTransport
from .body import BodyTooLarge, read_body
from .ingest import ingest_captures
from .metrics import Metrics

__all__ = ["Sidecar", "create_app"]

ROUTE_HEADER = "x-shadowroute-route"
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-length", TASK_HEADER,
    }
)
_RESPONSE_DROP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"})


def _timed_out(exc: httpx.TransportError) -> bool:
    """Whether the upstream timed out (504) rather than refused or dropped us (502).
    httpx-aiohttp maps every aiohttp connection error, a refused connection included, to
    httpx.ConnectTimeout; the aiohttp cause tells which it was."""
    if not isinstance(exc, httpx.TimeoutException):
        return False
    return exc.__cause__ is None or isinstance(exc.__cause__, TimeoutError)


def api_error(api: Api | None, status: int, message: str, kind: str) -> JSONResponse:
    """An error body in the caller's API shape (OpenAI's unless the call was Anthropic's)."""
    if api == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


class Sidecar:
    """State of one running sidecar: config, the Shadow, the upstream client, metrics."""

    def __init__(
        self,
        config: Config,
        *,
        shadow: Shadow | None = None,
        upstream_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.settings = config.sidecar
        self.shadow = shadow or Shadow(config)
        self.metrics = Metrics(self.shadow.stats)
        self._upstream_transport = upstream_transport
        self.client: httpx.AsyncClient | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        limits = httpx.Limits(
            max_connections=self.settings.max_connections,
            max_keepalive_connections=self.settings.max_connections,
        )
        # httpx's API over aiohttp's connection handling: measured with bench/proxy_overhead.py
        # on 2 cores, ~2.4x the requests/s of httpx's own pool at ~40% of the CPU per request.
        inner = self._upstream_transport or AiohttpTransport(limits=limits)
        timeout = httpx.Timeout(self.settings.upstream_timeout_s, connect=10.0)
        async with self.shadow, httpx.AsyncClient(
            transport=ShadowTransport(self.shadow, inner), timeout=timeout, limits=limits
        ) as client:
            self.client = client
            yield
        self.client = None

    def upstream_for(self, api: Api | None) -> str | None:
        if api == "anthropic" and self.settings.anthropic_upstream:
            return self.settings.anthropic_upstream
        return self.settings.upstream

    def task_for(self, request: Request, body: dict[str, Any], model: str) -> str:
        header = request.headers.get(TASK_HEADER)
        if header:
            return header
        metadata = body.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        for rule in self.settings.rules:
            if rule.model is not None and not fnmatch.fnmatchcase(model, rule.model):
                continue
            if any(str(metadata.get(k)) != v for k, v in rule.metadata.items()):
                continue
            return rule.task
        return self.settings.default_task

    # ------------------------------------------------------------------ endpoints

    async def proxy(self, request: Request) -> Response:
        path = request.url.path
        api = api_for(request.method, path)
        upstream = self.upstream_for(api)
        if upstream is None:
            return api_error(
                api, 503, "the sidecar has no upstream: start it with --upstream URL or set "
                "[sidecar] upstream in shadowroute.toml", "configuration_error"
            )
        try:
            body = await read_body(request, self.settings.max_body_bytes)
        except BodyTooLarge:
            return api_error(
                api, 413, f"request body larger than {self.settings.max_body_bytes} bytes "
                "([sidecar] max_body_bytes)", "request_too_large"
            )
        except ClientDisconnect:
            return Response(status_code=499)
        headers = [(k, v) for k, v in request.headers.items() if k not in _HOP_BY_HOP]
        route_header = None
        if api is not None:
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
                return api_error(api, 400, f"request body is not valid JSON: {exc}", "invalid_request_error")
            if not isinstance(parsed, dict):
                return api_error(api, 400, "request body must be a JSON object", "invalid_request_error")
            model = str(parsed.get("model") or "")
            task = self.task_for(request, parsed, model)
            headers.append((TASK_HEADER, task))  # read and stripped by ShadowTransport
            # Every call goes to the primary until task types can be promoted (route map).
            route_header = f"model={model}; route=primary; task={task}"
        url = upstream + path + (f"?{request.url.query}" if request.url.query else "")
        assert self.client is not None
        began = time.perf_counter()
        try:
            upstream_request = self.client.build_request(request.method, url, headers=headers, content=body)
            response = await self.client.send(upstream_request, stream=True)
        except httpx.TransportError as exc:
            if _timed_out(exc):
                self.metrics.upstream_failure(api, "timeout")
                return api_error(api, 504, f"upstream timed out: {type(exc).__name__}", "upstream_timeout")
            self.metrics.upstream_failure(api, "connection")
            return api_error(api, 502, f"upstream unreachable: {exc}", "upstream_unreachable")
        relayed = StreamingResponse(self._relay(response, api, began), status_code=response.status_code)
        raw = [(k, v) for k, v in response.headers.raw if k.lower() not in _RESPONSE_DROP]
        if route_header is not None:
            raw.append((ROUTE_HEADER.encode(), route_header.encode("latin-1", "replace")))
        relayed.raw_headers = raw  # every upstream header as sent, repeated ones included
        return relayed

    async def _relay(self, response: httpx.Response, api: Api | None, began: float) -> AsyncIterator[bytes]:
        """The upstream body as it arrives, untouched (content-encoding included)."""
        try:
            if response.is_stream_consumed:  # a transport that hands back read responses
                yield response.content
            else:
                async for chunk in response.aiter_raw():
                    yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()
            self.metrics.upstream_done(api, response.status_code, time.perf_counter() - began)

    async def captures(self, request: Request) -> Response:
        return await ingest_captures(self.shadow, request, self.settings.max_body_bytes)

    async def healthz(self, request: Request) -> Response:
        stats = self.shadow.stats
        return JSONResponse(
            {
                "status": "ok",
                "upstream": self.settings.upstream is not None,
                "database": "ok" if stats.spool_pending == 0 else "spooling",
                "queue_depth": stats.queue_depth,
                "spool_pending": stats.spool_pending,
            }
        )

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")


def create_app(config: Config, **kwargs: Any) -> Starlette:
    """The sidecar ASGI app (``shadowroute serve`` runs it under uvicorn)."""
    sidecar = Sidecar(config, **kwargs)
    app = Starlette(
        routes=[
            Route("/healthz", sidecar.healthz, methods=["GET"]),
            Route("/metrics", sidecar.prometheus, methods=["GET"]),
            Route("/v1/captures", sidecar.captures, methods=["POST"]),
            Route("/{path:path}", sidecar.proxy, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ],
        lifespan=sidecar.lifespan,
    )
    app.state.sidecar = sidecar
    return app
