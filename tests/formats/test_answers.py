"""What is stored as an answer (tool calls included), and which settings travel to which API."""

from __future__ import annotations

import json

import pytest

from shadowroute.formats import (
    Answer,
    NotShadowable,
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    chat_request,
    completion_text,
    openai_request_to_anthropic,
    parse_answer,
)
from shadowroute.formats.responses import openai_request_to_responses

CLAUDE_TOOL_REPLY = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-small",
    "stop_reason": "tool_use", "usage": {"input_tokens": 40, "output_tokens": 30},
    "content": [
        {"type": "text", "text": "Let me look that up."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_order", "input": {"order_id": "A1"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_order", "input": {"order_id": "B2"}},
    ],
}


def test_claude_text_and_tool_calls_are_both_stored() -> None:
    stored = completion_text(anthropic_response_to_openai(CLAUDE_TOOL_REPLY))
    assert json.loads(stored or "") == {
        "content": "Let me look that up.",
        "tool_calls": [{"name": "get_order", "arguments": {"order_id": "A1"}},
                       {"name": "get_order", "arguments": {"order_id": "B2"}}]}
    assert parse_answer(stored) == Answer("Let me look that up.", (
        {"name": "get_order", "arguments": {"order_id": "A1"}},
        {"name": "get_order", "arguments": {"order_id": "B2"}}))


def test_stored_answers_read_back() -> None:
    assert parse_answer("Paris") == Answer("Paris")
    assert parse_answer(None) == Answer(None)
    assert parse_answer('{"intent": "refund"}') == Answer('{"intent": "refund"}')  # JSON text
    assert parse_answer("[1, 2]") == Answer("[1, 2]")
    legacy = '[{"name":"classify","arguments":{"label":"refund"}}]'  # earlier versions' form
    assert parse_answer(legacy).tool_calls == ({"name": "classify",
                                                "arguments": {"label": "refund"}},)
    unparsed = completion_text({"choices": [{"message": {"content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}}]})
    assert parse_answer(unparsed).tool_calls == ({"name": "f", "arguments": "{oops"},)


def test_anthropic_settings_travel_to_anthropic_and_are_named_for_openai() -> None:
    body = {
        "model": "claude-big", "max_tokens": 4000, "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 2048}, "top_k": 5,
        "output_config": {"effort": "high",
                          "format": {"type": "json_schema", "schema": {"type": "object"}}},
        "service_tier": "auto", "cache_hint": 1,
    }
    dropped: list[str] = []
    canonical = anthropic_request_to_openai(body, dropped)
    assert canonical["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert canonical["reasoning_effort"] == "high"
    assert canonical["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert dropped == ["cache_hint"]  # service_tier changes the price, not the answer
    # to Anthropic: everything comes back
    to_claude: list[str] = []
    again = openai_request_to_anthropic(canonical, dropped=to_claude)
    assert again["thinking"] == body["thinking"] and again["top_k"] == 5
    assert again["output_config"] == body["output_config"]
    assert to_claude == []
    # to an OpenAI chat endpoint: Anthropic's own settings are named, not sent
    to_openai: list[str] = []
    chat = chat_request(canonical, to_openai)
    assert "thinking" not in chat and "top_k" not in chat
    assert chat["reasoning_effort"] == "high"
    assert sorted(to_openai) == ["thinking", "top_k"]


def test_anthropics_max_effort_reaches_claude_and_is_named_for_openai() -> None:
    """``output_config.effort: "max"`` has no OpenAI level: a Claude candidate gets it, an
    OpenAI chat or Responses candidate is not sent it (a 400 there) and it is named."""
    body = {"model": "claude-big", "max_tokens": 100, "output_config": {"effort": "max"},
            "messages": [{"role": "user", "content": "hi"}]}
    canonical = anthropic_request_to_openai(body, [])
    assert canonical["reasoning_effort"] == "max"
    assert openai_request_to_anthropic(canonical, dropped=[])["output_config"] == {
        "effort": "max"}
    to_chat: list[str] = []
    assert "reasoning_effort" not in chat_request(canonical, to_chat)
    assert to_chat == ["reasoning_effort max"]
    to_responses: list[str] = []
    assert "reasoning" not in openai_request_to_responses(canonical, to_responses)
    assert "reasoning_effort max" in to_responses


def test_openai_only_settings_are_named_when_they_cannot_reach_anthropic() -> None:
    canonical = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "n": 3,
                 "seed": 7, "logprobs": True, "temperature": 1.5, "reasoning_effort": "minimal",
                 "response_format": {"type": "json_object"}, "store": True}
    dropped: list[str] = []
    body = openai_request_to_anthropic(canonical, dropped=dropped)
    assert body["temperature"] == 1.0
    assert "output_config" not in body
    assert sorted(dropped) == sorted(["n", "seed", "logprobs", "temperature above 1 (clamped to 1)",
                                      "reasoning_effort minimal", "response_format json_object"])


def test_a_candidate_is_asked_for_one_answer() -> None:
    dropped: list[str] = []
    chat = chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 4},
                        dropped)
    assert "n" not in chat and dropped == ["n"]
    same: list[str] = []
    assert chat_request({"model": "m", "messages": [], "n": 1}, same) == {"model": "m",
                                                                           "messages": []}
    assert same == []


def test_content_blocks_a_chat_endpoint_rejects_are_named_not_sent() -> None:
    canonical = anthropic_request_to_openai({"model": "c", "max_tokens": 5, "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "summarise"},
            {"type": "document", "source": {"type": "text", "data": "...", "media_type": "text/plain"}}]}]})
    dropped: list[str] = []
    chat = chat_request(canonical, dropped)
    assert chat["messages"][0]["content"] == [{"type": "text", "text": "summarise"}]
    assert dropped == ["document content"]
    # an Anthropic candidate still gets the document
    back = openai_request_to_anthropic(canonical)
    assert back["messages"][0]["content"][1]["type"] == "document"


@pytest.mark.parametrize("body", [
    {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "news?"}],
     "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
    {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
     "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "x"}]},
])
def test_anthropic_server_side_tools_are_not_shadowable(body: dict) -> None:
    with pytest.raises(NotShadowable):
        anthropic_request_to_openai(body)


@pytest.mark.parametrize(("api", "body", "feature"), [
    ("responses", {"input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
    ("responses", {"input": [{"type": "web_search_call", "id": "ws"}]}, "web_search_call input item"),
    ("responses", {"input": "hi", "tools": [{"type": "file_search"}]}, "file_search tool"),
    ("responses", {"input": [{"role": "user", "content": "hi"},
                             {"type": "function_call_output", "call_id": "c", "output": "x"}],
                   "tools": [{"type": "function", "name": "f"}]}, None),
    ("anthropic", {"messages": [], "tools": [{"type": "web_search_20250305", "name": "w"}]},
     "web_search_20250305 tool"),
    ("anthropic", {"messages": [], "tools": [{"name": "f", "input_schema": {}}]}, None),
    ("openai", {"messages": [], "web_search_options": {}}, None),  # empty: not asked for
    ("openai", {"messages": [], "web_search_options": {"search_context_size": "low"}},
     "web_search_options"),
])
def test_stateful_features_are_found_without_translating(api: str, body: dict,
                                                          feature: str | None) -> None:
    from shadowroute.formats.chat import stateful_feature

    assert stateful_feature(api, body) == feature


def test_an_openai_refusal_is_stored_as_what_the_model_said_streamed_or_not() -> None:
    from shadowroute.formats import reassemble

    body = {"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": None, "refusal": "I can't help with that."}}]}
    assert completion_text(body) == "I can't help with that."
    chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"role": "assistant", "refusal": part},
                            "finish_reason": None}]} for part in ("I can't ", "help.")]
    chunks.append({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    raw = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    assert completion_text(reassemble(raw, "openai", streamed=True)) == "I can't help."


def test_an_anthropic_message_without_usage_has_unknown_tokens() -> None:
    from shadowroute.formats import completion_usage

    reply = {k: v for k, v in CLAUDE_TOOL_REPLY.items() if k != "usage"}
    assert completion_usage(anthropic_response_to_openai(reply)) == (None, None)
    assert completion_usage(anthropic_response_to_openai(CLAUDE_TOOL_REPLY)) == (40, 30)
