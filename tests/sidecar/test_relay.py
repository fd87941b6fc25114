"""The sidecar relays a production call as the upstream would answer it, at the edges: through
the real server (uvicorn) to a real upstream on loopback that records exactly what reached it.
Nothing is added to a request (no cookies of other clients, no client-library headers), every
method and odd header goes through, bodies larger than the capture limit stream on, and what
the sidecar refuses or cannot relay is answered in the API's error shape and counted."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shadowroute.serving import BackgroundServer, tcp_socket

CHAT = {"model": "frontier", "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {"id": "c", "object": "chat.completion", "model": "frontier",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                           "finish_reason": "stop"}]}


class Upstream:
    """A loopback upstream that records each request's raw headers and body digest."""

    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []

        async def endpoint(request: Request) -> Response:
            digest, size = hashlib.sha256(), 0
            async for chunk in request.stream():  # never held whole: 60 MB bodies go through
                digest.update(chunk)
                size += len(chunk)
            if request.url.path.endswith("/wait"):  # holds its connection, not the loop
                await anyio.sleep(0.3)
            self.hits.append({"method": request.method, "path": request.url.path,
                              "headers": [(k.decode("latin-1"), v.decode("latin-1"))
                                          for k, v in request.headers.raw],
                              "size": size, "sha256": digest.hexdigest()})
            return self.answer(request, digest.hexdigest(), size)

        self.app = Starlette(routes=[Route("/{path:path}", endpoint, methods=[
            "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"])])

    def answer(self, request: Request, sha256: str, size: int) -> Response:
        path = request.url.path
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={
                "access-control-allow-origin": "*", "access-control-allow-methods": "POST",
                "access-control-allow-headers": "authorization, content-type"})
        if path.endswith("/cookie"):  # a session cookie for whoever asked
            who = request.query_params.get("who", "")
            return JSONResponse(COMPLETION, headers={"set-cookie": f"session={who}; Path=/"})
        if path.endswith("/long-header"):
            return JSONResponse(COMPLETION, headers={"x-long": "a" * 20_000})
        if path.endswith("/many-headers"):
            response = JSONResponse(COMPLETION)
            response.raw_headers += [(f"x-h{i}".encode(), b"v") for i in range(300)]
            return response
        if path.endswith("/slow"):
            time.sleep(0.3)  # holds its connection (the upstream's event loop too: fine here)
            return JSONResponse(COMPLETION)
        if path.endswith("/gzip"):  # answers compressed only to a client that asked for it
            wants = "gzip" in request.headers.get("accept-encoding", "")
            return JSONResponse({**COMPLETION, "compressed": wants})
        return JSONResponse({**COMPLETION, "sha256": sha256, "size": size})

    def headers_of(self, i: int = -1) -> dict[str, str]:
        return {k.lower(): v for k, v in self.hits[i]["headers"]}


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, str]]:
    up = Upstream()
    with BackgroundServer(up.app, timeout_graceful_shutdown=1.0) as server:
        yield up, server.base_url


@pytest.fixture
def sidecar(upstream: tuple[Upstream, str], tmp_path: Path, sqlite_url: str, make_config,
            sidecar_server) -> Iterator[tuple[Upstream, str, Any]]:
    up, base = upstream
    config = make_config(sqlite_url, default_sample_rate=1.0, sidecar={
        "upstream": base, "anthropic_upstream": base, "max_body_bytes": 1024 * 1024},
        store={"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05})
    with sidecar_server(config) as sc:
        yield up, sc.base_url, sc


def raw(base_url: str, head: str, body: bytes = b"", *, expect_continue: bool = False,
        timeout: float = 10.0) -> tuple[str, dict[str, str], bytes]:
    """One request over a raw socket, exactly ``head`` (CRLF added) and ``body``: (status
    line, headers, body). With ``expect_continue`` the body waits for the interim 100."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n")
        data = b""
        if expect_continue:
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            assert data.startswith(b"HTTP/1.1 100"), data[:200]
            data = data.partition(b"\r\n\r\n")[2]
        sock.sendall(body)
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        status, *lines = head_bytes.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        length = int(headers.get("content-length", "-1"))
        while length >= 0 and len(rest) < length:
            rest += sock.recv(65536)
    return status, headers, rest


def post_head(path: str, body: bytes, *extra: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: sidecar", "Content-Type: application/json",
             f"Content-Length: {len(body)}", *extra]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- nothing added


def test_the_upstream_gets_the_clients_headers_and_nothing_else(sidecar) -> None:
    up, base, _ = sidecar
    body = json.dumps(CHAT).encode()
    status, _, _ = raw(base, post_head("/v1/chat/completions", body, "X-Trace: t-1"), body)
    assert status.startswith("HTTP/1.1 200"), status
    names = [k.lower() for k, _ in up.hits[-1]["headers"]]
    # host (the upstream's own), what the client sent, the length of what it sent: no
    # accept, accept-encoding, user-agent or content-type the client did not send.
    assert sorted(names) == ["content-length", "content-type", "host", "x-trace"], names
    assert up.hits[-1]["size"] == len(body)

    # A client that cannot read gzip is never sent gzip on another's behalf.
    raw(base, post_head("/v1/gzip", body), body)
    assert "accept-encoding" not in up.headers_of()


def test_a_cookie_answered_to_one_client_never_reaches_another(sidecar) -> None:
    up, base, _ = sidecar
    body = json.dumps(CHAT).encode()
    status, headers, _ = raw(base, post_head("/v1/cookie?who=alice", body), body)
    assert headers["set-cookie"] == "session=alice; Path=/"  # alice gets her cookie
    raw(base, post_head("/v1/cookie?who=bob", body), body)
    raw(base, post_head("/v1/chat/completions", body), body)
    assert all("cookie" not in dict((k.lower(), v) for k, v in hit["headers"])
               for hit in up.hits), [hit["headers"] for hit in up.hits]
    # A cookie a client sends itself is its own, and goes through.
    raw(base, post_head("/v1/chat/completions", body, "Cookie: mine=1"), body)
    assert up.headers_of()["cookie"] == "mine=1"


# --------------------------------------------------------------------------- methods and upgrades


def test_cors_preflight_and_any_method_reach_the_upstream(sidecar) -> None:
    up, base, _ = sidecar
    status, headers, _ = raw(base, "OPTIONS /v1/chat/completions HTTP/1.1\nHost: sidecar\n"
                             "Origin: https://app.example\nAccess-Control-Request-Method: POST\n")
    assert status.startswith("HTTP/1.1 204"), status
    assert headers["access-control-allow-origin"] == "*"
    assert up.hits[-1]["method"] == "OPTIONS"
    status, _, _ = raw(base, "PROPFIND /v1/files HTTP/1.1\nHost: sidecar\nContent-Length: 0\n")
    assert status.startswith("HTTP/1.1 200") and up.hits[-1]["method"] == "PROPFIND", status


def test_websocket_upgrades_are_refused_clearly_and_counted(sidecar, metrics) -> None:
    up, base, _ = sidecar
    status, headers, body = raw(
        base, "GET /v1/realtime?model=gpt-realtime HTTP/1.1\nHost: sidecar\nUpgrade: websocket\n"
        "Connection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
        "Sec-WebSocket-Version: 13\n")
    assert status.startswith("HTTP/1.1 501"), status
    error = json.loads(body)["error"]
    assert error["type"] == "unsupported_upgrade" and "Realtime API" in error["message"]
    assert up.hits == []  # never forwarded as a plain GET
    assert metrics(base)[("shadowroute_not_relayed_total", (("reason", "websocket"),))] == 1


def test_expect_100_continue_is_answered_here_not_waited_for(sidecar) -> None:
    up, base, _ = sidecar
    body = json.dumps(CHAT).encode()
    began = time.perf_counter()
    status, _, _ = raw(base, post_head("/v1/chat/completions", body, "Expect: 100-continue"),
                       body, expect_continue=True)
    assert status.startswith("HTTP/1.1 200"), status
    assert time.perf_counter() - began < 1.0
    assert "expect" not in up.headers_of()


# --------------------------------------------------------------------------- what the upstream sends


@pytest.mark.parametrize("path", ["/v1/long-header", "/v1/many-headers"])
def test_odd_but_valid_upstream_answers_are_relayed(sidecar, path: str) -> None:
    """A 20 KB header line or 300 headers: a direct client reads them, so the sidecar does."""
    _, base, _ = sidecar
    body = json.dumps(CHAT).encode()
    status, headers, payload = raw(base, post_head(path, body), body)
    assert status.startswith("HTTP/1.1 200"), status
    assert json.loads(payload)["id"] == "c"
    if path == "/v1/long-header":
        assert headers["x-long"] == "a" * 20_000
    else:
        assert headers["x-h299"] == "v"


def test_an_unusable_upstream_answer_is_a_counted_502_in_the_apis_shape(
    tmp_path: Path, sqlite_url: str, make_config, sidecar_server, metrics,
) -> None:
    """Beyond every limit (a header line of 100 KB): the documented 502, counted, never a
    plain-text 500."""
    with tcp_socket("127.0.0.1", 0) as listener:
        listener.listen()
        port = listener.getsockname()[1]
        config = make_config(sqlite_url, sidecar={"upstream": f"http://127.0.0.1:{port}"},
                             store={"spool_dir": str(tmp_path / "spool")})

        def serve_one() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * 100_000
                             + b"\r\nContent-Length: 2\r\n\r\n{}")

        import threading
        thread = threading.Thread(target=serve_one, daemon=True)
        thread.start()
        with sidecar_server(config) as sc:
            response = httpx.post(sc.base_url + "/v1/chat/completions", json=CHAT, timeout=10)
            samples = metrics(sc.base_url)
        thread.join(5)
    assert response.status_code == 502, response.text
    assert response.json()["error"]["type"] == "upstream_bad_response"
    assert samples[("shadowroute_upstream_requests_total",
                    (("api", "openai"), ("status", "bad_response")))] == 1


def test_a_call_waiting_for_an_upstream_connection_is_counted_not_silent(
    upstream: tuple[Upstream, str], tmp_path: Path, sqlite_url: str, make_config,
    sidecar_server, metrics,
) -> None:
    """``[sidecar] max_connections = 1`` and two calls at once: the second waits for the first's
    connection, and ``/metrics`` says so (by default there is no limit: nothing waits)."""
    _, base = upstream
    config = make_config(sqlite_url, sidecar={"upstream": base, "max_connections": 1},
                         store={"spool_dir": str(tmp_path / "spool")})
    with sidecar_server(config) as sc:
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            calls = [pool.submit(httpx.post, sc.base_url + "/v1/slow", json=CHAT, timeout=10)
                     for _ in range(2)]
            assert [c.result().status_code for c in calls] == [200, 200]
        samples = metrics(sc.base_url)
    assert samples[("shadowroute_upstream_pool_wait_seconds_count", ())] == 1
    assert samples[("shadowroute_upstream_pool_wait_seconds_sum", ())] > 0.1
    assert samples[("shadowroute_upstream_pool_waiting", ())] == 0
    assert samples[("shadowroute_upstream_in_flight", ())] == 0


def test_by_default_no_call_waits_for_an_upstream_connection(sidecar, metrics) -> None:
    """No limit by default: 48 calls at once, each holding its connection, never queue."""
    up, base, _ = sidecar

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            async def one(i: int) -> int:
                return (await client.post("/v1/wait", json=CHAT)).status_code
            results: list[int] = []
            async with anyio.create_task_group() as tg:
                for i in range(48):
                    tg.start_soon(lambda i=i: _append(results, one(i)))
            return results

    assert anyio.run(burst) == [200] * 48
    samples = metrics(base)
    assert samples[("shadowroute_upstream_pool_wait_seconds_count", ())] == 0


async def _append(results: list[int], call: Any) -> None:
    results.append(await call)


def test_an_encoded_body_reaches_the_upstream_as_sent_uncaptured(sidecar, metrics) -> None:
    up, base, sc = sidecar
    body = gzip.compress(json.dumps(CHAT).encode())
    status, _, _ = raw(base, post_head("/v1/chat/completions", body, "Content-Encoding: gzip"),
                       body)
    assert status.startswith("HTTP/1.1 200"), status
    assert up.hits[-1]["sha256"] == hashlib.sha256(body).hexdigest()
    assert up.headers_of()["content-encoding"] == "gzip"
    assert sc.app.state.sidecar.shadow.stats.offered == 0
    assert metrics(base)[("shadowroute_not_captured_total", (("reason", "encoded"),))] == 1


# --------------------------------------------------------------------------- large bodies


def test_bodies_over_the_capture_limit_stream_through_uncaptured(sidecar, metrics) -> None:
    """18 MB with Content-Length and 60 MB chunked, both over ``max_body_bytes`` (1 MiB here):
    the upstream gets every byte, the client the upstream's answer; not captured, counted."""
    up, base, sc = sidecar
    for size, chunked in ((18_000_000, False), (60_000_000, True)):
        block = b"x" * 1_000_000

        def pieces(size: int = size, block: bytes = block) -> Iterator[bytes]:
            for _ in range(size // len(block)):
                yield block

        digest = hashlib.sha256(block * (size // len(block))).hexdigest()
        headers = {"content-type": "application/json"}
        if not chunked:
            headers["content-length"] = str(size)
        response = httpx.post(base + "/v1/chat/completions", content=pieces(), headers=headers,
                              timeout=60)
        assert response.status_code == 200, response.text
        assert (response.json()["size"], response.json()["sha256"]) == (size, digest)
        hit = up.headers_of()
        assert ("content-length" in hit) is not chunked  # the client's own framing
    assert sc.app.state.sidecar.shadow.stats.offered == 0
    assert metrics(base)[("shadowroute_not_captured_total", (("reason", "too_large"),))] == 2


def _rss_peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_60_mb_upload_does_not_grow_the_sidecar_by_more_than_twice_the_capture_limit(
    upstream: tuple[Upstream, str], tmp_path: Path, sqlite_url: str,
) -> None:
    """``shadowroute serve`` in its own process: its peak RSS during a 60 MB upload (capture
    limit 16 MiB, the default) grows by less than 2 x 16 MiB."""
    up, base = upstream
    with tcp_socket("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
    config_file = tmp_path / "shadowroute.toml"
    config_file.write_text(f'database_url = "{sqlite_url}"\n[sidecar]\nupstream = "{base}"\n'
                           f'[store]\nspool_dir = "{tmp_path / "spool"}"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "shadowroute", "serve", "--config", str(config_file),
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "serve did not start"
            time.sleep(0.1)
        small = httpx.post(url + "/v1/chat/completions", json=CHAT, timeout=10)  # warm up
        assert small.status_code == 200
        before = _rss_peak_kb(process.pid)
        block = b"y" * 1_000_000
        response = httpx.post(url + "/v1/chat/completions", content=(block for _ in range(60)),
                              headers={"content-type": "application/json"}, timeout=60)
        assert response.status_code == 200 and response.json()["size"] == 60_000_000
        growth_mb = (_rss_peak_kb(process.pid) - before) / 1024
    finally:
        process.terminate()
        process.wait(10)
    print(f"peak RSS growth during a 60 MB upload: {growth_mb:.1f} MB")
    assert growth_mb < 2 * 16, f"peak RSS grew {growth_mb:.1f} MB during a 60 MB upload"
