"""The sidecar's errors: upstream errors relayed exactly, bad requests answered in the API's
error shape (never a 500), an unreachable, missing or silent upstream.

Byte-for-byte comparisons use *twin* fake servers (see test_proxy.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx
import openai
import pytest

from shadowroute.fakellm import FakeLLMServer, FakeModel, default_settings
from shadowroute.serving import tcp_socket
from support.sidecar import ANTHROPIC_KEY, OPENAI_KEY, ROUTE, TASK


def error_shape_ok(api: str, body: dict[str, Any]) -> bool:
    if api == "anthropic":
        return body.get("type") == "error" and isinstance(body["error"]["message"], str) and bool(body["error"]["type"])
    return set(body["error"]) >= {"message", "type", "param", "code"} and isinstance(body["error"]["message"], str)


# --------------------------------------------------------------------------- upstream errors


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 500])
async def test_upstream_errors_are_relayed_exactly(
    tmp_path: Path, sqlite_url: str, status: int, request_for, twin_fakes, make_config,
    sidecar_preset, sidecar_server, await_until, metrics, anthropic_kwargs, sidecar_state, curl,
) -> None:
    settings = default_settings(latency_scale=0.0).with_model(
        FakeModel(name="limited", error_rate=1.0, error_status=status, retry_after=2)
    )
    request = request_for("classify_intent", 5)
    with twin_fakes(settings) as (direct, upstream):
        config = make_config(sqlite_url, sidecar_preset(upstream.base_url),
                             tasks={"classify_intent": {"candidates": ["small"], "sample_rate": 1.0}})
        async with sidecar_server(config) as sc:
            async with openai.AsyncOpenAI(
                base_url=direct.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0
            ) as oa_direct, openai.AsyncOpenAI(
                base_url=sc.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0
            ) as oa, anthropic.AsyncAnthropic(
                base_url=direct.base_url, api_key=ANTHROPIC_KEY, max_retries=0
            ) as an_direct, anthropic.AsyncAnthropic(
                base_url=sc.base_url, api_key=ANTHROPIC_KEY, max_retries=0
            ) as an:
                with pytest.raises(openai.APIStatusError) as want:
                    await oa_direct.chat.completions.create(model="limited", **request)
                with pytest.raises(openai.APIStatusError) as got:
                    await oa.chat.completions.create(model="limited", **request, extra_headers={TASK: "classify_intent"})
                kwargs = {**anthropic_kwargs(request), "model": "limited"}
                with pytest.raises(anthropic.APIStatusError) as a_want:
                    await an_direct.messages.create(**kwargs)
                with pytest.raises(anthropic.APIStatusError) as a_got:
                    await an.messages.create(**kwargs, extra_headers={TASK: "classify_intent"})
            raw = json.dumps({"model": "limited", **request}).encode()
            d_status, d_headers, d_body = await anyio.to_thread.run_sync(curl, direct.base_url + "/v1/chat/completions", raw)
            s_status, s_headers, s_body = await anyio.to_thread.run_sync(curl, sc.base_url + "/v1/chat/completions", raw)
            stats = sidecar_state(sc).shadow.stats
            await await_until(lambda: stats.primary_errors == 3)
            samples = await anyio.to_thread.run_sync(metrics, sc.base_url)
    for want_, got_ in ((want.value, got.value), (a_want.value, a_got.value)):
        assert type(got_) is type(want_) and got_.status_code == want_.status_code == status
        assert got_.response.content == want_.response.content and got_.body == want_.body
        for header in ("retry-after", "retry-after-ms", "x-request-id", "content-type"):
            assert got_.response.headers.get(header) == want_.response.headers.get(header)
    if status == 429:
        assert got.value.response.headers["retry-after"] == "2" and isinstance(got.value, openai.RateLimitError)
    assert a_got.value.body["type"] == "error"  # Anthropic's error shape, as the upstream sent it
    assert s_status == d_status == f"HTTP/1.1 {status} {httpx.codes.get_reason_phrase(status)}"
    assert s_body == d_body and b"Simulated error" in s_body
    strip = {"date", ROUTE}
    assert [h for h in s_headers if h[0] not in strip] == [h for h in d_headers if h[0] not in strip]
    assert stats.enqueued == 0 and stats.primary_errors == 3
    assert upstream.calls("small") == 0  # failed primary calls are not mirrored
    assert samples[("shadowroute_upstream_requests_total", (("api", "openai"), ("status", str(status))))] == 2
    assert samples[("shadowroute_upstream_requests_total", (("api", "anthropic"), ("status", str(status))))] == 1
    assert samples[("shadowroute_primary_errors_total", ())] == 3


# --------------------------------------------------------------------------- bad requests


def test_bodies_the_sidecar_cannot_capture_are_relayed_for_the_upstream_to_judge(
    tmp_path: Path, sqlite_url: str, make_config, sidecar_preset, sidecar_server, sidecar_state,
    metrics,
) -> None:
    """The sidecar is never stricter than the upstream: a chat body it cannot read, or one
    larger than the capture limit (with or without Content-Length), reaches the upstream as it
    came and the client gets the upstream's own answer; such calls are counted, not captured.
    Only the optional ceiling (``max_request_bytes``) and ``/v1/captures`` answer 413."""
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = make_config(sqlite_url, sidecar_preset(llm.base_url),
                             sidecar={"max_body_bytes": 1024, "max_request_bytes": 4096})
        with sidecar_server(config) as sc, httpx.Client(base_url=sc.base_url) as client:
            unreadable = (b"{not json", b"", b"\xff\xfe{}", b"[1, 2]", b'"text"', b"null", b"42")
            for path, api in (("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")):
                for bad in unreadable:
                    response = client.post(path, content=bad, headers={"content-type": "application/json"})
                    assert response.status_code == 400, (path, bad, response.text)
                    assert error_shape_ok(api, response.json()), response.text
                    assert "x-shadowroute-route" not in response.headers  # the upstream's answer
                big = json.dumps({"model": "frontier", "max_tokens": 5,
                                  "messages": [{"role": "user", "content": "x" * 2000}]}).encode()
                declared = client.post(path, content=big, headers={"content-type": "application/json"})

                def chunks(
                    body: bytes,
                ) -> Iterator[bytes]:  # no Content-Length: checked while reading
                    for i in range(0, len(body), 256):
                        yield body[i:i + 256]

                streamed = client.post(path, content=chunks(big), headers={"content-type": "application/json"})
                for response in (declared, streamed):
                    assert response.status_code == 200, response.text  # relayed, answered
                huge = big.replace(b"x" * 2000, b"y" * 5000)
                for response in (
                    client.post(path, content=huge, headers={"content-type": "application/json"}),
                    client.post(path, content=chunks(huge), headers={"content-type": "application/json"}),
                ):
                    assert response.status_code == 413, response.text
                    assert error_shape_ok(api, response.json())
                    assert "max_request_bytes" in response.json()["error"]["message"]
            captures = client.post("/v1/captures", content=b"x" * 2048)
            assert captures.status_code == 413
            stats = sidecar_state(sc).shadow.stats
            assert stats.offered == 0 and stats.enqueued == 0  # nothing captured
            samples = metrics(sc.base_url)
    reason = "shadowroute_not_captured_total"
    assert samples[(reason, (("reason", "unparseable"),))] == 2 * len(unreadable)
    # The large ones, and the huge streamed ones, cut off at the ceiling once on their way.
    assert samples[(reason, (("reason", "too_large"),))] == 2 * 3
    assert llm.stats()["total_calls"] == 2 * 2  # the large ones it could answer (200)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/captures"])
def test_deeply_nested_json_gets_the_upstreams_400_not_a_500(
    tmp_path: Path, sqlite_url: str, path: str, make_config, sidecar_preset, sidecar_server,
) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = make_config(sqlite_url, sidecar_preset(llm.base_url))
        with sidecar_server(config) as sc:
            response = httpx.post(sc.base_url + path, content=b"[" * 20_000 + b"]" * 20_000)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert "error" in response.json()


@pytest.mark.anyio
async def test_unreachable_or_missing_upstream(
    tmp_path: Path, sqlite_url: str, make_config, sidecar_preset, sidecar_server, metrics,
    anthropic_kwargs, request_for,
) -> None:
    closed = tcp_socket("127.0.0.1", 0)  # bound, never listening: connections are refused
    try:
        port = closed.getsockname()[1]
        config = make_config(sqlite_url, sidecar_preset(f"http://127.0.0.1:{port}"))
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            chat = await client.post("/v1/chat/completions", json={"model": "frontier", "messages": [{"role": "user", "content": "hi"}]})
            messages = await client.post("/v1/messages", json=anthropic_kwargs(request_for("sentiment", 1)))
            models = await client.get("/v1/models")
            samples = await anyio.to_thread.run_sync(metrics, sc.base_url)
    finally:
        closed.close()
    for response, api in ((chat, "openai"), (messages, "anthropic"), (models, "openai")):
        assert response.status_code == 502, response.text
        assert error_shape_ok(api, response.json())
    assert "unreachable" in chat.json()["error"]["message"]
    assert samples[("shadowroute_upstream_requests_total", (("api", "openai"), ("status", "connection")))] == 1
    assert samples[("shadowroute_upstream_requests_total", (("api", "other"), ("status", "connection")))] == 1

    config = make_config(sqlite_url, sidecar_preset(None))
    async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
        chat = await client.post("/v1/chat/completions", json={"model": "frontier", "messages": [{"role": "user", "content": "hi"}]})
        messages = await client.post("/v1/messages", content=b"{broken")
        health = await client.get("/healthz")
    assert chat.status_code == messages.status_code == 503
    assert error_shape_ok("openai", chat.json()) and error_shape_ok("anthropic", messages.json())
    assert "--upstream" in chat.json()["error"]["message"]
    assert health.status_code == 200 and health.json()["upstream"] is False


@pytest.mark.anyio
async def test_unreachable_upstream_is_counted_as_a_primary_error(
    tmp_path: Path, sqlite_url: str, make_config, sidecar_preset, sidecar_server, metrics,
    sidecar_state,
) -> None:
    """Stats promise that every offered call ends in exactly one bucket; a chat call that never
    reached the upstream is a failed primary call."""
    closed = tcp_socket("127.0.0.1", 0)
    try:
        config = make_config(sqlite_url, sidecar_preset(f"http://127.0.0.1:{closed.getsockname()[1]}"))
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            response = await client.post("/v1/chat/completions", json={"model": "frontier", "messages": []})
            stats = sidecar_state(sc).shadow.stats
            samples = await anyio.to_thread.run_sync(metrics, sc.base_url)
    finally:
        closed.close()
    assert response.status_code == 502
    assert stats.offered == 1
    ended = (stats.not_sampled + stats.primary_errors + stats.enqueued + stats.dropped
             + stats.abandoned + stats.oversize + stats.capture_errors)
    assert ended == stats.offered, stats.snapshot()
    assert samples[("shadowroute_primary_errors_total", ())] == 1


@pytest.mark.anyio
async def test_upstream_that_does_not_answer_in_time_is_a_504(
    tmp_path: Path, sqlite_url: str, make_config, sidecar_preset, sidecar_server, sidecar_state,
) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as upstream:
        upstream.update_model("frontier", hang=True)
        config = make_config(sqlite_url, sidecar_preset(upstream.base_url), sidecar={"upstream_timeout_s": 0.3})
        with sidecar_server(config) as server:
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                chat = await client.post("/v1/chat/completions", json={"model": "frontier", "messages": [{"role": "user", "content": "hi"}]})
                messages = await client.post("/v1/messages", json={"model": "frontier", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
            stats = sidecar_state(server).shadow.stats
    assert chat.status_code == 504 and chat.json()["error"]["type"] == "upstream_timeout"
    assert messages.status_code == 504 and messages.json()["type"] == "error"
    assert stats.primary_errors == 2
