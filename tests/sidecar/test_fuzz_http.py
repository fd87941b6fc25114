"""Property tests (hypothesis) of the sidecar's HTTP API, in-process and on a real server:

- the HTTP API (no OpenAPI document: a schemathesis-like property test in-process): never a 5xx,
  errors in the API's JSON shape;
- ``[sidecar] max_body_bytes`` / ``max_request_bytes``: captured up to the first, relayed up to
  the second, 413 exactly above it, with and without Content-Length;
- upstreams from config only (SSRF), against a real "evil" server counting hits.

The parsers' properties are in tests/formats, tests/capture and tests/offline; the strategies they
share in support/fuzz.py. Bugs these found keep an ``@example`` of the input that found them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import anyio.from_thread
import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from shadowroute import load_config
from shadowroute.config import Config
from shadowroute.errors import ConfigError
from shadowroute.pipeline.core import Shadow
from shadowroute.serving import BackgroundServer
from shadowroute.sidecar import create_app
from support.fuzz import (
    COMPLETION,
    DEEP,
    MESSAGE,
    anthropic_requests,
    anthropic_responses,
    bodies,
    fuzz,
    json_values,
    openai_requests,
    openai_responses,
    shaped,
    texts,
)
from support.sidecar import raw_http

# =========================================================================== the sidecar's HTTP API

OPENAI_SSE = (b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'
              b"data: [DONE]\n\n")


def upstream_ok(request: httpx.Request) -> httpx.Response:
    """A mock upstream that answers every call with a 200, so any 5xx is the sidecar's own."""
    if request.url.path.endswith("/v1/messages"):
        return httpx.Response(200, content=MESSAGE, headers={"content-type": "application/json"})
    if b'"stream": true' in request.content or b'"stream":true' in request.content:
        return httpx.Response(200, content=OPENAI_SSE, headers={"content-type": "text/event-stream"})
    return httpx.Response(200, content=COMPLETION, headers={"content-type": "application/json"})


def sidecar_config(tmp_path: Path, upstream: str | None, **sidecar: Any) -> Config:
    return load_config(data={
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}",
        "default_sample_rate": 1.0,  # every call is captured and resolved: the parsers see it all
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
        "mirror": {"shutdown_deadline_s": 2.0},
        "sidecar": {"upstream": upstream, "anthropic_upstream": upstream,
                    "mirror_process": "off", **sidecar},
    })


class InProcessSidecar:
    """The sidecar app in-process (httpx.ASGITransport), its lifespan running in a blocking
    portal so a sync hypothesis test can drive it; upstream calls go to ``handler``."""

    def __init__(self, config: Config, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.errors: list[tuple[str, BaseException]] = []
        self.shadow = Shadow(config, on_error=lambda stage, exc: self.errors.append((stage, exc)))
        self.app = create_app(config, shadow=self.shadow, upstream_transport=httpx.MockTransport(handler))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://sidecar.test")

    @contextmanager
    def running(self) -> Iterator[InProcessSidecar]:
        with anyio.from_thread.start_blocking_portal() as portal, \
                portal.wrap_async_context_manager(self.app.router.lifespan_context(self.app)):
            self.portal = portal
            try:
                yield self
            finally:
                portal.call(self.client.aclose)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(lambda: self.client.request(method, path, **kwargs))

    def drained(self) -> None:
        """Wait until every queued capture was resolved (mirrored or failed)."""
        stats = self.shadow.stats

        async def wait() -> None:
            with anyio.fail_after(5):
                while stats.enqueued > stats.mirrored + stats.discarded["capture_error"]:
                    await anyio.sleep(0.001)

        self.portal.call(wait)


def is_api_error(body: Any, anthropic: bool) -> bool:
    """The API's error shape: OpenAI's ``{"error": {"message", "type", ...}}``; Anthropic's
    adds ``"type": "error"`` at the top."""
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("message"), str)
            and isinstance(error.get("type"), str)):
        return False
    return body.get("type") == "error" if anthropic else True


header_values = st.one_of(
    st.sampled_from([b"application/json", b"text/plain", b"application/x-www-form-urlencoded", b"gzip",
                     b"deflate, br", b"multipart/form-data; boundary=x", b"", b"\xff\xfe", "naïve ✓".encode(),
                     "caf\u00e9".encode("latin-1"), b"\xb2", b"1" * 5000, b"-1", b"0"]),
    st.lists(st.integers(0x20, 0xFF).filter(lambda b: b != 0x7F), max_size=24).map(bytes),
)
header_names = st.sampled_from([
    b"content-type", b"content-encoding", b"content-length", b"x-shadowroute-task", b"authorization",
    b"x-api-key", b"accept-encoding", b"host", b"x-forwarded-host", b"forwarded", b"anthropic-version",
    b"x-shadowroute-route", b"x-shadowroute-reverse", b"x-shadowroute-fallback", b"transfer-encoding",
    b"expect", b"connection", b"x-custom",
]) | st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12).map(str.encode)


@st.composite
def http_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bodies", "request", "captures", "huge", "utf8"]))
    if kind == "bodies":
        return draw(bodies())
    if kind == "request":
        return json.dumps(draw(openai_requests | anthropic_requests)).encode()
    if kind == "captures":
        item = shaped({"task": texts, "request": openai_requests | anthropic_requests,
                       "response": openai_responses | anthropic_responses | texts},
                      {"api": st.sampled_from(["openai", "anthropic"]), "latency_ms": st.floats(),
                       "metadata": json_values, "sampled": st.booleans()})
        return json.dumps({"captures": draw(st.lists(item, max_size=3))}).encode()
    if kind == "huge":
        return draw(st.sampled_from([b'{"model": "m", "max_tokens": ' + b"9" * 5000 + b"}",
                                     b'{"model": "m", "max_tokens": 1e999, "messages": []}',
                                     b'{"model": "m", "temperature": -1e999, "messages": []}',
                                     b'{"captures": [{"task": "t", "request": {}, "response": "x", "latency_ms": 1e999}]}']))
    return b'{"model": "\xff\xfe", "messages": [{"role": "user", "content": "\xc3"}]}'


@st.composite
def http_requests(draw: st.DrawFn) -> tuple[str, str, list[tuple[bytes, bytes]], bytes]:
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "PATCH", "DELETE", "HEAD",
                                   "OPTIONS", "TRACE", "PROPFIND"]))
    path = draw(st.sampled_from(["/v1/chat/completions", "/v1/messages", "/v1/captures", "/v1/models",
                                 "/v1/embeddings", "/healthz", "/metrics", "/v1/"])
                | texts.map(lambda t: "/v1/" + quote(t, safe="")))
    path += draw(st.sampled_from(["", "", "/", "?x=1", "?%00=%ff", "%00", "%0d%0a", "%2F..%2Fx", "/%ff"]))
    headers = draw(st.lists(st.tuples(header_names, header_values), max_size=5))
    return method, path, headers, draw(http_bodies())


@pytest.mark.timeout(60)
def test_sidecar_http_api_never_answers_5xx_and_errors_are_api_shaped(tmp_path: Path) -> None:
    sidecar = InProcessSidecar(sidecar_config(tmp_path, "https://upstream.test"), upstream_ok)
    with sidecar.running():
        @fuzz(80)
        @given(req=http_requests())
        @example(req=("POST", "/v1/a%00b", [], b"{}"))  # NUL in the path: was a 500 (httpx.InvalidURL)
        @example(req=("OPTIONS", "/v1/messages", [], b""))  # Starlette's 405: was text/plain
        @example(req=("POST", "/v1/a%0d%0ab", [], b"{}"))  # no route takes a newline: 404 text/plain
        @example(req=("POST", "/v1/chat/completions", [(b"content-length", b"\xb2")], b"{}"))  # "²".isdigit()
        @example(req=("POST", "/v1/captures", [(b"content-length", b"1" * 5000)], b"{}"))  # int() digit limit
        @example(req=("POST", "/v1/messages", [(b"host", b"[")], b"[" * DEEP))
        def run(req: tuple[str, str, list[tuple[bytes, bytes]], bytes]) -> None:
            method, path, headers, body = req
            response = sidecar.request(method, path, headers=headers, content=body)
            assert response.status_code < 500, (response.status_code, response.text[:300])
            if 400 <= response.status_code < 500 and method != "HEAD":
                anthropic = method == "POST" and path.split("?")[0].endswith("/v1/messages")
                assert response.headers["content-type"] == "application/json", response.text[:300]
                assert is_api_error(response.json(), anthropic), response.text[:300]
            sidecar.drained()  # what the sidecar captured was resolved: only ValueError on garbage
            assert not [(s, e) for s, e in sidecar.errors if not isinstance(e, ValueError)], sidecar.errors

        run()
        assert sidecar.request("GET", "/healthz").status_code == 200
        assert sidecar.request("GET", "/metrics").status_code == 200
    # No capture error went unreported (the transport counts some without the hook): all were seen
    # above, and all were ValueError.
    assert sidecar.shadow.stats.capture_errors == sum(1 for s, _ in sidecar.errors if s == "capture")


# =========================================================================== size limits

LIMIT = 2048


def padded(path: str, size: int) -> bytes:
    """A valid body for ``path`` of exactly ``size`` bytes."""
    if path == "/v1/captures":
        def make(pad: str) -> dict[str, Any]:
            return {"captures": [{"task": "t", "request": {"model": "m", "pad": pad}, "response": "ok"}]}
    else:
        def make(pad: str) -> dict[str, Any]:
            return {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": pad}]}
    base = len(json.dumps(make("")).encode())
    body = json.dumps(make("x" * (size - base))).encode()
    assert len(body) == size
    return body


def test_size_limits_hold_at_the_exact_byte_with_and_without_content_length(
    tmp_path: Path,
) -> None:
    """On a real server (uvicorn): a chat body of exactly ``max_body_bytes`` is captured, one
    byte more is relayed uncaptured (the upstream answers); exactly ``max_request_bytes`` is
    relayed, one byte more is a 413 in the API's error shape; ``/v1/captures`` is a 413 above
    ``max_body_bytes``. With or without Content-Length."""
    config = sidecar_config(tmp_path, "https://upstream.test", max_body_bytes=LIMIT,
                            max_request_bytes=2 * LIMIT)
    seen: list[int] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(len(request.content))
        return upstream_ok(request)

    app = create_app(config, upstream_transport=httpx.MockTransport(upstream))
    with BackgroundServer(app, timeout_graceful_shutdown=1.0) as server, \
            httpx.Client(base_url=server.base_url, timeout=10) as client:
        @fuzz(30)
        @given(path=st.sampled_from(["/v1/chat/completions", "/v1/messages", "/v1/captures"]),
               size=st.integers(LIMIT - 3, LIMIT + 3) | st.integers(2 * LIMIT - 3, 2 * LIMIT + 3)
               | st.integers(150, 3 * LIMIT),
               chunked=st.booleans(), chunk=st.integers(1, 700))
        @example(path="/v1/captures", size=LIMIT + 1, chunked=True, chunk=256)  # not covered before
        @example(path="/v1/captures", size=LIMIT, chunked=True, chunk=256)
        @example(path="/v1/messages", size=2 * LIMIT + 1, chunked=True, chunk=256)
        @example(path="/v1/messages", size=2 * LIMIT, chunked=True, chunk=256)
        def run(path: str, size: int, chunked: bool, chunk: int) -> None:
            body = padded(path, size)

            def pieces() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
                for i in range(0, len(body), chunk):
                    yield body[i:i + chunk]

            before = app.state.sidecar.shadow.stats.offered
            seen.clear()
            response = client.post(path, content=pieces() if chunked else body,
                                   headers={"content-type": "application/json"})
            captured = app.state.sidecar.shadow.stats.offered - before
            limit = LIMIT if path == "/v1/captures" else 2 * LIMIT
            if size <= limit:
                assert response.status_code == (202 if path == "/v1/captures" else 200), response.text
                if path != "/v1/captures":
                    assert seen == [size]  # the whole body reached the upstream
                    assert captured == (1 if size <= LIMIT else 0)
            else:
                assert response.status_code == 413, response.text
                assert is_api_error(response.json(), anthropic=path == "/v1/messages"), response.text
                setting = "max_body_bytes" if path == "/v1/captures" else "max_request_bytes"
                assert setting in response.json()["error"]["message"]

        run()
        assert client.get("/healthz").status_code == 200


# =========================================================================== upstreams from config only


class Recorder:
    """A real loopback HTTP server that records every hit; ``answer`` says what it replies."""

    def __init__(self, answer: Callable[[Request, bytes], Response]) -> None:
        self.hits: list[tuple[str, str, dict[str, str], bytes]] = []

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            self.hits.append((request.method, request.url.path, dict(request.headers), body))
            return answer(request, body)

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        app = Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
        self.server = BackgroundServer(app, lifespan="off")

    def paths(self) -> list[str]:
        return [path for _, path, _, _ in self.hits]


def test_the_sidecar_only_ever_calls_the_configured_upstream(tmp_path: Path) -> None:
    """SSRF: whatever a request says -- absolute-form target, Host, X-Forwarded-Host / Forwarded,
    ``base_url``-like body fields, an upstream redirect -- the sidecar connects to its configured
    upstream (and the configured candidates) only. ``evil`` is a real server counting hits."""
    evil = Recorder(lambda request, body: JSONResponse({"stolen": True}))

    def upstream_answer(request: Request, body: bytes) -> Response:
        code = request.query_params.get("redirect")
        if code:
            return RedirectResponse(evil_url + "/v1/chat/completions", status_code=int(code))
        return Response(MESSAGE if request.url.path.endswith("/v1/messages") else COMPLETION,
                        media_type="application/json")

    upstream = Recorder(upstream_answer)
    with evil.server, upstream.server:
        evil_url = evil.server.base_url
        evil_host = evil_url.removeprefix("http://")
        config = load_config(data={
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'ssrf.db'}",
            "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
            "mirror": {"shutdown_deadline_s": 2.0},
            "models": {"cand": {"base_url": upstream.server.base_url + "/v1", "max_retries": 0}},
            "tasks": {"t": {"candidates": ["cand"], "sample_rate": 1.0}},
            "sidecar": {"upstream": upstream.server.base_url,
                        "anthropic_upstream": upstream.server.base_url, "default_task": "t",
                        "mirror_process": "off"},
        })
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        lures = {"base_url": evil_url, "api_base": evil_url, "api_url": evil_url, "url": evil_url,
                 "endpoint": evil_url + "/v1/chat/completions", "baseURL": evil_url}
        # The real upstream client (httpx over aiohttp): nothing is mocked on the way out.
        with BackgroundServer(create_app(config), timeout_graceful_shutdown=1.0) as sc, \
                httpx.Client(base_url=sc.base_url, timeout=10) as client:
            answers = []
            for head in (  # absolute-form and odd targets, as a client could write them
                b"POST http://%s/v1/chat/completions HTTP/1.1\r\nhost: %s" % (evil_host.encode(), evil_host.encode()),
                b"POST //%s/v1/chat/completions HTTP/1.1\r\nhost: x" % evil_host.encode(),
                b"POST /@%s/v1/chat/completions HTTP/1.1\r\nhost: x" % evil_host.encode(),
            ):
                answers.append(raw_http(sc.port, head, json.dumps(chat).encode()))
            assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers
            for headers in ({"host": evil_host}, {"x-forwarded-host": evil_host, "x-forwarded-proto": "http"},
                            {"forwarded": f"host={evil_host};proto=http"}, {"x-original-url": evil_url},
                            {"x-rewrite-url": evil_url + "/v1/chat/completions"}):
                assert client.post("/v1/chat/completions", json=chat, headers=headers).status_code == 200
            assert client.post("/v1/chat/completions", json={**chat, **lures}).status_code == 200
            assert client.post("/v1/messages", json={**chat, "max_tokens": 5, **lures}).status_code == 200
            captured = client.post("/v1/captures", json={"captures": [
                {"task": "t", "request": {**chat, **lures}, "response": "ok", "sampled": True}]})
            assert captured.status_code == 202 and captured.json()["queued"] == 1
            for code in (302, 307):
                redirected = client.post(f"/v1/chat/completions?redirect={code}", json=chat)
                assert redirected.status_code == code  # relayed as it came, not followed
                assert redirected.headers["location"] == evil_url + "/v1/chat/completions"
            stats = sc.app.state.sidecar.shadow.stats
            for _ in range(1000):  # the candidate calls are made in the background
                if stats.mirrored + stats.discarded["capture_error"] >= stats.enqueued:
                    break
                time.sleep(0.005)
    assert evil.hits == [], evil.hits
    # 12 calls through the proxy (3 raw, 5 with headers, 2 with lures, 2 redirected) and every
    # candidate call (the captured request with lures among them) reached the upstream.
    assert stats.candidate_calls == 11 and stats.candidate_errors == {}  # 10 proxied + 1 posted
    assert len(upstream.hits) == 12 + stats.candidate_calls
    assert upstream.paths()[0] == "/v1/chat/completions"  # the absolute-form call, first of all
    paths = set(upstream.paths())
    assert {f"//{evil_host}/v1/chat/completions", f"/@{evil_host}/v1/chat/completions"} <= paths  # paths


@pytest.mark.parametrize("url", ["ftp://upstream.test", "file:///etc/passwd", "gopher://127.0.0.1:70/",
                                 "127.0.0.1:8080", "//upstream.test", " http://upstream.test", "",
                                 "unix:///var/run/llm.sock", "javascript:alert(1)"])
def test_upstreams_must_be_http_urls(url: str) -> None:
    for data in ({"sidecar": {"upstream": url}}, {"sidecar": {"anthropic_upstream": url}},
                 {"models": {"m": {"base_url": url}}}):
        with pytest.raises(ConfigError, match="http:// or https://"):
            load_config(data=data)
