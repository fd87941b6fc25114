import json

import pytest

from shadowroute.formats.anthropic import (
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
from shadowroute.formats.chat import completion_text, completion_usage
from shadowroute.formats.sse import (
    reassemble,
    reassemble_anthropic_stream,
    reassemble_openai_stream,
)

# -- hand-written streams in the providers' real wire formats -----------------------------------

OPENAI_STREAM = (
    b'data: {"id":"chatcmpl-9xYz","object":"chat.completion.chunk","created":1718000000,'
    b'"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],'
    b'"usage":null}\n'
    b"\n"
    b": keep-alive\n"
    b"\n"
    b'data: {"id":"chatcmpl-9xYz","object":"chat.completion.chunk","created":1718000000,'
    b'"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,'
    b'"delta":{"content":"Caf\xc3\xa9 "},"logprobs":null,"finish_reason":null}],"usage":null}\n'
    b"\n"
    b'data: {"id":"chatcmpl-9xYz","object":"chat.completion.chunk","created":1718000000,'
    b'"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,'
    b'"delta":{"content":"ouvert \\ud83d\\ude00"},"logprobs":null,"finish_reason":null}],"usage":null}\n'
    b"\n"
    b'data: {"id":"chatcmpl-9xYz","object":"chat.completion.chunk","created":1718000000,'
    b'"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,'
    b'"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n'
    b"\n"
    b'data: {"id":"chatcmpl-9xYz","object":"chat.completion.chunk","created":1718000000,'
    b'"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[],'
    b'"usage":{"prompt_tokens":19,"completion_tokens":4,"total_tokens":23,'
    b'"prompt_tokens_details":{"cached_tokens":0}}}\n'
    b"\n"
    b"data: [DONE]\n"
    b"\n"
)

OPENAI_TOOL_STREAM = (
    b'data: {"id":"chatcmpl-t1","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,'
    b'"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}]},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-t1","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
    b'"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"ci"}}]},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-t1","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
    b'"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\\": \\"Oslo\\"}"}}]},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-t1","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
    b"data: [DONE]\n\n"
)

ANTHROPIC_STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message",'
    b'"role":"assistant","content":[],"model":"claude-3-5-haiku-20241022","stop_reason":null,'
    b'"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,'
    b'"cache_read_input_tokens":0,"output_tokens":1}}}\n'
    b"\n"
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n'
    b"\n"
    b"event: ping\n"
    b'data: {"type": "ping"}\n'
    b"\n"
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}\n'
    b"\n"
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", w\xc3\xb6rld!"}}\n'
    b"\n"
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":0}\n'
    b"\n"
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":15}}\n'
    b"\n"
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n'
    b"\n"
)

ANTHROPIC_TOOL_STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message",'
    b'"role":"assistant","model":"claude-sonnet-4-20250514","stop_sequence":null,'
    b'"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    b'"text":"Checking."}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":0}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use",'
    b'"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",'
    b'"partial_json":""}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",'
    b'"partial_json":"{\\"location\\": \\"San Fra"}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",'
    b'"partial_json":"ncisco, CA\\"}"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":1}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},'
    b'"usage":{"output_tokens":89}}\n\n'
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)


def crlf(stream: bytes) -> bytes:
    return stream.replace(b"\n", b"\r\n")


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

ANTHROPIC_RESPONSE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-haiku-20241022",
    "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 3},
}


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
    assert json.loads(completion_text(out)) == [{"name": "classify", "arguments": {"label": "refund"}}]


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
    assert completion_usage({}) == (0, 0)
    assert completion_usage({"usage": None}) == (0, 0)
    assert completion_usage({"usage": {"prompt_tokens": 4}}) == (4, 0)


# -- SSE reassembly ------------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["lf", "crlf"])
def test_reassemble_openai_stream(newline: str) -> None:
    raw = OPENAI_STREAM if newline == "lf" else crlf(OPENAI_STREAM)
    out = reassemble_openai_stream(raw)
    assert out["id"] == "chatcmpl-9xYz"
    assert out["model"] == "gpt-4o-mini-2024-07-18"
    assert out["object"] == "chat.completion"
    assert out["created"] == 1718000000
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Café ouvert \U0001F600"}
    assert out["choices"][0]["finish_reason"] == "stop"
    assert completion_usage(out) == (19, 4)
    assert completion_text(out) == "Café ouvert \U0001F600"


def test_reassemble_openai_stream_ignores_data_after_done_and_tolerates_no_usage() -> None:
    without_usage = b"".join(
        chunk + b"\n\n" for chunk in OPENAI_STREAM.split(b"\n\n") if b'"choices":[]' not in chunk and chunk
    )
    out = reassemble_openai_stream(without_usage + b"data: {not json\n\n")
    assert out["usage"] is None
    assert completion_usage(out) == (0, 0)
    assert completion_text(out) == "Café ouvert \U0001F600"


def test_reassemble_openai_tool_call_stream() -> None:
    out = reassemble_openai_stream(OPENAI_TOOL_STREAM)
    message = out["choices"][0]["message"]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] is None
    assert message["tool_calls"] == [{"id": "call_abc", "type": "function",
                                      "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]


@pytest.mark.parametrize("newline", ["lf", "crlf", "cr"])
def test_reassemble_anthropic_stream(newline: str) -> None:
    raw = {"lf": ANTHROPIC_STREAM, "crlf": crlf(ANTHROPIC_STREAM),
           "cr": ANTHROPIC_STREAM.replace(b"\n", b"\r")}[newline]
    out = reassemble_anthropic_stream(raw)
    assert out["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert out["model"] == "claude-3-5-haiku-20241022"
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Hello, wörld!"}
    assert out["choices"][0]["finish_reason"] == "stop"
    assert completion_usage(out) == (25, 15)


def test_reassemble_anthropic_tool_stream() -> None:
    out = reassemble_anthropic_stream(ANTHROPIC_TOOL_STREAM)
    message = out["choices"][0]["message"]
    assert message["content"] == "Checking."
    assert message["tool_calls"][0]["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"location": "San Francisco, CA"}
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert completion_usage(out) == (472, 89)


def test_sse_comments_and_multiline_data() -> None:
    raw = (
        b": ping\n\n"
        b'data: {"id":"c","object":"chat.completion.chunk","model":"m",\n'
        b'data: "choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'
        b": another comment\n"
        b"data: [DONE]\n\n"
    )
    assert completion_text(reassemble_openai_stream(raw)) == "ok"
    assert completion_text(reassemble_openai_stream(crlf(raw))) == "ok"


def test_sse_event_names_survive_crlf() -> None:
    raw = crlf(b'event: error\ndata: {"error": {"message": "Overloaded"}}\n\n')
    with pytest.raises(ValueError, match="Anthropic stream error: Overloaded"):
        reassemble_anthropic_stream(raw)


def test_openai_stream_done_without_finish_reason_is_complete() -> None:
    raw = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"partial"}}]}\n\ndata: [DONE]\n\n'
    out = reassemble_openai_stream(raw)
    assert completion_text(out) == "partial"
    assert out["choices"][0]["finish_reason"] is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "no data chunks"),
        (b": ping\n\n", "no data chunks"),
        (b"data: {\"id\": \"x\", \"choices\": [\n\n", "malformed JSON"),
        (b"data: [1, 2]\n\n", "expected a JSON object"),
        (b'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n',
         "server_error: The server had an error"),
        (OPENAI_STREAM.split(b"\n\n")[0] + b"\n\n"
         + b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n', "truncated"),
        (b'data: {"choices":[{"index":0,"delta":{"content":"\xff"},"finish_reason":"stop"}]}\n\n', "UTF-8"),
    ],
)
def test_reassemble_openai_stream_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reassemble_openai_stream(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "no message_start"),
        (b"event: ping\ndata: {\"type\": \"ping\"}\n\n", "no message_start"),
        (b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
         b'"message": "Overloaded"}}\n\n', "overloaded_error: Overloaded"),
        (ANTHROPIC_STREAM.split(b"event: content_block_stop")[0], "truncated"),
        (ANTHROPIC_STREAM.replace(b'"text":"Hello"}', b'"text":"Hello"'), "malformed JSON"),
        (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
         b'"delta":{"type":"text_delta","text":"x"}}\n\n', "before message_start"),
        (ANTHROPIC_TOOL_STREAM.replace(b'ncisco, CA\\"}', b"ncisco"), "tool_use input"),
    ],
)
def test_reassemble_anthropic_stream_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reassemble_anthropic_stream(raw)


def test_reassemble_dispatcher() -> None:
    assert reassemble(OPENAI_STREAM, "openai", True)["choices"][0]["finish_reason"] == "stop"
    assert completion_text(reassemble(ANTHROPIC_STREAM, "anthropic", True)) == "Hello, wörld!"
    assert completion_text(reassemble(json.dumps(ANTHROPIC_RESPONSE).encode(), "anthropic", False)) == (
        "Hello there"
    )
    plain = {"id": "c", "object": "chat.completion", "model": "m",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "yo"}, "finish_reason": "stop"}]}
    assert reassemble(json.dumps(plain).encode(), "openai", False) == plain


@pytest.mark.parametrize(
    ("raw", "api", "message"),
    [
        (b"<html>502 Bad Gateway</html>", "openai", "malformed JSON in openai response body"),
        (b'{"error": {"message": "nope", "type": "invalid_request_error"}}', "openai", "nope"),
        (b'{"id": "c", "choices": []}', "openai", "no choices"),
        (b'{"type": "error", "error": {"type": "api_error", "message": "boom"}}', "anthropic", "boom"),
        (b"{}", "gemini", "unknown api"),
    ],
)
def test_reassemble_non_streamed_errors(raw: bytes, api: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reassemble(raw, api, False)  # type: ignore[arg-type]
