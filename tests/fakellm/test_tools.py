"""Tool calling on the fake server: the lookup_order agent, and its calls in all three APIs.

The simulator is checked as a pure function; the wire shapes through the official SDK clients
over loopback (OpenAI chat and Responses, Anthropic Messages; stream and not), with whole
conversations: calls, results sent back, the answer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from shadowroute.fakellm import (
    LOOKUP_TOOLS,
    TASK_SIMULATORS,
    TOOL_SIMULATORS,
    FakeLLMServer,
    FakeModel,
    default_settings,
    ground_truth,
    make_request,
    sample_requests,
    simulate,
    tool_result,
)

LOOKUP = TOOL_SIMULATORS["lookup_order"]
SYSTEM = LOOKUP.system_prompt
TWO = "Where are my orders KT-40215 and MP-77310? Neither has arrived."
ONE = "Can you tell me what is in order KT-40215? I forgot what I picked."
SHIPPING = [{"name": "get_shipping", "arguments": {"order_id": "KT-40215"}},
            {"name": "get_shipping", "arguments": {"order_id": "MP-77310"}}]
NAMES = ["get_order", "get_shipping"]
CLAUDE_TOOLS: Any = [{"name": t["function"]["name"], "description": t["function"]["description"],
                      "input_schema": t["function"]["parameters"]} for t in LOOKUP_TOOLS]
RESPONSES_TOOLS: Any = [{"type": "function", **t["function"]} for t in LOOKUP_TOOLS]


def msgs(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def calls_of(answer: Any) -> list[dict[str, Any]]:
    return [{"name": c.name, "arguments": c.arguments} for c in answer.tool_calls]


@pytest.fixture(scope="module")
def srv() -> Iterator[FakeLLMServer]:
    settings = default_settings(latency_scale=0.0)
    for model in (FakeModel(name="agent", accuracy=1.0, tool_preamble=0.0),
                  FakeModel(name="agent-claude", accuracy=1.0, tool_preamble=1.0)):
        settings = settings.with_model(model)
    with FakeLLMServer(settings) as server:
        yield server


# --- the simulator -----------------------------------------------------------------------------------
def test_requests_and_ground_truth() -> None:
    assert "lookup_order" not in TASK_SIMULATORS  # the text tasks' default mix is unchanged
    assert {d.task for d in sample_requests(60, seed=1)} <= set(TASK_SIMULATORS)
    rng = random.Random(0)
    counts = set()
    for _ in range(200):
        request = make_request("lookup_order", rng)
        assert request["tools"] == LOOKUP_TOOLS and request["messages"][0]["content"] == SYSTEM
        truth = json.loads(ground_truth(request) or "")
        counts.add(len(truth))
        user = request["messages"][1]["content"]
        assert all(c["arguments"]["order_id"] in user for c in truth)
    assert counts == {1, 2}
    demo = sample_requests(5, seed=2, tasks=["lookup_order"])
    assert {d.task for d in demo} == {"lookup_order"}
    with pytest.raises(ValueError, match="lookup_order"):
        make_request("nope", rng)


def test_right_turns_call_the_right_tool_in_parallel_then_answer() -> None:
    answer = simulate(msgs(TWO), seed=7, model="m", accuracy=1.0, tools=NAMES)
    assert answer.task == "lookup_order" and answer.correct
    assert answer.text == "" and calls_of(answer) == SHIPPING
    one = simulate(msgs(ONE), seed=7, model="m", accuracy=1.0, tools=NAMES)
    assert calls_of(one) == [{"name": "get_order", "arguments": {"order_id": "KT-40215"}}]
    results = [{"role": "tool", "content": tool_result(c["name"], c["arguments"]), **c}
               for c in SHIPPING]
    turn2 = [*msgs(TWO), {"role": "assistant", "content": "", "tool_calls": SHIPPING}, *results]
    final = simulate(turn2, seed=7, model="m", accuracy=1.0, tools=NAMES)
    assert final.tool_calls == ()
    for call in SHIPPING:
        data = json.loads(tool_result(call["name"], call["arguments"]))
        assert f"Order {data['order_id']}: carrier {data['carrier']}" in final.text
        assert data["status"] in final.text


def test_settings_that_change_the_turn() -> None:
    base = {"seed": 7, "model": "m", "accuracy": 1.0}
    assert simulate(msgs(TWO), **base).tool_calls == ()  # no tools declared: text
    assert simulate(msgs(TWO), tools=NAMES, tool_choice="none", **base).tool_calls == ()
    forced = simulate(msgs(TWO), tools=NAMES, tool_choice="get_order", **base)
    assert {c.name for c in forced.tool_calls} == {"get_order"}
    assert simulate(msgs(TWO), tools=["other_tool"], **base).tool_calls == ()
    first = simulate(msgs(TWO), tools=NAMES, parallel_tool_calls=False, **base)
    assert calls_of(first) == SHIPPING[:1]
    done = [*msgs(TWO), {"role": "assistant", "content": "", "tool_calls": SHIPPING[:1]},
            {"role": "tool", "content": "{}", **SHIPPING[0]}]
    second = simulate(done, tools=NAMES, parallel_tool_calls=False, **base)
    assert calls_of(second) == SHIPPING[1:]
    no_id = simulate(msgs("Where is my parcel?"), tools=NAMES, **base)
    assert no_id.tool_calls == () and "order number" in no_id.text
    preamble = simulate(msgs(TWO), tools=NAMES, preamble=1.0, **base)
    assert preamble.text == "Let me look that up." and calls_of(preamble) == SHIPPING


def test_wrong_turns_are_of_every_kind_and_accuracy_holds() -> None:
    kinds: set[str] = set()
    hits = 0
    for seed in range(400):
        answer = simulate(msgs(TWO), seed=seed, model="weak", accuracy=0.6, tools=NAMES)
        calls = calls_of(answer)
        hits += calls == SHIPPING
        assert (calls == SHIPPING) == answer.correct
        if answer.correct:
            continue
        if not calls:
            kinds.add("no call")
        elif len(calls) == 1:
            kinds.add("missed a call")
        elif {c["name"] for c in calls} == {"get_order"}:
            kinds.add("wrong tool")
        else:
            kinds.add("wrong argument")
    assert kinds == {"no call", "missed a call", "wrong tool", "wrong argument"}
    assert abs(hits / 400 - 0.6) < 0.08


def test_turns_are_deterministic_per_seed_and_model() -> None:
    def draw(seed: int, model: str) -> list[Any]:
        return [calls_of(simulate(msgs(f"Where is order KT-4{n:04d}?"), seed=seed, model=model,
                                  accuracy=0.5, tools=NAMES)) for n in range(40)]

    assert draw(7, "small") == draw(7, "small")
    assert draw(7, "small") != draw(8, "small") and draw(7, "small") != draw(7, "tiny")


# --- OpenAI chat through the SDK -----------------------------------------------------------------
def test_chat_parallel_tool_calls_then_the_answer(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="agent", messages=msgs(TWO),  # type: ignore[arg-type]
                                        tools=LOOKUP_TOOLS)  # type: ignore[arg-type]
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        (c["name"], c["arguments"]) for c in SHIPPING]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)
    results = [{"role": "tool", "tool_call_id": c.id,
                "content": tool_result(c.function.name, json.loads(c.function.arguments))}  # type: ignore[union-attr]
               for c in calls]
    follow = [*msgs(TWO), choice.message.model_dump(exclude_none=True), *results]
    final = oai.chat.completions.create(model="agent", messages=follow,  # type: ignore[arg-type]
                                        tools=LOOKUP_TOOLS)  # type: ignore[arg-type]
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.tool_calls is None
    assert "Order KT-40215:" in (final.choices[0].message.content or "")
    assert final.usage and reply.usage and final.usage.prompt_tokens > reply.usage.prompt_tokens


def test_chat_text_and_tool_calls_streamed(oai: openai.OpenAI) -> None:
    whole = oai.chat.completions.create(model="agent-claude", messages=msgs(TWO),  # type: ignore[arg-type]
                                        tools=LOOKUP_TOOLS)  # type: ignore[arg-type]
    assert whole.choices[0].message.content == "Let me look that up."
    assert len(whole.choices[0].message.tool_calls or []) == 2
    chunks = list(oai.chat.completions.create(
        model="agent-claude", messages=msgs(TWO), tools=LOOKUP_TOOLS, stream=True))  # type: ignore[arg-type]
    deltas = [c.choices[0].delta for c in chunks]
    headers = [t for d in deltas for t in d.tool_calls or () if t.id]
    assert [(t.index, t.function.name) for t in headers] == [(0, "get_shipping"),  # type: ignore[union-attr]
                                                             (1, "get_shipping")]
    fragments = {0: "", 1: ""}
    for d in deltas:
        for t in d.tool_calls or ():
            fragments[t.index] += (t.function.arguments or "") if t.function else ""
    assert [json.loads(fragments[i]) for i in (0, 1)] == [c["arguments"] for c in SHIPPING]
    assert sum(1 for d in deltas for t in d.tool_calls or () if not t.id) > 4  # fragments
    assert "".join(d.content or "" for d in deltas) == "Let me look that up."
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    with oai.chat.completions.stream(model="agent", messages=msgs(TWO),  # type: ignore[arg-type]
                                     tools=LOOKUP_TOOLS) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content is None
    assert [json.loads(t.function.arguments) for t in message.tool_calls or ()] == [  # type: ignore[union-attr]
        c["arguments"] for c in SHIPPING]


def test_chat_truncated_inside_a_call(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="agent", messages=msgs(TWO),  # type: ignore[arg-type]
                                        tools=LOOKUP_TOOLS, max_tokens=13)  # type: ignore[arg-type]
    choice = reply.choices[0]
    assert choice.finish_reason == "length" and reply.usage and reply.usage.completion_tokens <= 13
    arguments = (choice.message.tool_calls or [])[-1].function.arguments  # type: ignore[union-attr]
    with pytest.raises(json.JSONDecodeError):
        json.loads(arguments)


def test_forced_tool_choice_on_a_task_without_tools(oai: openai.OpenAI) -> None:
    weather: Any = [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"]}}}]
    reply = oai.chat.completions.create(
        model="agent", messages=[{"role": "user", "content": "Weather in Lyon?"}],
        tools=weather, tool_choice="required")
    call = (reply.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert set(json.loads(call.function.arguments)) == {"city", "unit"}  # type: ignore[union-attr]
    auto = oai.chat.completions.create(
        model="agent", messages=[{"role": "user", "content": "Weather in Lyon?"}], tools=weather)
    assert auto.choices[0].message.tool_calls is None


# --- Anthropic through the SDK -------------------------------------------------------------------
def test_anthropic_text_then_tool_use_blocks_then_the_answer(ant: anthropic.Anthropic) -> None:
    msg = ant.messages.create(model="agent-claude", max_tokens=500, system=SYSTEM, tools=CLAUDE_TOOLS,
                              messages=[{"role": "user", "content": TWO}])
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use"]
    assert msg.stop_reason == "tool_use" and msg.content[0].text == "Let me look that up."  # type: ignore[union-attr]
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [(c["name"], c["arguments"]) for c in SHIPPING]
    assert all(u.id.startswith("toolu_") for u in uses)
    results: Any = [{"type": "tool_result", "tool_use_id": u.id,
                     "content": tool_result(u.name, u.input)} for u in uses]
    final = ant.messages.create(
        model="agent-claude", max_tokens=500, system=SYSTEM, tools=CLAUDE_TOOLS,
        messages=[{"role": "user", "content": TWO},
                  {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
                  {"role": "user", "content": results}])
    assert final.stop_reason == "end_turn" and [b.type for b in final.content] == ["text"]
    assert "Order MP-77310:" in final.content[0].text  # type: ignore[union-attr]


def test_anthropic_tool_use_streamed_with_input_json_delta(ant: anthropic.Anthropic) -> None:
    kwargs: Any = {"model": "agent-claude", "max_tokens": 500, "system": SYSTEM,
                   "tools": CLAUDE_TOOLS, "messages": [{"role": "user", "content": TWO}]}
    events = list(ant.messages.create(stream=True, **kwargs))
    kinds = [e.delta.type for e in events if e.type == "content_block_delta"]
    assert "input_json_delta" in kinds and "text_delta" in kinds
    with ant.messages.stream(**kwargs) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.input for b in final.content if b.type == "tool_use"] == [
        c["arguments"] for c in SHIPPING]
    only_calls = ant.messages.create(**kwargs | {"model": "agent"})
    assert [b.type for b in only_calls.content] == ["tool_use", "tool_use"]
    single = ant.messages.create(**kwargs | {"tool_choice": {
        "type": "auto", "disable_parallel_tool_use": True}})
    assert len([b for b in single.content if b.type == "tool_use"]) == 1


# --- Responses through the SDK -------------------------------------------------------------------
def test_responses_function_calls_then_outputs(oai: openai.OpenAI) -> None:
    first = oai.responses.create(model="agent", instructions=SYSTEM, input=TWO,
                                 tools=RESPONSES_TOOLS)
    calls = [i for i in first.output if i.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        (c["name"], c["arguments"]) for c in SHIPPING]
    assert all(c.call_id.startswith("call_") and (c.id or "").startswith("fc_") for c in calls)
    outputs: Any = [{"type": "function_call_output", "call_id": c.call_id,
                     "output": tool_result(c.name, json.loads(c.arguments))} for c in calls]
    stateful = oai.responses.create(model="agent", instructions=SYSTEM, tools=RESPONSES_TOOLS,
                                    previous_response_id=first.id, input=outputs)
    assert "Order KT-40215:" in stateful.output_text
    stateless = oai.responses.create(
        model="agent", instructions=SYSTEM, tools=RESPONSES_TOOLS,
        input=[{"role": "user", "content": TWO}, *[c.model_dump(exclude_none=True) for c in calls],
               *outputs])
    assert stateless.output_text == stateful.output_text
    with oai.responses.stream(model="agent", instructions=SYSTEM, input=TWO,
                              tools=RESPONSES_TOOLS) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_response()
    assert events.count("response.function_call_arguments.done") == 2
    assert [json.loads(i.arguments) for i in final.output if i.type == "function_call"] == [
        c["arguments"] for c in SHIPPING]


def test_the_same_calls_in_every_api(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    for text in (TWO, ONE, "Where is order QX-10000?"):
        chat = oai.chat.completions.create(model="small", messages=msgs(text),  # type: ignore[arg-type]
                                           tools=LOOKUP_TOOLS)  # type: ignore[arg-type]
        via_chat = [(c.function.name, json.loads(c.function.arguments))  # type: ignore[union-attr]
                    for c in chat.choices[0].message.tool_calls or ()]
        claude = ant.messages.create(model="small", max_tokens=300, system=SYSTEM,
                                     tools=CLAUDE_TOOLS, messages=[{"role": "user", "content": text}])
        via_claude = [(b.name, b.input) for b in claude.content if b.type == "tool_use"]
        resp = oai.responses.create(model="small", instructions=SYSTEM, input=text,
                                    tools=RESPONSES_TOOLS)
        via_resp = [(i.name, json.loads(i.arguments)) for i in resp.output
                    if i.type == "function_call"]
        assert via_chat == via_claude == via_resp
        assert chat.usage and chat.usage.prompt_tokens == claude.usage.input_tokens


# --- malformed tool traffic ----------------------------------------------------------------------
@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"tools": [{"type": "function"}]}),
    ("/v1/chat/completions", {"tools": "get_order"}),
    ("/v1/chat/completions", {"tool_choice": "sometimes"}),
    ("/v1/chat/completions", {"n": 0}),
    ("/v1/chat/completions", {"response_format": {"type": "xml"}}),
    ("/v1/chat/completions", {"messages": [{"role": "assistant", "tool_calls": [{"id": 1}]}]}),
    ("/v1/chat/completions", {"messages": [{"role": "tool", "tool_call_id": [], "content": 3}]}),
    ("/v1/messages", {"tools": [{"description": "no name"}]}),
    ("/v1/messages", {"tool_choice": {"type": "sometimes"}}),
    ("/v1/messages", {"thinking": {"type": "enabled"}}),
    ("/v1/messages", {"thinking": "yes"}),
    ("/v1/messages", {"output_config": {"format": {"type": "json_schema", "schema": 3}}}),
    ("/v1/messages", {"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": {}, "content": 5}]}]}),
    ("/v1/messages", {"messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": [], "name": None, "input": "x"}]}]}),
])
def test_malformed_tool_traffic_is_400_or_answered_never_500(
    srv: FakeLLMServer, path: str, body: dict[str, Any]
) -> None:
    import httpx

    base: dict[str, Any] = {"model": "agent", "messages": msgs(TWO)}
    if path == "/v1/messages":
        base = {"model": "agent", "max_tokens": 300, "system": SYSTEM,
                "messages": [{"role": "user", "content": TWO}]}
    r = httpx.post(srv.base_url + path, json=base | body)
    assert r.status_code in (200, 400), r.text
