"""The sidecar run for real (uvicorn on loopback) and what tests send it and read from it."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from prometheus_client.parser import text_string_to_metric_families

from shadowroute.config import Config
from shadowroute.fakellm import FakeLLMServer, default_settings, make_request
from shadowroute.serving import BackgroundServer
from shadowroute.sidecar import Sidecar, create_app

OPENAI_KEY = "sk-live-SIDECAR-openai-5f1c"
ANTHROPIC_KEY = "sk-ant-SIDECAR-anthropic-9d2e"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY)
TASK = "X-Shadowroute-Task"
ROUTE = "x-shadowroute-route"


def sidecar_server(config: Config, **kwargs: Any) -> BackgroundServer:
    """The sidecar app under uvicorn on a free loopback port, as ``shadowroute serve`` runs it."""
    return BackgroundServer(
        create_app(config, **kwargs),
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=1.0,
    )


def state(server: BackgroundServer) -> Sidecar:
    """The running sidecar behind ``server`` (its Shadow, its stats)."""
    sidecar: Sidecar = server.app.state.sidecar
    return sidecar


@contextmanager
def twin_fakes(settings: Any = None) -> Iterator[tuple[FakeLLMServer, FakeLLMServer]]:
    """(direct, upstream): two fake servers with the same settings."""
    settings = settings or default_settings(latency_scale=0.0)
    with FakeLLMServer(settings) as direct, FakeLLMServer(settings) as upstream:
        yield direct, upstream


class RecordingTransport(httpx.AsyncBaseTransport):
    """The sidecar's real upstream transport, keeping every request it puts on the wire."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def request_for(task: str, seed: int) -> dict[str, Any]:
    """The fake server's sample request of ``task`` (system prompt first), by seed."""
    return make_request(task, random.Random(seed))


def anthropic_kwargs(request: dict[str, Any]) -> dict[str, Any]:
    """:func:`request_for`'s request as Messages API arguments for model ``frontier``."""
    system, messages = request["messages"][0]["content"], request["messages"][1:]
    return {"model": "frontier", "max_tokens": 400, "system": system, "messages": messages}


def answer_text(kind: str, response: httpx.Response) -> str:
    """The answer's text in a response of ``kind``: openai, anthropic, or either + ``-stream``."""
    if kind == "openai":
        return response.json()["choices"][0]["message"]["content"]
    if kind == "anthropic":
        return "".join(block["text"] for block in response.json()["content"])
    parts = []
    for line in response.text.splitlines():
        if not line.startswith("data:") or line == "data: [DONE]":
            continue
        event = json.loads(line[5:])
        if kind == "openai-stream":
            parts.extend(c["delta"].get("content") or "" for c in event.get("choices", []))
        elif event.get("type") == "content_block_delta":
            parts.append(event["delta"].get("text", ""))
    return "".join(parts)


def capture_completion(text_: str) -> dict[str, Any]:
    """A primary's answer as an app posts it to ``/v1/captures`` (30 prompt tokens)."""
    return {
        "id": "c", "object": "chat.completion", "model": "frontier",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text_}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 2, "total_tokens": 32},
    }


def curl(url: str, body: bytes, *headers: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """``curl -sN -i``: (status line, headers, body bytes)."""
    args = ["curl", "-sN", "-i", "-X", "POST", url, "--data-binary", "@-", "-H", "content-type: application/json"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run(args, input=body, capture_output=True, timeout=30, check=True).stdout
    head, _, payload = out.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    parsed = [(k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines)]
    return status, parsed, payload


def raw_http(port: int, head: bytes, body: bytes = b"") -> bytes:
    """One request written on a socket exactly as given (absolute-form targets, odd paths,
    header bytes no HTTP client would send), with its length and ``connection: close``; the
    whole answer as bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"\r\n" + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                     + body)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def spool_text(directory: Path) -> str:
    """Every spool file's content, as text (to look for secrets)."""
    return "".join(p.read_text(errors="replace") for p in directory.glob("*") if p.is_file())


def metrics(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The sidecar's ``/metrics``: (sample name, sorted labels) -> value."""
    response = httpx.get(base_url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` (blocking) until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


async def await_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` (in the event loop) until it holds; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)
