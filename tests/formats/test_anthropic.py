"""Request and response translation between the OpenAI and Anthropic APIs, and reading the
text and usage of a completion."""

import json

import pytest

from shadowroute.formats.anthropic import (
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
from shadowroute.formats.chat import completion_text, completion_usage
from support.formats import ANTHROPIC_RESPONSE

# -- requests ------------------------------------------------------------------------------------


def test_anthropic_request_to_openai_basic_fields() -> None:
    body = {
        "model": "claude-3-5-haiku-latest",
        "system": "You classify intents.",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        ],
        "max_tokens": 256,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["###"],
        "stream": True,
    }
    out = anthropic_request_to_openai(body)
    assert out == {
        "model": "claude-3-5-haiku-latest",
        "messages": [
            {"role": "system", "content": "You classify intents."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        ],
        "max_tokens": 256,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,  # Anthropic's own setting: kept for an Anthropic candidate
        "stop": ["###"],
        "stream": True,
    }


def test_anthropic_system_blocks_become_one_system_message() -> None:
    body = {
        "system": [
            {"type": "text", "text": "Part one.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Part two."},
        ],
        "messages": [{"role": "user", "content": "x"}],
    }
    out = anthropic_request_to_openai(body)
    assert out["messages"][0] == {"role": "system", "content": "Part one.\n\nPart two."}
    assert "model" not in out


def test_anthropic_images_tools_and_unknown_blocks_translate_without_crashing() -> None:
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}}
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                document,
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "12C"}]},
                {"type": "text", "text": "and tomorrow?"},
            ]},
        ],
        "tools": [{"name": "lookup", "description": "Look up", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"},
    }
    out = anthropic_request_to_openai(body)
    user, assistant, tool, follow_up = out["messages"]
    assert user["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
        document,  # no counterpart: kept as is
    ]
    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "toolu_1", "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q": "oslo"}'}}],
    }
    assert tool == {"role": "tool", "tool_call_id": "toolu_1", "content": "12C"}
    assert follow_up == {"role": "user", "content": [{"type": "text", "text": "and tomorrow?"}]}
    assert out["tools"] == [{"type": "function", "function": {
        "name": "lookup", "description": "Look up", "parameters": {"type": "object"}}}]
    assert out["tool_choice"] == "required"


def test_openai_request_to_anthropic_fields_and_dropped_options() -> None:
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "JSON only."}]},
            {"role": "user", "content": "hi"},
            {"role": "user", "content": "again"},
        ],
        "max_completion_tokens": 99,
        "temperature": 1.7,
        "top_p": 0.5,
        "stop": "END",
        "stream": True,
        "stream_options": {"include_usage": True},
        "n": 2,
        "seed": 7,
        "response_format": {"type": "json_object"},
        "logprobs": True,
    }
    out = openai_request_to_anthropic(body)
    assert out == {
        "model": "gpt-4o",
        "system": "Be terse.\n\nJSON only.",
        "messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}],
        "max_tokens": 99,
        "temperature": 1.0,  # clamped to Anthropic's range
        "top_p": 0.5,
        "stream": True,
        "stop_sequences": ["END"],
    }


@pytest.mark.parametrize(
    ("extra", "expected"),
    [({"max_tokens": 10, "max_completion_tokens": 20}, 10), ({"max_completion_tokens": 20}, 20), ({}, 77)],
)
def test_openai_request_to_anthropic_max_tokens(extra: dict, expected: int) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], **extra}
    assert openai_request_to_anthropic(body, default_max_tokens=77)["max_tokens"] == expected


def test_anthropic_request_round_trip() -> None:
    original = {
        "model": "claude-sonnet-4",
        "system": "sys",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture, and the weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {"city": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_9", "content": "sunny"},
                {"type": "text", "text": "thanks"},
            ]},
            {"role": "assistant", "content": "You're welcome."},
        ],
        "max_tokens": 300,
        "temperature": 0.3,
        "stop_sequences": ["\n\nHuman:"],
        "tools": [{"name": "weather", "description": "Weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u-1"},
    }
    assert openai_request_to_anthropic(anthropic_request_to_openai(original)) == original


def test_openai_request_round_trip() -> None:
    original = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "assistant", "content": "It is sunny."},
        ],
        "max_tokens": 50,
        "stop": ["x", "y"],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
    }
    assert anthropic_request_to_openai(openai_request_to_anthropic(original)) == original


# -- responses -----------------------------------------------------------------------------------


def test_anthropic_response_to_openai() -> None:
    out = anthropic_response_to_openai(ANTHROPIC_RESPONSE)
    assert out["id"] == "msg_01"
    assert out["object"] == "chat.completion"
    assert out["model"] == "claude-3-5-haiku-20241022"
    assert out["choices"] == [{
        "index": 0,
        "message": {"role": "assistant", "content": "Hello there"},
        "logprobs": None,
        "finish_reason": "stop",
    }]
    assert out["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert completion_text(out) == "Hello there"
    assert completion_usage(out) == (12, 3)


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
     ("tool_use", "tool_calls"), (None, None)],
)
def test_anthropic_stop_reason_mapping(stop_reason: str | None, finish_reason: str | None) -> None:
    out = anthropic_response_to_openai({**ANTHROPIC_RESPONSE, "stop_reason": stop_reason})
    assert out["choices"][0]["finish_reason"] == finish_reason


def test_anthropic_response_cache_tokens_count_as_prompt() -> None:
    usage = {"input_tokens": 10, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100,
             "output_tokens": 2}
    out = anthropic_response_to_openai({**ANTHROPIC_RESPONSE, "usage": usage})
    assert out["usage"]["prompt_tokens"] == 115
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 100}


def test_anthropic_tool_use_response() -> None:
    body = {**ANTHROPIC_RESPONSE, "stop_reason": "tool_use", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "classify", "input": {"label": "refund"}}]}
    out = anthropic_response_to_openai(body)
    message = out["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"] == {"name": "classify", "arguments": '{"label": "refund"}'}
    assert json.loads(completion_text(out)) == {
        "content": None, "tool_calls": [{"name": "classify", "arguments": {"label": "refund"}}]}


@pytest.mark.parametrize(
    "body",
    [{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
     {"id": "msg", "type": "message"}],
)
def test_anthropic_response_to_openai_rejects_non_messages(body: dict) -> None:
    with pytest.raises(ValueError, match="Overloaded|content"):
        anthropic_response_to_openai(body)


def test_completion_text_and_usage_edge_cases() -> None:
    assert completion_text({}) is None
    assert completion_text({"choices": []}) is None
    assert completion_text({"choices": [{"message": {"content": None}}]}) is None
    parts = {"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]}
    assert completion_text(parts) == "ab"
    assert completion_usage({}) == (None, None)  # unknown, not zero
    assert completion_usage({"usage": None}) == (None, None)
    assert completion_usage({"usage": {"prompt_tokens": 4}}) == (4, 0)
