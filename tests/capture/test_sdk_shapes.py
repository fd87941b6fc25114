"""The official SDKs through ShadowTransport against the fake server, in every shape it speaks:
what is stored is what the provider sent (tool calls included), each candidate gets a request
it accepts in its own API with the settings it can carry (the rest named), and a cost is
measured or unknown, never invented."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from shadowroute import Shadow, ShadowTransport, task
from shadowroute.fakellm import LOOKUP_TOOLS, FakeLLMServer, default_settings
from shadowroute.formats import parse_answer
from shadowroute.scoring.scorers.similarity import SimilarityScorer

pytestmark = pytest.mark.anyio

SYSTEM = "[task:lookup_order] You are a support agent. Use the tools to look orders up."
QUESTION = "Hi, what did I buy in orders AB-12345 and CD-67890?"
RESPONSES_TOOLS = [{"type": "function", **tool["function"]} for tool in LOOKUP_TOOLS]
CLAUDE_TOOLS = [{"name": t["function"]["name"], "description": t["function"]["description"],
                 "input_schema": t["function"]["parameters"]} for t in LOOKUP_TOOLS]


@pytest.fixture
def llm() -> Any:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as server:
        yield server


def config_for(llm: Any, db_url: str, tmp_path: Path, make_config: Any, **task: Any) -> Any:
    base = llm.base_url
    return make_config(db_url, models={
        "frontier": {"base_url": base + "/v1", "input_price": 2.5, "output_price": 10.0},
        "claude-frontier": {"base_url": base, "api": "anthropic", "model": "frontier",
                            "input_price": 2.5, "output_price": 10.0},
        "small": {"base_url": base + "/v1", "input_price": 0.15, "output_price": 0.6},
        "small-responses": {"base_url": base + "/v1", "api": "responses", "model": "small",
                            "input_price": 0.15, "output_price": 0.6},
        "claude-small": {"base_url": base, "api": "anthropic", "input_price": 0.8,
                         "output_price": 4.0},
    }, tasks={"lookup_order": {"candidates": ["small", "small-responses", "claude-small"],
                               "sample_rate": 1.0, "noise_floor_rate": 1.0, **task}},
        store={"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
        mirror={"retry_backoff_s": 0.01})


def calls_of(stored: str | None) -> list[dict[str, Any]]:
    return list(parse_answer(stored).tool_calls or [])


def by_model(outputs: list[Any]) -> dict[str, Any]:
    return {o.model: o for o in outputs}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_the_responses_api_is_captured_priced_and_mirrored_in_each_api(
    stream: bool, llm: Any, sqlite_url: str, tmp_path: Path, make_config: Any, stored: Any,
) -> None:
    config = config_for(llm, sqlite_url, tmp_path, make_config)
    async with Shadow(config) as sh, httpx2.AsyncClient(transport=ShadowTransport(sh)) as http:
        client = openai.AsyncOpenAI(base_url=llm.base_url + "/v1", api_key="sk-test",
                                    http_client=http, max_retries=0)
        kwargs: dict[str, Any] = {"model": "frontier", "instructions": SYSTEM, "input": QUESTION,
                                  "tools": RESPONSES_TOOLS, "reasoning": {"effort": "low"}}
        with task("lookup_order"):
            if stream:
                events = [e async for e in await client.responses.create(**kwargs, stream=True)]
                response = next(e.response for e in events if e.type == "response.completed")
            else:
                response = await client.responses.create(**kwargs)
    (exchange,), outputs = await stored(sqlite_url)
    sent = [{"name": i.name, "arguments": json.loads(i.arguments)}
            for i in response.output if i.type == "function_call"]
    assert sent and calls_of(exchange.primary_output) == sent
    assert exchange.request["messages"][0] == {"role": "system", "content": SYSTEM}
    assert exchange.request["reasoning_effort"] == "low" and len(exchange.request["tools"]) == 2
    usage = response.usage
    assert usage is not None and usage.output_tokens_details.reasoning_tokens > 0
    assert (exchange.input_tokens, exchange.output_tokens) == (usage.input_tokens,
                                                               usage.output_tokens)
    assert exchange.cost_usd == pytest.approx((usage.input_tokens * 2.5
                                               + usage.output_tokens * 10.0) / 1e6)
    answers = by_model(outputs)
    assert set(answers) == {"small", "small-responses", "claude-small", "primary@replay"}
    for output in answers.values():  # every API took its request and answered with calls
        assert output.error_kind is None, output.error
        assert calls_of(output.output), output.output
        assert output.cost_usd is not None
    assert calls_of(answers["primary@replay"].output) == sent  # the noise floor: no noise
    assert answers["small"].not_carried is None and answers["claude-small"].not_carried is None
    assert sh.stats.capture_errors == 0 and sh.stats.not_shadowable == {}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_claude_text_and_tool_calls_are_stored_whole_and_compared_as_calls(
    stream: bool, llm: Any, sqlite_url: str, tmp_path: Path, make_config: Any, stored: Any,
) -> None:
    config = config_for(llm, sqlite_url, tmp_path, make_config, candidates=["small"])
    questions = [f"Hi, what is in order {c}{c}-1234{i}?" for i, c in enumerate("ABCDEFGH")]
    replies = []
    async with Shadow(config) as sh, httpx2.AsyncClient(transport=ShadowTransport(sh)) as http:
        client = anthropic.AsyncAnthropic(base_url=llm.base_url, api_key="sk-ant-test",
                                          http_client=http, max_retries=0)
        with task("lookup_order"):
            for question in questions:
                kwargs: dict[str, Any] = {"model": "claude-small", "max_tokens": 300,
                                          "system": SYSTEM, "tools": CLAUDE_TOOLS,
                                          "messages": [{"role": "user", "content": question}]}
                if stream:
                    async with client.messages.stream(**kwargs) as s:
                        replies.append(await s.get_final_message())
                else:
                    replies.append(await client.messages.create(**kwargs))
    exchanges, outputs = await stored(sqlite_url)
    assert len(exchanges) == len(questions)
    by_request = {x.request["messages"][-1]["content"]: x for x in exchanges}
    with_text = 0
    for question, reply in zip(questions, replies, strict=True):
        exchange = by_request[question]
        answer = parse_answer(exchange.primary_output)
        text = "".join(b.text for b in reply.content if b.type == "text") or None
        calls = [{"name": b.name, "arguments": b.input} for b in reply.content
                 if b.type == "tool_use"]
        assert (answer.content, list(answer.tool_calls or [])) == (text, calls)
        with_text += bool(text and calls)
        assert (exchange.input_tokens, exchange.output_tokens) == (
            reply.usage.input_tokens, reply.usage.output_tokens)
    assert with_text >= 4  # Claude's usual "Let me look that up." before its calls
    # Scored as calls: the OpenAI candidate passes wherever it made Claude's calls, whatever
    # the words around them; the noise floor of identical replays is 0.
    scorer = SimilarityScorer()
    replays = [o for o in outputs if o.model == "primary@replay"]
    assert len(replays) == len(questions)
    for output in outputs:
        exchange = next(x for x in exchanges if x.id == output.exchange_id)
        same = calls_of(output.output) == calls_of(exchange.primary_output)
        assert scorer.score(exchange.primary_output, output.output).passed is same
    assert all(scorer.score(by_id.primary_output, r.output).passed
               for r in replays for by_id in exchanges if by_id.id == r.exchange_id)


@pytest.mark.parametrize("include_usage", [False, True])
async def test_a_stream_without_usage_is_stored_with_an_unknown_cost(
    include_usage: bool, llm: Any, sqlite_url: str, tmp_path: Path, make_config: Any,
    stored: Any,
) -> None:
    config = config_for(llm, sqlite_url, tmp_path, make_config, candidates=["small"],
                        noise_floor_rate=0.0)
    async with Shadow(config) as sh, httpx2.AsyncClient(transport=ShadowTransport(sh)) as http:
        client = openai.AsyncOpenAI(base_url=llm.base_url + "/v1", api_key="sk-test",
                                    http_client=http, max_retries=0)
        extra = {"stream_options": {"include_usage": True}} if include_usage else {}
        with task("lookup_order"):
            chunks = [c async for c in await client.chat.completions.create(
                model="frontier", stream=True, messages=[{"role": "user", "content": "hello"}],
                **extra)]
    (exchange,), (output,) = await stored(sqlite_url)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert exchange.primary_output == text
    if include_usage:
        usage = chunks[-1].usage
        assert (exchange.input_tokens, exchange.output_tokens) == (usage.prompt_tokens,
                                                                   usage.completion_tokens)
        assert exchange.cost_usd is not None and exchange.cost_usd > 0
    else:
        assert (exchange.input_tokens, exchange.output_tokens, exchange.cost_usd) == (
            None, None, None)
    assert output.cost_usd is not None  # the candidate's own answer reports its usage


async def test_n_answers_are_not_asked_of_candidates_and_thinking_reaches_only_claude(
    llm: Any, sqlite_url: str, tmp_path: Path, make_config: Any, stored: Any,
) -> None:
    config = config_for(llm, sqlite_url, tmp_path, make_config, noise_floor_rate=0.0)
    async with Shadow(config) as sh, httpx2.AsyncClient(transport=ShadowTransport(sh)) as http:
        gpt = openai.AsyncOpenAI(base_url=llm.base_url + "/v1", api_key="sk-test",
                                 http_client=http, max_retries=0)
        claude = anthropic.AsyncAnthropic(base_url=llm.base_url, api_key="sk-ant-test",
                                          http_client=http, max_retries=0)
        with task("lookup_order"):
            several = await gpt.chat.completions.create(
                model="frontier", n=3, messages=[{"role": "user", "content": "hello there"}])
            thought = await claude.messages.create(
                model="frontier", max_tokens=3000, messages=[
                    {"role": "user", "content": "why is my order late?"}],
                thinking={"type": "enabled", "budget_tokens": 1024})
    assert len(several.choices) == 3
    assert thought.content[0].type == "thinking"
    exchanges, outputs = await stored(sqlite_url)
    by_turn = {x.request["messages"][-1]["content"]: x for x in exchanges}
    first, second = by_turn["hello there"], by_turn["why is my order late?"]
    assert first.request["n"] == 3 and second.request["thinking"]["budget_tokens"] == 1024
    assert first.output_tokens == several.usage.completion_tokens  # paid for all three
    carried = {(o.exchange_id, o.model): o.not_carried for o in outputs}
    assert all(o.error_kind is None for o in outputs), [o.error for o in outputs]
    assert carried[(first.id, "small")] == ["n"]
    assert carried[(first.id, "claude-small")] == ["n"]
    assert carried[(first.id, "small-responses")] == ["n"]
    assert carried[(second.id, "claude-small")] is None  # Claude gets the thinking
    assert carried[(second.id, "small")] == ["thinking"]
    assert carried[(second.id, "small-responses")] == ["thinking"]
    assert parse_answer(second.primary_output).content == "".join(
        b.text for b in thought.content if b.type == "text")


async def test_shadow_reads_the_sdks_own_response_objects(
    llm: Any, sqlite_url: str, tmp_path: Path, make_config: Any, stored: Any,
) -> None:
    """``shadow()`` around SDK calls: it is given the SDK's objects (a Responses API
    ``Response``, an Anthropic ``Message`` with text and tool_use blocks, a chat completion with
    ``n`` choices) and stores what they say."""
    config = config_for(llm, sqlite_url, tmp_path, make_config, candidates=["small"],
                        noise_floor_rate=0.0)
    gpt = openai.AsyncOpenAI(base_url=llm.base_url + "/v1", api_key="sk-test", max_retries=0)
    claude = anthropic.AsyncAnthropic(base_url=llm.base_url, api_key="sk-ant", max_retries=0)
    responses_request = {"model": "frontier", "instructions": SYSTEM, "tools": RESPONSES_TOOLS,
                         "input": "Where is my parcel for order AB-12345?"}
    claude_request = {"model": "claude-small", "max_tokens": 300, "system": SYSTEM,
                      "tools": CLAUDE_TOOLS,
                      "messages": [{"role": "user", "content": "What is in order AB-12345?"}]}
    chat_request = {"model": "frontier", "n": 2,
                    "messages": [{"role": "user", "content": "hello from shadow()"}]}
    async with gpt, claude, Shadow(config) as sh:
        response = await sh.shadow(task="lookup_order", request=responses_request, api="responses",
                                   call=lambda: gpt.responses.create(**responses_request))
        message = await sh.shadow(task="lookup_order", request=claude_request, api="anthropic",
                                  call=lambda: claude.messages.create(**claude_request))
        completion = await sh.shadow(task="lookup_order", request=chat_request,
                                     call=lambda: gpt.chat.completions.create(**chat_request))
    assert sh.stats.capture_errors == 0
    exchanges, outputs = await stored(sqlite_url)
    by_model = {x.primary_model: x for x in exchanges}
    agent = next(x for x in exchanges
                 if x.primary_model == "frontier" and x.request["messages"][0]["content"] == SYSTEM)
    sent = [{"name": i.name, "arguments": json.loads(i.arguments)}
            for i in response.output if i.type == "function_call"]
    assert sent and calls_of(agent.primary_output) == sent
    assert agent.input_tokens == response.usage.input_tokens
    stored_claude = parse_answer(by_model["claude-small"].primary_output)
    assert list(stored_claude.tool_calls or []) == [
        {"name": b.name, "arguments": b.input} for b in message.content if b.type == "tool_use"]
    assert (by_model["claude-small"].input_tokens, by_model["claude-small"].output_tokens) == (
        message.usage.input_tokens, message.usage.output_tokens)
    chat = next(x for x in exchanges if x.request["messages"][-1]["content"] == "hello from shadow()")
    assert chat.primary_output == completion.choices[0].message.content
    assert chat.output_tokens == completion.usage.completion_tokens  # all n answers, paid for
    assert all(o.error_kind is None for o in outputs)
