"""The official SDKs through `shadowroute serve`: Responses API calls and Claude's text + tool
calls are relayed exactly, captured whole, and a promoted Responses task type is routed to a
model that speaks the Responses API, while a follow-up that depends on the primary's stored
state stays on the primary."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from shadowroute.fakellm import LOOKUP_TOOLS, FakeLLMServer, default_settings
from shadowroute.formats import parse_answer
from shadowroute.routing import Route, write_routes

pytestmark = pytest.mark.anyio

SYSTEM = "[task:lookup_order] You are a support agent. Use the tools to look orders up."
RESPONSES_TOOLS = [{"type": "function", **tool["function"]} for tool in LOOKUP_TOOLS]
HEADERS = {"X-Shadowroute-Task": "lookup_order"}


def sidecar_config(llm: Any, db_url: str, tmp_path: Path, make_config: Any) -> Any:
    base = llm.base_url
    return make_config(db_url, models={
        "frontier": {"base_url": base + "/v1", "input_price": 2.5, "output_price": 10.0},
        "small": {"base_url": base + "/v1", "input_price": 0.15, "output_price": 0.6},
        "small-responses": {"base_url": base + "/v1", "api": "responses", "model": "small",
                            "input_price": 0.15, "output_price": 0.6},
        "claude-small": {"base_url": base, "api": "anthropic"},
    }, tasks={"lookup_order": {"candidates": ["small", "small-responses"], "sample_rate": 1.0,
                               "noise_floor_rate": 0.0}},
        sidecar={"upstream": base, "anthropic_upstream": base},
        routes={"file": str(tmp_path / "routes.yaml"), "reload_interval_s": 0,
                "reverse_shadow_rate": 1.0},
        store={"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05})


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_responses_api_calls_through_the_sidecar_are_relayed_and_captured(
    stream: bool, tmp_path: Path, sqlite_url: str, make_config: Any, sidecar_server: Any,
    stored: Any, await_until: Any, sidecar_state: Any,
) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = sidecar_config(llm, sqlite_url, tmp_path, make_config)
        async with (
            sidecar_server(config) as sc,
            openai.AsyncOpenAI(base_url=llm.base_url + "/v1", api_key="sk-t",
                               max_retries=0) as direct,
            openai.AsyncOpenAI(base_url=sc.base_url + "/v1", api_key="sk-t", max_retries=0,
                               default_headers=HEADERS) as proxied,
        ):
            kwargs = {"model": "frontier", "instructions": SYSTEM, "tools": RESPONSES_TOOLS,
                      "input": "Where is my parcel for order AB-12345?"}
            if stream:
                async def events(client: Any) -> list[Any]:
                    return [e async for e in await client.responses.create(**kwargs, stream=True)]

                mine, theirs = await events(proxied), await events(direct)
                assert [e.type for e in mine] == [e.type for e in theirs]
                response = next(e.response for e in mine if e.type == "response.completed")
            else:
                raw = await proxied.responses.with_raw_response.create(**kwargs)
                assert raw.headers["x-shadowroute-route"].startswith("model=frontier; route=primary")
                response = raw.parse()
                again = await direct.responses.create(**kwargs)
                assert [(i.type, getattr(i, "arguments", None)) for i in response.output] == [
                    (i.type, getattr(i, "arguments", None)) for i in again.output]
            state = sidecar_state(sc)
            await await_until(lambda: state.shadow.stats.stored_exchanges == 1, what="stored")
    (exchange,), outputs = await stored(sqlite_url)
    calls = [{"name": i.name, "arguments": json.loads(i.arguments)}
             for i in response.output if i.type == "function_call"]
    assert calls and list(parse_answer(exchange.primary_output).tool_calls or []) == calls
    assert exchange.input_tokens == response.usage.input_tokens
    assert {o.model for o in outputs} == {"small", "small-responses"}
    assert all(o.error_kind is None for o in outputs)


async def test_claude_text_and_tool_calls_through_the_sidecar_are_captured_whole(
    tmp_path: Path, sqlite_url: str, make_config: Any, sidecar_server: Any, stored: Any,
    await_until: Any, sidecar_state: Any,
) -> None:
    tools = [{"name": t["function"]["name"], "input_schema": t["function"]["parameters"]}
             for t in LOOKUP_TOOLS]
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = sidecar_config(llm, sqlite_url, tmp_path, make_config)
        async with (
            sidecar_server(config) as sc,
            anthropic.AsyncAnthropic(base_url=sc.base_url, api_key="sk-ant-t", max_retries=0,
                                     default_headers=HEADERS) as client,
        ):
            replies = []
            for i in range(6):
                async with client.messages.stream(
                    model="claude-small", max_tokens=300, system=SYSTEM, tools=tools,
                    messages=[{"role": "user", "content": f"What is in order AB-1234{i}?"}],
                ) as s:
                    replies.append(await s.get_final_message())
            state = sidecar_state(sc)
            await await_until(lambda: state.shadow.stats.stored_exchanges == 6, what="stored")
    exchanges, _ = await stored(sqlite_url)
    stored_answers = sorted(
        (parse_answer(x.primary_output).content or "",
         json.dumps(parse_answer(x.primary_output).tool_calls)) for x in exchanges)
    sent = sorted(("".join(b.text for b in r.content if b.type == "text"),
                   json.dumps(tuple({"name": b.name, "arguments": b.input}
                                    for b in r.content if b.type == "tool_use") or None))
                  for r in replies)
    assert stored_answers == sent
    assert any(text and calls != "null" for text, calls in stored_answers)  # text + calls kept


async def test_a_promoted_responses_task_is_routed_but_a_stateful_follow_up_is_not(
    tmp_path: Path, sqlite_url: str, make_config: Any, sidecar_server: Any,
) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = sidecar_config(llm, sqlite_url, tmp_path, make_config)
        write_routes(config.routes_file(), {"lookup_order": Route(
            task="lookup_order", model="small-responses", tier="promoted", primary="frontier",
            since=datetime(2026, 12, 1, tzinfo=UTC), by="test")})
        async with (
            sidecar_server(config) as sc,
            openai.AsyncOpenAI(base_url=sc.base_url + "/v1", api_key="sk-t", max_retries=0,
                               default_headers=HEADERS) as client,
        ):
            first = await client.responses.with_raw_response.create(
                model="frontier", input="Hello, what can you do?")
            follow_up = await client.responses.with_raw_response.create(
                model="frontier", input="And then?", previous_response_id=first.parse().id)
    assert first.headers["x-shadowroute-route"].startswith("model=small; route=promoted")
    assert first.parse().model == "small"
    assert follow_up.headers["x-shadowroute-route"].startswith("model=frontier; route=primary")
