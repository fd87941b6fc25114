"""The sidecar never sends a credential to a host of another API: with only ``--upstream``
(OpenAI), an Anthropic call is answered with an error in Anthropic's shape and not forwarded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shadowroute.config import SidecarConfig
from shadowroute.serving import BackgroundServer
from shadowroute.sidecar.answers import upstreams_line

pytestmark = pytest.mark.anyio
ANTHROPIC_KEY = "sk-ant-test-not-for-openai"


def spy() -> tuple[BackgroundServer, list[dict[str, Any]]]:
    """An upstream that answers every call and records its path and headers."""
    seen: list[dict[str, Any]] = []

    async def record(request: Request) -> JSONResponse:
        seen.append({"path": request.url.path, "headers": dict(request.headers)})
        return JSONResponse({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": "ok"}}]})

    app = Starlette(routes=[Route("/{path:path}", record, methods=["GET", "POST"])])
    return BackgroundServer(app), seen


ANTHROPIC_CALLS = [
    ("POST", "/v1/messages", {"model": "claude", "max_tokens": 5,
                              "messages": [{"role": "user", "content": "hi"}]}),
    ("POST", "/v1/messages/count_tokens", {"model": "claude",
                                           "messages": [{"role": "user", "content": "hi"}]}),
    ("GET", "/v1/models", None),  # the Anthropic SDK's models.list: told apart by its header
]


async def test_anthropic_calls_are_not_forwarded_to_the_openai_upstream(
    tmp_path: Path, sqlite_url: str, make_config, sidecar_preset, sidecar_server,
) -> None:
    openai_host, seen = spy()
    with openai_host:
        preset = sidecar_preset(openai_host.base_url)
        preset["sidecar"] = {**preset["sidecar"], "anthropic_upstream": None}
        config = make_config(sqlite_url, preset)
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            refused = [await client.request(method, path, json=body, headers={
                "x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"})
                for method, path, body in ANTHROPIC_CALLS]
            chat = await client.post("/v1/chat/completions", headers={
                "authorization": "Bearer sk-openai"}, json={
                "model": "frontier", "messages": [{"role": "user", "content": "hi"}]})
    for response in refused:
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["type"] == "error" and body["error"]["type"] == "configuration_error"
        assert "--anthropic-upstream" in body["error"]["message"]
    assert chat.status_code == 200
    assert [s["path"] for s in seen] == ["/v1/chat/completions"]
    assert all(ANTHROPIC_KEY not in str(s["headers"]) for s in seen)


async def test_each_api_goes_to_its_own_upstream(
    tmp_path: Path, sqlite_url: str, make_config, sidecar_preset, sidecar_server,
) -> None:
    openai_host, to_openai = spy()
    anthropic_host, to_anthropic = spy()
    with openai_host, anthropic_host:
        preset = sidecar_preset(openai_host.base_url)
        preset["sidecar"] = {**preset["sidecar"], "anthropic_upstream": anthropic_host.base_url}
        config = make_config(sqlite_url, preset)
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            for method, path, body in ANTHROPIC_CALLS:
                await client.request(method, path, json=body, headers={
                    "x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"})
            await client.post("/v1/responses", json={"model": "gpt", "input": "hi"})
            await client.get("/v1/models")
    assert [s["path"] for s in to_anthropic] == [path for _, path, _ in ANTHROPIC_CALLS]
    assert [s["path"] for s in to_openai] == ["/v1/responses", "/v1/models"]


def test_the_start_up_line_says_where_each_api_goes() -> None:
    line = upstreams_line(SidecarConfig(upstream="https://api.openai.com"))
    assert "-> https://api.openai.com" in line
    assert "Anthropic /v1/messages -> (not served: --anthropic-upstream)" in line
    assert "bodies over 16,777,216 bytes relayed uncaptured, no request size limit" in line
    assert "WebSocket upgrades (Realtime API) refused with 501" in line
    both = upstreams_line(SidecarConfig(upstream="https://gw.example",
                                        anthropic_upstream="https://gw.example"))
    assert both.count("https://gw.example") == 2
