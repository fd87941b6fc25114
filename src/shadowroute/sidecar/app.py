"""The sidecar: an OpenAI- and Anthropic-compatible gateway that forwards each call to the
primary upstream, byte for byte, or to the promoted model the route map names for its task
type (by its answer or its request for a cascade or partial route: :mod:`.modes`), and mirrors
a sample through the capture pipeline.

Forwarding goes through an :class:`~.upstream.Upstream` (aiohttp, no httpx objects on the
hot path) and captures the way :class:`~shadowroute.ShadowTransport` does under an SDK, with
its functions: the sidecar names the task type (header, config rules, default), the sampling
draw decides, and a sampled answer is teed while it is relayed chunk by chunk, its raw bodies
offered to the :class:`Shadow` once relayed. A routed call carries the replaced primary's name
in ``REVERSE_HEADER``, so it is sampled for the reverse shadow (the primary is asked the same
request in the background).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_from_bytes, urlsplit

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..capture.calls import Api, api_for
from ..capture.transport import (
    FALLBACK_HEADER,
    REVERSE_HEADER,
    TASK_HEADER,
    plan_call,
    tee_async,
)
from ..config import Config
from ..formats.chat import stateful_feature
from ..pipeline.core import Shadow
from ..routing.modes import BYPASSED, RouteModes
from ..routing.routemap import Route as MapRoute
from ..routing.routemap import RouteMap
from .answers import api_error, daily_budgets, error_json, http_error, is_anthropic, unauthorized
from .asgi import EveryMethod, Front, KnownLength, Reply
from .body import Body, BodyTooLarge, is_upgrade, read_head, readable
from .ingest import ingest_captures
from .metrics import Metrics
from .modes import Routed, serve_by_mode
from .trust import BearerToken, RateLimiter
from .upstream import (
    AiohttpUpstream,
    Answer,
    BadAnswer,
    HttpxUpstream,
    TimedOut,
    Unreachable,
    Upstream,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["Sidecar", "create_app"]

log = logging.getLogger("shadowroute")

ROUTE_HEADER = "x-shadowroute-route"
_HOP_BY_HOP = frozenset(
    name.encode()
    for name in (
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-length", TASK_HEADER,
        REVERSE_HEADER, FALLBACK_HEADER,  # only the sidecar sets them: a client must not
        # The sidecar holds (or streams) the body already: it answers the expectation itself
        # (uvicorn sends 100 Continue once the body is read) instead of making the upstream,
        # which may never send 100, hold the call.
        "expect",
    )
)
_AUTH_HEADERS = frozenset({b"authorization", b"x-api-key"})
_TASK, _REVERSE, _FALLBACK = TASK_HEADER.encode(), REVERSE_HEADER.encode(), FALLBACK_HEADER.encode()
_SIGNALS = frozenset({_TASK, _REVERSE, _FALLBACK})
"""Headers the sidecar sets on its own requests to say how to capture them (task type, the
primary a routed call replaced, a fallback): read and removed before the request leaves."""
_Headers = list[tuple[bytes, bytes]]
"""Request headers as bytes, as they came: a value that is not ASCII is forwarded, not a 500."""
_CHAT_PATH = {"openai": "/chat/completions", "anthropic": "/v1/messages",
              "responses": "/responses"}
_RESPONSE_DROP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"})
_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
_PATH_SAFE = _PRINTABLE.replace("?", "").replace("#", "")
_QUERY_SAFE = _PRINTABLE.replace("#", "")


def _target(request: Request) -> tuple[str, str]:
    """The path and query to forward, as the client sent them: percent-escapes are kept, never
    decoded (a ``%00`` or ``%3F`` in the path stays an escape, not a character of the upstream
    URL); a byte a URL cannot carry is escaped. Only ever appended to the configured upstream."""
    scope = request.scope
    raw = scope.get("raw_path") or scope["path"].encode()
    raw = raw.partition(b"?")[0]  # some servers (httpx's ASGITransport) put the query in it too
    query = scope.get("query_string") or b""
    return quote_from_bytes(raw, safe=_PATH_SAFE), quote_from_bytes(query, safe=_QUERY_SAFE)


def _signals(headers: _Headers) -> tuple[_Headers, dict[bytes, str]]:
    """The headers to send (the capture signals removed) and the signals' values."""
    found = {k: v.decode("utf-8", "replace") for k, v in headers if k in _SIGNALS}
    if not found:
        return headers, found
    return [(k, v) for k, v in headers if k not in _SIGNALS], found


class Sidecar:
    """State of one running sidecar: config, the Shadow, the route map, the upstream client,
    metrics."""

    def __init__(
        self,
        config: Config,
        *,
        shadow: Shadow | None = None,
        upstream_transport: httpx.AsyncBaseTransport | None = None,
        routes: RouteMap | None = None,
        on_stop: Callable[[Shadow], None] | None = None,
    ) -> None:
        """``on_stop(shadow)`` runs once the Shadow has stopped (its ledger is final);
        ``upstream_transport``: an httpx transport to send through instead of aiohttp (tests)."""
        self.config = config
        self._on_stop = on_stop
        self.settings = config.sidecar
        self.shadow = shadow or Shadow(config, mirror_process=config.sidecar.mirror_process)
        self.metrics = Metrics(self.shadow.totals)
        # A malformed file does not stop the sidecar: every call goes to its primary until the
        # file is fixed (RouteMap logs it and keeps watching).
        self.routes = routes or RouteMap(config.routes_file(),
                                         interval_s=config.routes.reload_interval_s)
        self.modes = RouteModes(config)
        """The checks of cascade routes (built once each), partial rules: see :mod:`.modes`."""
        self._upstream_transport = upstream_transport
        self._route_warned: set[tuple[str, str, str]] = set()
        self._fallback_warned: set[str] = set()
        self.upstream: Upstream | None = None
        self._ingest_key = BearerToken.from_env(self.settings.ingest_token_env)
        self._metrics_key = BearerToken.from_env(self.settings.metrics_token_env)
        self._limiter = RateLimiter(self.settings.captures_per_minute)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        timeout = self.settings.upstream_timeout_s
        upstream: Upstream = (
            HttpxUpstream(self._upstream_transport, timeout)
            if self._upstream_transport is not None else
            AiohttpUpstream(self.settings.max_connections, timeout, self.metrics.pool_wait))
        async with self.shadow:
            self.upstream = upstream
            try:
                yield
            finally:
                self.upstream = None
                await upstream.aclose()
        if self._on_stop is not None:
            self._on_stop(self.shadow)

    def upstream_for(self, api: Api | None, path: str = "",
                     headers: _Headers = ()) -> str | None:
        """The upstream of a call: ``[sidecar] anthropic_upstream`` for Anthropic's API (its
        paths, or any call carrying ``anthropic-version``), ``upstream`` for everything else.
        Never the other API's host: an Anthropic call with no Anthropic upstream is not
        forwarded, so its ``x-api-key`` cannot reach the OpenAI host (or the reverse)."""
        if api == "anthropic" or is_anthropic(path, headers):
            return self.settings.anthropic_upstream
        return self.settings.upstream

    def task_for(self, request: Request, body: dict[str, Any], model: str) -> str:
        header = request.headers.get(TASK_HEADER)
        if header:
            if not header.isascii():  # Starlette decodes latin-1; clients send UTF-8
                with contextlib.suppress(UnicodeError):
                    header = header.encode("latin-1").decode("utf-8")
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

    def route_for(
        self, api: Api, task: str, parsed: dict[str, Any], headers: _Headers, query: str
    ) -> Routed | None:
        """Where a chat call of a promoted task type goes: its promoted model, if that model
        can take it; else ``None`` (the primary), the reason counted and logged once."""
        route = self.routes.get(task)
        if route is None:
            return None
        model = self.config.models.get(route.model)
        key = model.api_key() if model is not None else None
        if model is None:
            return self._skip(route, "undeclared")
        if model.api != api:
            return self._skip(route, "api_mismatch")
        if stateful_feature(api, parsed) is not None:  # no evidence on such calls: primary
            return self._skip(route, "not_shadowable")
        if model.api_key_env and not key:
            return self._skip(route, "no_api_key")
        try:
            body = json.dumps(
                {**parsed, "model": model.model}, ensure_ascii=False, separators=(",", ":")
            ).encode()
        except (ValueError, RecursionError):  # parsed, yet too deep to write back: as it came
            return None
        url = model.base_url.rstrip("/") + _CHAT_PATH[api] + (f"?{query}" if query else "")
        if key:  # the client's credentials are the primary's: never sent to another host
            out = [(k, v) for k, v in headers if k not in _AUTH_HEADERS]
            out.append((b"x-api-key", key.encode()) if api == "anthropic"
                       else (b"authorization", f"Bearer {key}".encode()))
        else:
            out = list(headers)
        out.append((REVERSE_HEADER.encode(), route.primary.encode()))  # read by ShadowTransport
        return Routed(route, model, url, out, body)

    def _skip(self, route: MapRoute, reason: str) -> None:
        task, model = route.task, route.model
        self.metrics.route_skipped(reason)
        if not route.whole:  # a cascade or partial route that cannot take this call
            self.shadow.count_routed(task, model, BYPASSED + reason)
        if (task, model, reason) not in self._route_warned:
            self._route_warned.add((task, model, reason))
            why = {
                "undeclared": "it is not declared under [models]",
                "api_mismatch": "it does not speak the API of the call",
                "no_api_key": "its api_key_env is not set",
                "not_shadowable": "some calls depend on state kept by the primary's provider "
                                  "(previous_response_id, server-side tools, ...)",
            }[reason]
            log.warning("shadowroute: %s is promoted to %r but stays on its primary: %s",
                        task, model, why)

    async def _send(
        self, method: str, url: str, headers: _Headers, body: bytes | Body,
        *, capture: bool = True,
    ) -> Answer:
        """Send a call upstream as the client sent it: its headers and nothing else (no
        client defaults, no cookies of other calls), and capture it if it is sampled.
        ``capture=False``: a body larger than the capture limit, or one the sidecar cannot
        read; never captured."""
        upstream = self.upstream
        if upstream is None:
            raise RuntimeError("the sidecar is not running (its lifespan has not started)")
        headers, signals = _signals(headers)
        plan = None
        if capture and isinstance(body, bytes):
            plan = plan_call(
                self.shadow, api_for(method, urlsplit(url).path), body,
                signals.get(_TASK), reverse_of=signals.get(_REVERSE),
                fallback=_FALLBACK in signals, source="sidecar")
        content = body.stream() if isinstance(body, Body) else body
        try:
            response = await upstream.send(method, url, headers, content)
        except Exception:
            if plan is not None:
                self.shadow.count("primary_errors")
            raise
        return tee_async(self.shadow, response, plan)

    # ------------------------------------------------------------------ endpoints

    async def proxy(self, request: Request) -> Reply:
        api = api_for(request.method, request.scope["path"])
        path, query = _target(request)
        upstream = self.upstream_for(api, request.scope["path"], request.headers.raw)
        if upstream is None:
            if api == "anthropic" or is_anthropic(request.scope["path"], request.headers.raw):
                return api_error(
                    "anthropic", 503, "the sidecar has no Anthropic upstream, so this call was "
                    "not forwarded (its API key is not sent to another API's host): start it "
                    "with --anthropic-upstream https://api.anthropic.com or set [sidecar] "
                    "anthropic_upstream in shadowroute.toml", "configuration_error"
                )
            return api_error(
                api, 503, "the sidecar has no upstream: start it with --upstream URL or set "
                "[sidecar] upstream in shadowroute.toml", "configuration_error"
            )
        if is_upgrade(request.headers.raw):
            self.metrics.not_relayed("websocket")
            return api_error(
                api, 501, "WebSocket upgrades (e.g. the Realtime API) are not relayed by the "
                "sidecar: its sessions cannot be captured or mirrored; connect to the provider "
                "directly for them", "unsupported_upgrade")
        try:
            body = await read_head(request, self.settings.max_body_bytes,
                                   self.settings.max_request_bytes)
        except BodyTooLarge:
            return self._too_large(api)
        except ClientDisconnect:
            return Response(status_code=499)
        headers = [(k.lower(), v) for k, v in request.headers.raw if k.lower() not in _HOP_BY_HOP]
        url = upstream + path + (f"?{query}" if query else "")
        uncaptured, parsed = readable(api, body, request.headers.raw)
        if uncaptured is not None:  # relayed as it came, past the capture transport
            if api is not None:
                self.metrics.not_captured(uncaptured)
            if body.rest is None:
                return await self._forward(api, request.method, url, headers, body.head, None,
                                           capture=False)
            # Streamed on: the upstream gets the client's framing (its Content-Length, or
            # chunked when it sent none).
            headers += [(k.lower(), v) for k, v in request.headers.raw
                        if k.lower() == b"content-length"]
            return await self._forward(api, request.method, url, headers, body, None,
                                       capture=False)
        route_header = None
        routed: Routed | None = None
        if api is not None:
            model = str(parsed.get("model") or "")
            task = self.task_for(request, parsed, model)
            headers.append((TASK_HEADER.encode(), task.encode()))  # read by ShadowTransport
            routed = self.route_for(api, task, parsed, headers, query)
            if routed is None:
                route_header = f"model={model}; route=primary; task={task}"
            else:
                route_header = (f"model={routed.model.model}; route=promoted; task={task}; "
                                f"primary={routed.route.primary}")
        if routed is None:
            return await self._forward(api, request.method, url, headers, body.head,
                                       route_header)
        if not routed.route.whole:  # a cascade or a partial route: see .modes
            return await serve_by_mode(self, routed, request.method, url, headers, body.head,
                                       parsed, task)
        return await self._promoted(routed, request.method, url, headers, body.head,
                                    route_header, f"model={model}; route=primary; task={task}")

    async def _promoted(self, routed: Routed, method: str, url: str, headers: _Headers,
                        body: bytes, route_header: str, primary_header: str,
                        reached: Callable[[bool], None] | None = None) -> Reply:
        """Answer with the promoted model; the primary (``url``, labelled ``primary_header``)
        when it cannot be reached. ``reached(whether the promoted model answered)``."""
        api = routed.model.api
        began = time.perf_counter()
        try:
            response = await self._send_routed(routed, method)
        except Exception as exc:  # the promoted model answered, oddly: as from the primary
            response = exc
        if reached is not None:
            reached(response is not None)
        if isinstance(response, Exception):
            return self._failed(api, response)
        if response is not None:
            return self._relayed(response, api, began, route_header)
        # The promoted model was unreachable: the primary answers. Counted once already (the
        # routed attempt, as a failed production call): the transport neither counts nor
        # captures the fallback.
        fallback = [*headers, (FALLBACK_HEADER.encode(), b"1")]
        return await self._forward(api, method, url, fallback, body,
                                   f"{primary_header}; fallback={routed.route.model}")

    async def _forward(self, api: Api | None, method: str, url: str, headers: _Headers,
                       body: bytes | Body, route_header: str | None, *,
                       capture: bool = True) -> Reply:
        """Send a call to its upstream and relay the answer, or the error it became."""
        began = time.perf_counter()
        try:
            response = await self._send(method, url, headers, body, capture=capture)
        except Exception as exc:
            if _caused_by(exc, BodyTooLarge):  # past the ceiling while streaming it on
                return self._too_large(api)
            return self._failed(api, exc)
        return self._relayed(response, api, began, route_header)

    def _relayed(self, response: Answer, api: Api | None, began: float,
                 route_header: str | None) -> Reply:
        # A stream (SSE, or no length) keeps Starlette's disconnect watch, so a client that
        # goes away stops the relay (and the capture sees it abandoned); a body of known
        # length is relayed without that per-request task group.
        headers = response.headers
        length = headers.get("content-length", "")
        body = self._relay(response, api, began)
        relayed: StreamingResponse | KnownLength
        if (length.isascii() and length.isdigit()
                and not headers.get("content-type", "").startswith("text/event-stream")):
            relayed = KnownLength(body, response.status_code, int(length))
        else:
            relayed = StreamingResponse(body, status_code=response.status_code)
        raw = [(k, v) for k, v in response.raw_headers if k.lower() not in _RESPONSE_DROP]
        if route_header is not None:
            raw.append((ROUTE_HEADER.encode(), route_header.encode("latin-1", "replace")))
        relayed.raw_headers = raw  # every upstream header as sent, repeated ones included
        return relayed

    def _failed(self, api: Api | None, exc: Exception) -> Response:
        """Every failure on the upstream's side, as the documented 502 / 504, counted."""
        if isinstance(exc, TimedOut) or (isinstance(exc, Unreachable) and exc.timeout):
            self.metrics.upstream_failure(api, "timeout")
            return api_error(api, 504, f"upstream timed out: {exc}", "upstream_timeout")
        if isinstance(exc, Unreachable):
            self.metrics.upstream_failure(api, "connection")
            return api_error(api, 502, f"upstream unreachable: {exc}", "upstream_unreachable")
        if isinstance(exc, BadAnswer):
            exc = exc.__cause__ or exc  # the reader's own words
        self.metrics.upstream_failure(api, "bad_response")
        log.warning("shadowroute: unusable answer from the upstream: %s: %s",
                    type(exc).__name__, exc)
        return api_error(api, 502, f"unusable answer from the upstream: {type(exc).__name__}: "
                         f"{exc}", "upstream_bad_response")

    def _too_large(self, api: Api | None) -> Response:
        return api_error(
            api, 413, f"request body larger than {self.settings.max_request_bytes} bytes "
            "([sidecar] max_request_bytes)", "request_too_large")

    async def _send_routed(self, routed: Routed, method: str) -> Answer | None:
        """Send a routed call to its promoted model; ``None`` when it could not be reached
        (connection refused or timed out, DNS): the caller then asks the primary, once. Once
        connected, the promoted model's answer is the answer: an HTTP error status, or a read
        timeout, reaches the caller as it would from the primary (no second wait)."""
        name = routed.route.model
        self.metrics.routed_to(name)
        try:
            response = await self._send(method, routed.url, routed.headers, routed.body)
        except Unreachable as exc:
            self.metrics.route_fallback()
            if name not in self._fallback_warned:
                self._fallback_warned.add(name)
                log.warning("shadowroute: promoted model %r unreachable (%s); its calls go "
                            "to the primary meanwhile (counted in shadowroute_route_fallbacks)",
                            name, exc)
            return None
        self._fallback_warned.discard(name)  # reachable again: the next outage is logged too
        return response

    async def _relay(self, response: Answer, api: Api | None, began: float) -> AsyncIterator[bytes]:
        """The upstream body as it arrives, untouched (content-encoding included)."""
        self.metrics.in_flight.inc()
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()
            self.metrics.in_flight.dec()
            self.metrics.upstream_done(api, response.status_code, time.perf_counter() - began)

    async def captures(self, request: Request) -> Response:
        if not self.settings.captures:
            return error_json(404, "captures are not accepted here ([sidecar] captures "
                                    "= false)", "not_found_error")
        if not self._ingest_key.allows(request):
            self.metrics.refused_capture("unauthorized")
            return unauthorized("POST /v1/captures needs the sidecar's ingest token as "
                                 "'Authorization: Bearer <token>' (the app's "
                                 "remote_token_env)")
        return await ingest_captures(self.shadow, request, self.settings.max_body_bytes,
                                     limiter=self._limiter, metrics=self.metrics)

    async def healthz(self, request: Request) -> Response:
        """Liveness: 200 while the process serves; the body says how the database and the
        queue are (``database``: ok / spooling / unreachable, probed, cached 2 s)."""
        return JSONResponse(await self._health())

    async def readyz(self, request: Request) -> Response:
        """Readiness: 200 when calls can be relayed (an upstream is configured and the
        sidecar has started), else 503. The database does not gate it: while it is down
        captures go to the spool, and taking the sidecar out of rotation would break
        production for a shadowing problem."""
        health = await self._health()
        ready = self.upstream is not None and (self.settings.upstream is not None
                                             or self.settings.anthropic_upstream is not None)
        return JSONResponse({**health, "status": "ready" if ready else "not ready"},
                            status_code=200 if ready else 503)

    async def _health(self) -> dict[str, Any]:
        stats = self.shadow.totals()
        return (
            {
                "status": "ok",
                "upstream": self.settings.upstream is not None,
                "database": await self.shadow.database_state(),
                "queue_depth": stats.queue_depth,
                "spool_pending": stats.spool_pending,
                "daily_budget_usd": daily_budgets(self.config),
                "captures": ("off" if not self.settings.captures else
                             "token" if self._ingest_key.required else "open"),
            }
        )

    async def prometheus(self, request: Request) -> Response:
        if not self._metrics_key.allows(request):
            return unauthorized("GET /metrics needs the sidecar's metrics token as "
                                 "'Authorization: Bearer <token>' ([sidecar] metrics_token_env)")
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """Whether ``exc``, or an exception it was raised from or during, is a ``kind``."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kind):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def create_app(config: Config, **kwargs: Any) -> Front:
    """The sidecar ASGI app (``shadowroute serve`` runs it under uvicorn): its own endpoints
    through Starlette, every other call straight to the proxy (:class:`~.asgi.Front`)."""
    sidecar = Sidecar(config, **kwargs)
    own = [
        Route("/healthz", sidecar.healthz, methods=["GET"]),
        Route("/readyz", sidecar.readyz, methods=["GET"]),
        Route("/metrics", sidecar.prometheus, methods=["GET"]),
        Route("/v1/captures", sidecar.captures, methods=["POST"]),
    ]
    proxy = EveryMethod(sidecar.proxy)
    app = Starlette(routes=[*own, Route("/{path:path}", proxy)],
                    exception_handlers={HTTPException: http_error}, lifespan=sidecar.lifespan)
    app.state.sidecar = sidecar
    return Front(app, proxy, frozenset(route.path for route in own))
