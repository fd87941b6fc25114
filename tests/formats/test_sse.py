"""Captured SSE streams reassembled into one response, on the providers' real wire formats."""

import json

import pytest

from shadowroute.formats.chat import completion_text, completion_usage
from shadowroute.formats.sse import (
    reassemble,
    reassemble_anthropic_stream,
    reassemble_openai_stream,
)
from support.formats import ANTHROPIC_RESPONSE

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
    assert completion_usage(out) == (None, None)  # unknown, not zero
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
