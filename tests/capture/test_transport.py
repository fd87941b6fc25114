"""ShadowTransport under the official OpenAI and Anthropic SDKs (sync and async, streaming too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx
import httpx2
import openai
import pytest

import shadowroute
from shadowroute import Shadow, ShadowTransport, SyncShadow, SyncShadowTransport, load_config
from shadowroute.fakellm import FakeLLMServer, default_settings, make_request

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as server:
        yield server


def config_for(server: FakeLLMServer, tmp_path: Path, db_url: str, **tasks: Any):
    return load_config(
        data={
            "database_url": db_url,
            "models": {
                "small": {"base_url": server.base_url + "/v1", "input_price": 0.15, "output_price": 0.6},
                "claude-small": {"base_url": server.base_url, "api": "anthropic", "input_price": 0.8, "output_price": 4},
            },
            "tasks": tasks
            or {"classify_intent": {"candidates": ["small", "claude-small"], "sample_rate": 1.0}},
            "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
        }
    )


def classify_request() -> dict[str, Any]:
    import random

    return make_request("classify_intent", random.Random(3))


@pytest.mark.parametrize("stream", [False, True])
async def test_async_openai_sdk_is_shadowed_unchanged(
    fake_llm, tmp_path, db_url, stream, stored,
) -> None:
    config = config_for(fake_llm, tmp_path, db_url)
    request = classify_request()
    direct = openai.AsyncOpenAI(base_url=fake_llm.base_url + "/v1", api_key="sk-test-secret")
    async with Shadow(config) as sh, direct, openai.AsyncOpenAI(
        base_url=fake_llm.base_url + "/v1",
        api_key="sk-test-secret",
        http_client=httpx2.AsyncClient(transport=ShadowTransport(sh)),
    ) as client:
        with shadowroute.task("classify_intent"):
            if stream:
                chunks = await client.chat.completions.create(model="frontier", stream=True, **request)
                text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
                expected = await direct.chat.completions.create(model="frontier", stream=True, **request)
                expected_text = "".join(
                    [c.choices[0].delta.content or "" async for c in expected if c.choices]
                )
            else:
                reply = await client.chat.completions.create(model="frontier", **request)
                text = reply.choices[0].message.content
                expected_text = (
                    await direct.chat.completions.create(model="frontier", **request)
                ).choices[0].message.content
    assert text == expected_text and text
    exchanges, outputs = await stored(db_url)
    assert len(exchanges) == 1
    exchange = exchanges[0]
    assert exchange.task_type == "classify_intent" and exchange.primary_model == "frontier"
    assert exchange.source == "transport"
    assert exchange.primary_output == text
    assert exchange.request["messages"] == request["messages"]
    assert "stream" not in exchange.request
    assert exchange.input_tokens and exchange.output_tokens if not stream else True
    assert {o.model for o in outputs} == {"small", "claude-small"}
    assert all(o.error_kind is None and o.output for o in outputs)
    assert "sk-test-secret" not in repr(exchange.request) + repr(exchange.meta)


@pytest.mark.parametrize("stream", [False, True])
async def test_async_anthropic_sdk_is_shadowed_unchanged(
    fake_llm, tmp_path, db_url, stream, stored,
) -> None:
    config = config_for(fake_llm, tmp_path, db_url)
    request = classify_request()
    system, messages = request["messages"][0]["content"], request["messages"][1:]
    async with Shadow(config) as sh, anthropic.AsyncAnthropic(
        base_url=fake_llm.base_url,
        api_key="sk-ant-secret",
        http_client=httpx2.AsyncClient(transport=ShadowTransport(sh)),
    ) as client:
        kwargs = dict(model="frontier", max_tokens=200, system=system, messages=messages)
        if stream:
            async with client.messages.stream(**kwargs, extra_headers={"X-Shadowroute-Task": "classify_intent"}) as s:
                text = "".join([t async for t in s.text_stream])
        else:
            reply = await client.messages.create(**kwargs, extra_headers={"X-Shadowroute-Task": "classify_intent"})
            text = reply.content[0].text
    exchanges, outputs = await stored(db_url)
    assert len(exchanges) == 1
    exchange = exchanges[0]
    assert exchange.task_type == "classify_intent"
    assert exchange.primary_output == text and text
    # Stored in the canonical (OpenAI) shape: the system prompt is the first message.
    assert exchange.request["messages"][0] == {"role": "system", "content": system}
    assert exchange.input_tokens and exchange.output_tokens
    assert {o.model for o in outputs} == {"small", "claude-small"}
    assert fake_llm.stats()["models"]["frontier"]["anthropic"] >= 1


def test_sync_sdks_are_shadowed(fake_llm, tmp_path, db_url, stored) -> None:
    config = config_for(fake_llm, tmp_path, db_url)
    request = classify_request()
    with SyncShadow(config) as sh, openai.OpenAI(
        base_url=fake_llm.base_url + "/v1",
        api_key="x",
        http_client=httpx2.Client(transport=SyncShadowTransport(sh, task="classify_intent")),
    ) as oa, anthropic.Anthropic(
        base_url=fake_llm.base_url,
        api_key="x",
        http_client=httpx2.Client(transport=SyncShadowTransport(sh, task="classify_intent")),
    ) as an:
        plain = oa.chat.completions.create(model="frontier", **request).choices[0].message.content
        streamed = "".join(
            c.choices[0].delta.content or ""
            for c in oa.chat.completions.create(model="frontier", stream=True, **request)
            if c.choices
        )
        with an.messages.stream(
            model="frontier", max_tokens=200, system=request["messages"][0]["content"],
            messages=request["messages"][1:],
        ) as s:
            anthropic_text = "".join(s.text_stream)
    assert plain == streamed == anthropic_text
    exchanges, outputs = anyio.run(stored, db_url)
    assert len(exchanges) == 3 and {e.primary_output for e in exchanges} == {plain}
    assert len(outputs) == 6
    assert sh.stats.stored_exchanges == 3


async def test_plain_httpx_client_header_is_stripped_before_forwarding(
    tmp_path, db_url, stored,
) -> None:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={
            "id": "c1", "object": "chat.completion", "model": "frontier",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "refund"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        })

    config = load_config(data={
        "database_url": db_url,
        "tasks": {"classify_intent": {"sample_rate": 1.0}},
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
    })
    async with Shadow(config) as sh, httpx.AsyncClient(
        transport=ShadowTransport(sh, httpx.MockTransport(upstream))
    ) as client:
        response = await client.post(
            "https://api.example.test/v1/chat/completions",
            json={"model": "frontier", "messages": [{"role": "user", "content": "money back"}]},
            headers={"X-Shadowroute-Task": "classify_intent", "Authorization": "Bearer sk-live-123"},
        )
        assert response.json()["choices"][0]["message"]["content"] == "refund"
        # Not a chat call: passed through, not captured.
        await client.get("https://api.example.test/v1/models")
    assert "x-shadowroute-task" not in seen[0].headers
    assert seen[0].headers["authorization"] == "Bearer sk-live-123"
    exchanges, _ = await stored(db_url)
    assert [(e.task_type, e.primary_output) for e in exchanges] == [("classify_intent", "refund")]
    assert "sk-live-123" not in repr(exchanges[0].request)


async def test_primary_errors_and_abandoned_streams_are_counted_not_captured(
    tmp_path, db_url,
) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        if b"fail" in request.content:
            return httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"retry-after": "1"})
        async def body():  # a live stream, not pre-read content
            for _ in range(100):
                yield b'data: {"choices": []}\n\n'

        return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})

    config = load_config(data={
        "database_url": db_url,
        "tasks": {"t": {"sample_rate": 1.0}},
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
    })
    async with Shadow(config) as sh, httpx.AsyncClient(
        transport=ShadowTransport(sh, httpx.MockTransport(upstream), task="t")
    ) as client:
        url = "https://api.example.test/v1/chat/completions"
        failed = await client.post(url, json={"model": "m", "messages": [], "note": "fail"})
        assert failed.status_code == 429 and failed.headers["retry-after"] == "1"
        async with client.stream("POST", url, json={"model": "m", "messages": []}) as response:
            async for _ in response.aiter_bytes():
                break  # the caller stops reading early
    assert sh.stats.primary_errors == 1
    assert sh.stats.abandoned == 1
    assert sh.stats.enqueued == 0


async def test_hanging_and_garbage_candidates_over_http_are_recorded(
    tmp_path, db_url, stored,
) -> None:
    from shadowroute.fakellm import FakeModel

    settings = default_settings(latency_scale=0.0)
    settings = settings.with_model(FakeModel(name="stuck", hang=True)).with_model(
        FakeModel(name="broken", garbage=True)
    )
    with FakeLLMServer(settings) as server:
        config = load_config(data={
            "database_url": db_url,
            "models": {
                name: {"base_url": server.base_url + "/v1", "timeout_s": 2.0, "max_retries": 0}
                for name in ("stuck", "broken")
            },
            "tasks": {"classify_intent": {"candidates": ["stuck", "broken"], "sample_rate": 1.0}},
            "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
        })
        async with Shadow(config) as sh, httpx.AsyncClient(
            base_url=server.base_url, transport=ShadowTransport(sh, task="classify_intent")
        ) as client:
            for _ in range(3):
                began = anyio.current_time()
                response = await client.post("/v1/chat/completions", json={"model": "frontier", **classify_request()})
                assert response.status_code == 200
                # A call that waited on the stuck candidate would take its 2 s timeout; the bound
                # leaves room for a loaded machine (the suite runs two workers on two cores).
                assert anyio.current_time() - began < 1.5
    _, outputs = await stored(db_url)
    kinds = sorted((o.model, o.error_kind) for o in outputs)
    assert kinds == [("broken", "bad_response")] * 3 + [("stuck", "timeout")] * 3


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_responses_are_decoded_for_storage(
    tmp_path, db_url, encoding, stored,
) -> None:
    import gzip
    import json as jsonlib
    import zlib

    body = jsonlib.dumps({
        "id": "c1", "object": "chat.completion", "model": "frontier",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "shipping"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }).encode()
    wire = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)

    def upstream(request: httpx.Request) -> httpx.Response:
        async def stream():  # as a real transport delivers it: still encoded
            yield wire

        return httpx.Response(200, content=stream(), headers={"content-encoding": encoding, "content-type": "application/json"})

    config = load_config(data={
        "database_url": db_url,
        "tasks": {"t": {"sample_rate": 1.0}},
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
    })
    async with Shadow(config) as sh, httpx.AsyncClient(
        transport=ShadowTransport(sh, httpx.MockTransport(upstream), task="t")
    ) as client:
        response = await client.post("https://x.test/v1/chat/completions", json={
            "model": "frontier", "messages": [{"role": "user", "content": "Where is my parcel?"}]})
        assert response.json()["choices"][0]["message"]["content"] == "shipping"
    exchanges, _ = await stored(db_url)
    assert [e.primary_output for e in exchanges] == ["shipping"] and sh.stats.capture_errors == 0
