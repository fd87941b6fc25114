"""Thinking and reasoning, ``n`` choices, usage in streams and structured outputs on the fake,
through the official SDK clients over loopback."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import jsonschema
import openai
import pytest

from shadowroute.fakellm import (
    DEFAULT_SETTINGS,
    EXTRACT_ORDER_SCHEMA,
    TASK_SIMULATORS,
    FakeLLMServer,
    sample_requests,
)

USER: Any = [{"role": "user", "content": "How should I plan a weekend trip to Lyon?"}]
THINK: Any = {"type": "enabled", "budget_tokens": 1024}


def test_one_reasoning_model_in_the_roster() -> None:
    assert [m.name for m in DEFAULT_SETTINGS.models.values() if m.reasoning] == ["frontier"]
    assert DEFAULT_SETTINGS.models["claude-small"].tool_preamble > 0.5


# --- Anthropic thinking ------------------------------------------------------------------------------
def test_thinking_block_before_the_same_answer(ant: anthropic.Anthropic) -> None:
    plain = ant.messages.create(model="frontier", max_tokens=2048, messages=USER)
    msg = ant.messages.create(model="frontier", max_tokens=2048, messages=USER, thinking=THINK)
    assert [b.type for b in msg.content] == ["thinking", "text"]
    block = msg.content[0]
    assert block.type == "thinking" and "Lyon" in block.thinking and block.signature
    assert msg.content[1].text == plain.content[0].text  # type: ignore[union-attr]
    thinking_tokens = -(-len(block.thinking) // 4)
    assert msg.usage.output_tokens == plain.usage.output_tokens + thinking_tokens
    assert msg.usage.input_tokens == plain.usage.input_tokens
    adaptive = ant.messages.create(model="frontier", max_tokens=2048, messages=USER,
                                   thinking={"type": "adaptive"})
    assert adaptive.content[0].type == "thinking"
    omitted = ant.messages.create(model="frontier", max_tokens=2048, messages=USER,
                                  thinking={"type": "enabled", "budget_tokens": 1024,
                                            "display": "omitted"})
    assert omitted.content[0].thinking == "" and omitted.content[0].signature  # type: ignore[union-attr]
    assert omitted.usage.output_tokens == msg.usage.output_tokens  # billed all the same
    disabled = ant.messages.create(model="frontier", max_tokens=2048, messages=USER,
                                   thinking={"type": "disabled"})
    assert [b.type for b in disabled.content] == ["text"]
    not_a_reasoner = ant.messages.create(model="claude-small", max_tokens=2048, messages=USER,
                                         thinking=THINK)
    assert [b.type for b in not_a_reasoner.content] == ["text"]


def test_thinking_streamed_with_thinking_and_signature_deltas(ant: anthropic.Anthropic) -> None:
    kwargs: Any = {"model": "frontier", "max_tokens": 2048, "messages": USER, "thinking": THINK}
    whole = ant.messages.create(**kwargs)
    events = list(ant.messages.create(stream=True, **kwargs))
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    kinds = [d.type for d in deltas]
    assert kinds[0] == "thinking_delta" and "signature_delta" in kinds
    assert kinds.index("signature_delta") < kinds.index("text_delta")
    assert "".join(d.thinking for d in deltas if d.type == "thinking_delta") == \
        whole.content[0].thinking  # type: ignore[union-attr]
    start = events[0]
    assert start.type == "message_start" and start.message.usage.input_tokens > 0
    delta = next(e for e in events if e.type == "message_delta")
    assert delta.usage.output_tokens == whole.usage.output_tokens
    with ant.messages.stream(**kwargs) as stream:
        final = stream.get_final_message()
    assert final.model_dump() | {"id": ""} == whole.model_dump() | {"id": ""}


def test_thinking_budget_is_validated_like_the_real_api(ant: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError):
        ant.messages.create(model="frontier", max_tokens=1000, messages=USER, thinking=THINK)
    with pytest.raises(anthropic.BadRequestError):
        ant.messages.create(model="frontier", max_tokens=4000, messages=USER,
                            thinking={"type": "enabled", "budget_tokens": 100})


# --- OpenAI reasoning ---------------------------------------------------------------------------------
def test_chat_reasoning_effort_spends_hidden_tokens(oai: openai.OpenAI) -> None:
    plain = oai.chat.completions.create(model="frontier", messages=USER)
    low = oai.chat.completions.create(model="frontier", messages=USER, reasoning_effort="low")
    high = oai.chat.completions.create(model="frontier", messages=USER, reasoning_effort="high")
    assert low.choices[0].message.content == plain.choices[0].message.content
    details = [r.usage.completion_tokens_details.reasoning_tokens  # type: ignore[union-attr]
               for r in (plain, low, high)]
    assert details[0] == 0 and 0 < details[1] < details[2]
    assert low.usage.completion_tokens == plain.usage.completion_tokens + details[1]  # type: ignore[union-attr]
    small = oai.chat.completions.create(model="small", messages=USER, reasoning_effort="high")
    assert small.usage.completion_tokens_details.reasoning_tokens == 0  # type: ignore[union-attr]
    starved = oai.chat.completions.create(model="frontier", messages=USER,
                                          reasoning_effort="high", max_completion_tokens=20)
    assert starved.choices[0].finish_reason == "length"
    assert starved.choices[0].message.content == "" and starved.usage.completion_tokens == 20  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="frontier", messages=USER,
                                    reasoning_effort="extreme")  # type: ignore[arg-type]
    # Anthropic's top level has no OpenAI counterpart: a 400 there, as from OpenAI itself
    # (a candidate is never sent it: formats name it in not_carried instead).
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="frontier", messages=USER,
                                    reasoning_effort="max")  # type: ignore[arg-type]


# --- n > 1 ------------------------------------------------------------------------------------------
def test_n_choices_are_repeats_and_usage_counts_them_all(srv: FakeLLMServer,
                                                         oai: openai.OpenAI) -> None:
    demo = sample_requests(1, seed=2, tasks=["summarize_ticket"])[0]
    one = oai.chat.completions.create(model="small", **demo.request)
    three = oai.chat.completions.create(model="small", n=3, **demo.request)
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert {c.message.content for c in three.choices} == {one.choices[0].message.content}
    assert three.usage and one.usage
    assert three.usage.prompt_tokens == one.usage.prompt_tokens
    assert three.usage.completion_tokens == 3 * one.usage.completion_tokens
    srv.update_model("fickle", accuracy=0.5, consistency=0.0)
    answers = set()
    for d in sample_requests(6, seed=3, tasks=["classify_intent"]):
        reply = oai.chat.completions.create(model="fickle", n=8, **d.request)
        answers.add(len({c.message.content for c in reply.choices}))
    assert max(answers) > 1  # choices drawn like repeats can differ
    labels = TASK_SIMULATORS["classify_intent"].labels  # type: ignore[attr-defined]
    assert all(c in labels for c in [reply.choices[0].message.content])


def test_n_choices_stream_interleaved_with_their_index(oai: openai.OpenAI) -> None:
    demo = sample_requests(1, seed=5, tasks=["summarize_ticket"])[0]
    whole = oai.chat.completions.create(model="tiny", n=2, **demo.request)
    chunks = list(oai.chat.completions.create(model="tiny", n=2, stream=True,
                                              stream_options={"include_usage": True},
                                              **demo.request))
    order = [c.choices[0].index for c in chunks if c.choices]
    assert order[:4] == [0, 1, 0, 1]
    for i in (0, 1):
        text = "".join(c.choices[0].delta.content or "" for c in chunks
                       if c.choices and c.choices[0].index == i)
        assert text == whole.choices[i].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes.count("stop") == 2
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


# --- usage in streams ---------------------------------------------------------------------------------
def test_usage_in_streams(srv: FakeLLMServer, oai: openai.OpenAI,
                          ant: anthropic.Anthropic) -> None:
    plain = list(oai.chat.completions.create(model="small", messages=USER, stream=True))
    assert all(c.usage is None for c in plain)
    raw = httpx.post(srv.base_url + "/v1/chat/completions",
                     json={"model": "small", "messages": USER, "stream": True}).text
    assert '"usage"' not in raw
    raw = httpx.post(srv.base_url + "/v1/chat/completions",
                     json={"model": "small", "messages": USER, "stream": True,
                           "stream_options": {"include_usage": True}}).text
    chunks = [json.loads(line[6:]) for line in raw.splitlines()
              if line.startswith("data: {")]
    assert all(c["usage"] is None for c in chunks[:-1]) and chunks[-1]["usage"]["total_tokens"]
    events = list(ant.messages.create(model="small", max_tokens=300, messages=USER, stream=True))
    assert events[0].message.usage.input_tokens > 0  # type: ignore[union-attr]
    assert next(e for e in events if e.type == "message_delta").usage.output_tokens > 0
    last = list(oai.responses.create(model="small", input=USER, stream=True))[-1]
    assert last.type == "response.completed" and last.response.usage
    assert last.response.usage.output_tokens > 0


# --- structured outputs -------------------------------------------------------------------------------
def test_structured_output_always_fits_even_from_a_weak_model(oai: openai.OpenAI,
                                                              ant: anthropic.Anthropic) -> None:
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "order", "strict": True,
                                                       "schema": EXTRACT_ORDER_SCHEMA}}
    free_failures = 0
    for demo in sample_requests(40, seed=9, tasks=["extract_order"]):
        free = oai.chat.completions.create(model="tiny", **demo.request)
        try:
            jsonschema.validate(json.loads(free.choices[0].message.content or ""),
                                EXTRACT_ORDER_SCHEMA)
        except (ValueError, jsonschema.ValidationError):
            free_failures += 1
        strict = oai.chat.completions.create(model="tiny", response_format=fmt, **demo.request)
        jsonschema.validate(json.loads(strict.choices[0].message.content or ""),
                            EXTRACT_ORDER_SCHEMA)
    assert free_failures > 3  # without the schema the weak model breaks it
    demo = sample_requests(1, seed=1, tasks=["extract_order"])[0]
    system, user = demo.request["messages"]
    msg = ant.messages.create(model="tiny", max_tokens=300, system=system["content"],
                              messages=[user], output_config={"format": {
                                  "type": "json_schema", "schema": EXTRACT_ORDER_SCHEMA}})
    jsonschema.validate(json.loads(msg.content[0].text), EXTRACT_ORDER_SCHEMA)  # type: ignore[union-attr]


def test_any_schema_or_json_mode_gets_fitting_json(oai: openai.OpenAI) -> None:
    labels = ["refund", "cancel", "shipping", "billing", "technical", "other"]
    schema = {"type": "object", "properties": {"intent": {"type": "string", "enum": labels},
                                               "confidence": {"type": "number"}},
              "required": ["intent", "confidence"], "additionalProperties": False}
    for demo in sample_requests(10, seed=4, tasks=["classify_intent"]):
        request = demo.request | {"max_tokens": 64}  # 8 would cut the JSON, as for real
        reply = oai.chat.completions.create(
            model="frontier", response_format={"type": "json_schema", "json_schema": {
                "name": "intent", "schema": schema}}, **request)
        data = json.loads(reply.choices[0].message.content or "")
        jsonschema.validate(data, schema)
        assert data["intent"] == demo.expected
    loose = oai.chat.completions.create(model="small", messages=USER,
                                        response_format={"type": "json_object"})
    assert isinstance(json.loads(loose.choices[0].message.content or ""), dict)
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="small", messages=USER,
                                    response_format={"type": "json_schema"})  # type: ignore[typeddict-item]
