"""The OpenAI Responses API to and from the canonical shape, streams included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shadowroute.formats import (
    NotShadowable,
    completion_text,
    completion_usage,
    openai_request_to_responses,
    parse_answer,
    reassemble,
    responses_request_to_openai,
    responses_response_to_openai,
)

TOOL = {"type": "function", "name": "get_order", "description": "Look up an order",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                       "required": ["order_id"]}, "strict": True}


def test_request_with_instructions_turns_tools_and_settings_becomes_canonical() -> None:
    body = {
        "model": "gpt-5", "instructions": "You help with orders.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Where are A1 and B2?"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_order",
             "arguments": '{"order_id":"A1"}'},
            {"type": "function_call", "call_id": "c2", "name": "get_order",
             "arguments": '{"order_id":"B2"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "shipped"},
            {"type": "function_call_output", "call_id": "c2", "output": "packed"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "xyz"},
        ],
        "tools": [TOOL], "tool_choice": {"type": "function", "name": "get_order"},
        "max_output_tokens": 300, "temperature": 0.2, "parallel_tool_calls": True,
        "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_schema", "name": "answer", "strict": True,
                            "schema": {"type": "object"}}, "verbosity": "low"},
        "store": True, "stream": True,
    }
    dropped: list[str] = []
    out = responses_request_to_openai(body, dropped)
    assert out["messages"] == [
        {"role": "system", "content": "You help with orders."},
        {"role": "user", "content": [{"type": "text", "text": "Where are A1 and B2?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_order", "arguments": '{"order_id":"A1"}'}},
            {"id": "c2", "type": "function",
             "function": {"name": "get_order", "arguments": '{"order_id":"B2"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
        {"role": "tool", "tool_call_id": "c2", "content": "packed"},
    ]
    assert out["tools"] == [{"type": "function", "function": {
        k: TOOL[k] for k in ("name", "description", "parameters", "strict")}}]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "get_order"}}
    assert out["max_completion_tokens"] == 300
    assert out["reasoning_effort"] == "low"
    assert out["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "answer", "strict": True, "schema": {"type": "object"}}}
    assert out["verbosity"] == "low"
    assert (out["temperature"], out["parallel_tool_calls"], out["stream"]) == (0.2, True, True)
    assert dropped == []  # store is harmless; reasoning items are the earlier model's own


def test_a_string_input_is_one_user_message_and_unknown_settings_are_named() -> None:
    dropped: list[str] = []
    out = responses_request_to_openai({"model": "m", "input": "hi", "truncation": "auto",
                                       "reasoning": {"effort": "high", "summary": "auto"}},
                                      dropped)
    assert out["messages"] == [{"role": "user", "content": "hi"}]
    assert dropped == ["reasoning.summary", "truncation"]


@pytest.mark.parametrize(("body", "feature"), [
    ({"model": "m", "input": "and then?", "previous_response_id": "resp_1"},
     "previous_response_id"),
    ({"model": "m", "input": "hi", "conversation": "conv_1"}, "conversation"),
    ({"model": "m", "prompt": {"id": "pmpt_1"}}, "prompt"),
    ({"model": "m", "input": "hi", "background": True}, "background"),
    ({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}, "web_search tool"),
    ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference"),
    ({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_image", "file_id": "file_1"}]}]}, "input_image by file_id"),
])
def test_calls_that_depend_on_provider_state_are_not_shadowable(
    body: dict[str, Any], feature: str
) -> None:
    with pytest.raises(NotShadowable) as caught:
        responses_request_to_openai(body)
    assert caught.value.feature == feature
    assert isinstance(caught.value, ValueError)  # every parser error is a ValueError


def test_canonical_request_becomes_a_stateless_responses_request() -> None:
    canonical = {
        "model": "gpt-5", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Where is A1?"},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "get_order", "arguments": '{"order_id":"A1"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "shipped"}],
        "tools": [{"type": "function", "function": {"name": "get_order", "parameters": {}}}],
        "tool_choice": "auto", "max_tokens": 50, "reasoning_effort": "medium",
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}},
        "n": 3, "seed": 1, "thinking": {"type": "enabled", "budget_tokens": 2000},
    }
    dropped: list[str] = []
    body = openai_request_to_responses(canonical, dropped)
    assert body["instructions"] == "Be brief."
    assert body["store"] is False and "previous_response_id" not in body
    assert body["input"] == [
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "Where is A1?"}]},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Let me look."}]},
        {"type": "function_call", "call_id": "c1", "name": "get_order",
         "arguments": '{"order_id":"A1"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "shipped"},
    ]
    assert body["tools"] == [{"type": "function", "name": "get_order", "parameters": {}}]
    assert body["max_output_tokens"] == 50
    assert body["reasoning"] == {"effort": "medium"}
    assert body["text"] == {"format": {"type": "json_schema", "name": "a", "schema": {}}}
    assert sorted(dropped) == ["n", "seed", "thinking"]
    # and back: the conversation survives the round trip
    again = responses_request_to_openai(body)
    assert [m["role"] for m in again["messages"]] == ["system", "user", "assistant", "tool"]
    assert again["messages"][2]["tool_calls"][0]["function"]["name"] == "get_order"


RESPONSE = {
    "id": "resp_1", "object": "response", "created_at": 1_700_000_000, "status": "completed",
    "model": "gpt-5", "output": [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Let me check both.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "get_order",
         "arguments": '{"order_id":"A1"}', "status": "completed"},
        {"type": "function_call", "id": "fc_2", "call_id": "c2", "name": "get_order",
         "arguments": '{"order_id":"B2"}', "status": "completed"}],
    "usage": {"input_tokens": 80, "input_tokens_details": {"cached_tokens": 20},
              "output_tokens": 50, "output_tokens_details": {"reasoning_tokens": 30},
              "total_tokens": 130},
}


def test_response_text_calls_and_usage_become_canonical() -> None:
    out = responses_response_to_openai(RESPONSE)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check both."
    assert [c["id"] for c in choice["message"]["tool_calls"]] == ["c1", "c2"]
    assert completion_usage(out) == (80, 50)
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 30}
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 20}
    answer = parse_answer(completion_text(out))
    assert answer.content == "Let me check both."
    assert answer.tool_calls == ({"name": "get_order", "arguments": {"order_id": "A1"}},
                                 {"name": "get_order", "arguments": {"order_id": "B2"}})


def test_incomplete_response_is_cut_short_and_failed_one_is_an_error() -> None:
    cut = {**RESPONSE, "status": "incomplete",
           "incomplete_details": {"reason": "max_output_tokens"}, "output": RESPONSE["output"][:2]}
    assert responses_response_to_openai(cut)["choices"][0]["finish_reason"] == "length"
    failed = {**RESPONSE, "status": "failed",
              "error": {"code": "server_error", "message": "boom"}}
    with pytest.raises(ValueError, match="boom"):
        responses_response_to_openai(failed)
    with pytest.raises(ValueError, match="usage.input_tokens"):
        responses_response_to_openai({**RESPONSE, "usage": {"input_tokens": "many"}})


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


STREAM_EVENTS = [
    {"type": "response.created", "sequence_number": 0,
     "response": {**RESPONSE, "status": "in_progress", "output": [], "usage": None}},
    {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
     "item": {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress",
              "content": []}},
    {"type": "response.output_text.delta", "sequence_number": 2, "output_index": 0,
     "content_index": 0, "item_id": "msg_1", "delta": "Hel"},
    {"type": "response.output_text.delta", "sequence_number": 3, "output_index": 0,
     "content_index": 0, "item_id": "msg_1", "delta": "lo"},
    {"type": "response.output_item.added", "sequence_number": 4, "output_index": 1,
     "item": {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "get_order",
              "arguments": "", "status": "in_progress"}},
    {"type": "response.function_call_arguments.delta", "sequence_number": 5, "output_index": 1,
     "item_id": "fc_1", "delta": '{"order_id":'},
    {"type": "response.function_call_arguments.delta", "sequence_number": 6, "output_index": 1,
     "item_id": "fc_1", "delta": '"A1"}'},
]


def test_stream_is_read_from_its_terminal_event() -> None:
    final = {**RESPONSE, "output": [
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Hello", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "get_order",
         "arguments": '{"order_id":"A1"}', "status": "completed"}]}
    raw = _sse([*STREAM_EVENTS, {"type": "response.completed", "sequence_number": 7,
                                 "response": final}])
    out = reassemble(raw, "responses", streamed=True)
    assert completion_usage(out) == (80, 50)
    assert parse_answer(completion_text(out)).tool_calls == (
        {"name": "get_order", "arguments": {"order_id": "A1"}},)


def test_stream_whose_terminal_event_omits_the_output_is_rebuilt_from_its_deltas() -> None:
    raw = _sse([*STREAM_EVENTS, {"type": "response.completed", "sequence_number": 7,
                                 "response": {**RESPONSE, "output": []}}])
    out = reassemble(raw, "responses", streamed=True)
    answer = parse_answer(completion_text(out))
    assert answer.content == "Hello"
    assert answer.tool_calls == ({"name": "get_order", "arguments": {"order_id": "A1"}},)


def test_cut_failed_and_error_streams_are_value_errors() -> None:
    with pytest.raises(ValueError, match="truncated"):
        reassemble(_sse(STREAM_EVENTS), "responses", streamed=True)
    failed = {"type": "response.failed", "sequence_number": 7,
              "response": {**RESPONSE, "status": "failed",
                           "error": {"code": "server_error", "message": "overloaded"}}}
    with pytest.raises(ValueError, match="overloaded"):
        reassemble(_sse([*STREAM_EVENTS, failed]), "responses", streamed=True)
    error = {"type": "error", "sequence_number": 1, "code": "rate_limit", "message": "slow down",
             "param": None}
    with pytest.raises(ValueError, match="slow down"):
        reassemble(_sse([STREAM_EVENTS[0], error]), "responses", streamed=True)
