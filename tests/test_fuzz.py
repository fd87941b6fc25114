"""Input hardening: property tests (hypothesis) of every parser that reads what a client or an
upstream sends, and of the sidecar's HTTP API.

The contract checked everywhere: bad input is answered with the documented error -- ValueError
from the parsers (:mod:`shadowroute.sse`, :mod:`shadowroute.formats`, :class:`Capture`), a 4xx
in the API's JSON error shape from the sidecar -- never with another exception type or a 500.
Where a real round trip holds (valid streams, valid responses), it is checked as a property.

1. SSE reassembly: arbitrary bytes, valid generated streams (text = the deltas), damaged streams.
2. Request / response translation: shaped JSON with wrong types mixed in; round trips.
3. Capture resolution (raw bodies, content encodings) and ``shadowroute import`` lines.
4. The sidecar's HTTP API (no OpenAPI document: a schemathesis-like property test in-process).
5. ``[sidecar] max_body_bytes``: 413 exactly above the limit, with and without Content-Length.
6. Upstreams from config only (SSRF), against a real "evil" server counting hits.

Bugs these found keep an ``@example`` of the input that found them.
"""

from __future__ import annotations

import gzip
import json
import socket
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import anyio.from_thread
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from shadowroute import load_config
from shadowroute.capture.capture import Capture, decode_body
from shadowroute.config import Config
from shadowroute.errors import ConfigError
from shadowroute.formats.anthropic import (
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
from shadowroute.formats.chat import completion_text, completion_usage
from shadowroute.pipeline.core import Shadow
from shadowroute.serving import BackgroundServer
from shadowroute.sidecar import create_app
from shadowroute.formats.sse import reassemble


def fuzz(examples: int) -> settings:
    """Bounded runs (the file stays well under 20 s); no example database left in the tree: the
    inputs that found bugs are kept as explicit ``@example``s instead."""
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


DEEP = 50_000
"""Nesting far past the interpreter's recursion limit (json.loads raises RecursionError)."""


# =========================================================================== strategies

# Text that survives UTF-8 (no lone surrogates).
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=10)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=8,
)
"""Any JSON value (NaN and infinities included: Python's json reads and writes them)."""


junk = scalars | st.lists(scalars, max_size=2) | st.dictionaries(texts, scalars, max_size=2)
"""A value of the wrong JSON type, cheaply (shallow: wrong types matter here, not depth)."""


def junk_or(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right shape, sometimes a value of another JSON type in its place."""
    return st.one_of(good, good, junk)


def shaped(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict of the given shape; every value may be replaced by junk, extra keys appear."""
    return st.builds(
        lambda base, extra: {**extra, **base},
        st.fixed_dictionaries({k: junk_or(v) for k, v in required.items()},
                              optional={k: junk_or(v) for k, v in optional.items()}),
        st.one_of(st.just({}), st.just({}), st.just({}), st.dictionaries(texts, junk, max_size=1)),
    )


# ---- OpenAI / Anthropic requests and responses, with wrong types mixed in

o_part = shaped({"type": st.sampled_from(["text", "image_url", "input_audio", "file"])},
                {"text": texts, "image_url": shaped({}, {"url": st.sampled_from(
                    ["data:image/png;base64,AAAA", "https://x.test/a.png", "data:", ""])})})
o_content = st.none() | texts | st.lists(o_part | texts, max_size=3)
o_tool_call = shaped({"id": texts, "type": st.just("function")},
                     {"function": shaped({}, {"name": texts, "arguments": texts | st.just('{"a": 1}')})})
o_message = shaped(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"])},
    {"content": o_content, "tool_calls": st.lists(o_tool_call, max_size=2), "tool_call_id": texts},
)
o_tool = shaped({"type": st.just("function")},
                {"function": shaped({"name": texts}, {"description": texts, "parameters": json_values})})
openai_requests = shaped(
    {"model": texts, "messages": st.lists(o_message, max_size=4)},
    {"max_tokens": st.integers(), "max_completion_tokens": st.integers(),
     "temperature": st.floats() | st.integers() | texts, "top_p": st.floats(),
     "stream": st.booleans(), "stop": texts | st.lists(texts, max_size=2),
     "tools": st.lists(o_tool, max_size=2),
     "tool_choice": st.sampled_from(["auto", "none", "required"]) | shaped({}, {"function": shaped({}, {"name": texts})}),
     "parallel_tool_calls": st.booleans(), "user": texts},
)

a_source = shaped({"type": st.sampled_from(["base64", "url"])},
                  {"media_type": texts, "data": texts, "url": texts})
a_block = shaped(
    {"type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "document"])},
    {"text": texts, "source": a_source, "id": texts, "name": texts, "input": json_values,
     "tool_use_id": texts, "content": texts | st.lists(shaped({"type": st.just("text")}, {"text": texts}), max_size=2)},
)
a_message = shaped({"role": st.sampled_from(["user", "assistant"])},
                   {"content": texts | st.lists(a_block | texts, max_size=3)})
a_tool = shaped({"name": texts}, {"description": texts, "input_schema": json_values})
anthropic_requests = shaped(
    {"model": texts, "messages": st.lists(a_message, max_size=4)},
    {"system": texts | st.lists(shaped({"type": st.just("text")}, {"text": texts}) | texts, max_size=2),
     "max_tokens": st.integers(), "temperature": st.floats(), "top_p": st.floats(),
     "stream": st.booleans(), "stop_sequences": st.lists(texts, max_size=2),
     "tools": st.lists(a_tool, max_size=2),
     "tool_choice": shaped({"type": st.sampled_from(["auto", "any", "none", "tool"])},
                           {"name": texts, "disable_parallel_tool_use": st.booleans()}),
     "metadata": shaped({}, {"user_id": texts})},
)

token_counts = st.integers(0, 10**6) | st.floats() | texts | st.none()
a_usage = shaped({}, {k: token_counts for k in (
    "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")})
anthropic_responses = shaped(
    {"type": st.just("message"), "content": st.lists(a_block, max_size=4)},
    {"id": texts, "model": texts, "role": st.just("assistant"), "usage": a_usage,
     "stop_reason": st.sampled_from(["end_turn", "max_tokens", "tool_use", "refusal"]) | json_values,
     "error": json_values},
)
o_usage = shaped({}, {"prompt_tokens": token_counts, "completion_tokens": token_counts})
openai_responses = shaped(
    {"choices": st.lists(shaped({"index": st.integers(0, 3)}, {
        "message": shaped({"role": st.just("assistant")}, {"content": o_content,
                                                             "tool_calls": st.lists(o_tool_call, max_size=2)}),
        "finish_reason": st.sampled_from(["stop", "length", "tool_calls"])}), max_size=2)},
    {"id": texts, "model": texts, "usage": o_usage, "object": st.just("chat.completion")},
)


def call_or_value_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args)``, or ``None`` when it raised ValueError (the documented error); any other
    exception type fails the test."""
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return None


# =========================================================================== 1: SSE reassembly


def sse_event(data: str, event: str | None = None) -> list[str]:
    """The lines of one SSE event (no blank terminator)."""
    return ([f"event: {event}"] if event else []) + [f"data: {data}"]


@st.composite
def openai_streams(draw: st.DrawFn) -> tuple[list[list[str]], dict[int, str], dict[int, dict[int, tuple[str, str]]]]:
    """A valid chat-completions stream, as events: (events, text per choice index, tool calls
    per choice index: call index -> (name, arguments))."""
    n_choices = draw(st.integers(1, 3))
    dumps = draw(st.sampled_from([
        lambda v: json.dumps(v), lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")),
    ]))
    head = {"id": "chatcmpl-" + draw(st.text("abc123", min_size=1, max_size=6)), "object": "chat.completion.chunk",
            "created": draw(st.integers(0, 2**31)), "model": draw(texts)}
    pieces: list[tuple[int, dict[str, Any]]] = []  # (choice index, delta)
    expected_text: dict[int, str] = {}
    expected_calls: dict[int, dict[int, tuple[str, str]]] = {}
    for index in range(n_choices):
        pieces.append((index, {"role": "assistant", "content": ""}))
        deltas = draw(st.lists(texts, max_size=6))
        pieces.extend((index, {"content": d}) for d in deltas)
        expected_text[index] = "".join(deltas)
        calls = draw(st.lists(st.tuples(texts.filter(bool), st.lists(texts, max_size=3)), max_size=2))
        for call_index, (name, args) in enumerate(calls):
            pieces.append((index, {"tool_calls": [{"index": call_index, "id": f"call_{call_index}", "type": "function",
                                                   "function": {"name": name, "arguments": ""}}]}))
            pieces.extend((index, {"tool_calls": [{"index": call_index, "function": {"arguments": a}}]}) for a in args)
        expected_calls[index] = {i: (name, "".join(args)) for i, (name, args) in enumerate(calls)}
    # Choices interleave arbitrarily, but each choice's own deltas keep their order.
    order = draw(st.permutations([i for i, _ in pieces]))
    queues: dict[int, list[dict[str, Any]]] = {}
    for i, delta in pieces:
        queues.setdefault(i, []).append(delta)
    events = []
    for i in order:
        delta = queues[i].pop(0)
        chunk = {**head, "choices": [{"index": i, "delta": delta, "logprobs": None, "finish_reason": None}]}
        events.append(sse_event(dumps(chunk)))
    for index in range(n_choices):
        chunk = {**head, "choices": [{"index": index, "delta": {}, "finish_reason": "stop"}]}
        events.append(sse_event(dumps(chunk)))
    if draw(st.booleans()):
        usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
        events.append(sse_event(dumps({**head, "choices": [], "usage": usage})))
    events.append(sse_event("[DONE]"))
    return events, expected_text, expected_calls


@st.composite
def anthropic_streams(draw: st.DrawFn) -> tuple[list[list[str]], str | None, list[tuple[str, Any]]]:
    """A valid Messages stream, as events: (events, the text -- None without text blocks --,
    tool calls as (name, input))."""
    named = draw(st.booleans())  # with or without `event:` lines (the type is in the data too)

    def ev(payload: dict[str, Any]) -> list[str]:
        return sse_event(json.dumps(payload, ensure_ascii=draw(st.booleans())), payload["type"] if named else None)

    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": draw(texts),
               "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1}}
    events = [ev({"type": "message_start", "message": message})]
    text_parts: list[str] = []
    tools: list[tuple[str, Any]] = []
    kinds = draw(st.lists(st.sampled_from(["text", "tool_use"]), max_size=4))
    for index, kind in enumerate(kinds):
        if draw(st.booleans()):
            events.append(ev({"type": "ping"}))
        if kind == "text":
            events.append(ev({"type": "content_block_start", "index": index,
                              "content_block": {"type": "text", "text": ""}}))
            for delta in draw(st.lists(texts, max_size=5)):
                text_parts.append(delta)
                events.append(ev({"type": "content_block_delta", "index": index,
                                  "delta": {"type": "text_delta", "text": delta}}))
        else:
            name = draw(texts.filter(bool))
            tool_input = draw(st.dictionaries(texts, json_values.filter(_finite), max_size=3))
            encoded = json.dumps(tool_input)
            cuts = sorted(draw(st.lists(st.integers(0, len(encoded)), max_size=3)))
            chunks = [encoded[a:b] for a, b in zip([0, *cuts], [*cuts, len(encoded)], strict=True)]
            events.append(ev({"type": "content_block_start", "index": index,
                              "content_block": {"type": "tool_use", "id": f"toolu_{index}", "name": name, "input": {}}}))
            for chunk in chunks:
                events.append(ev({"type": "content_block_delta", "index": index,
                                  "delta": {"type": "input_json_delta", "partial_json": chunk}}))
            tools.append((name, tool_input))
        events.append(ev({"type": "content_block_stop", "index": index}))
    events.append(ev({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                      "usage": {"output_tokens": 9}}))
    events.append(ev({"type": "message_stop"}))
    return events, "".join(text_parts) if "text" in kinds else None, tools


def _finite(value: Any) -> bool:
    """No NaN anywhere (NaN != NaN would make equality checks meaningless)."""
    return value == value if isinstance(value, float) else (
        all(_finite(v) for v in value) if isinstance(value, list) else
        all(_finite(v) for v in value.values()) if isinstance(value, dict) else True)


@st.composite
def wire(draw: st.DrawFn, events: list[list[str]]) -> bytes:
    """Events on the wire: any line ending, comments sprinkled, a BOM perhaps."""
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    out = ["\ufeff"] if draw(st.booleans()) else []
    for lines in events:
        if draw(st.integers(0, 4)) == 0:
            out.append(": keep-alive" + eol)
        out.extend(line + eol for line in lines)
        out.append(eol)
    return "".join(out).encode()


# ---- mutations of valid streams

def _replace_somewhere(value: Any, path: list[int], junk: Any) -> Any:
    """``value`` with the node chosen by ``path`` (indices into containers) replaced by junk."""
    if not path or not isinstance(value, dict | list) or not value:
        return junk
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    key = keys[path[0] % len(keys)]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[key] = _replace_somewhere(value[key], path[1:], junk)
    return copy


@st.composite
def mutated(draw: st.DrawFn, events: list[list[str]]) -> bytes:
    """A valid stream damaged the ways real ones are: events dropped, duplicated, reordered,
    a JSON value swapped for one of the wrong type, garbage lines, cut short, bad bytes."""
    events = [list(e) for e in events]
    for _ in range(draw(st.integers(1, 4))):
        if not events:
            break
        i = draw(st.integers(0, len(events) - 1))
        op = draw(st.sampled_from(["drop", "dup", "swap", "retype", "garbage", "event"]))
        if op == "drop":
            del events[i]
        elif op == "dup":
            events.insert(i, list(events[i]))
        elif op == "swap":
            j = draw(st.integers(0, len(events) - 1))
            events[i], events[j] = events[j], events[i]
        elif op == "retype":
            data = events[i][-1].removeprefix("data: ")
            try:
                payload = json.loads(data)
            except ValueError:
                continue
            path = draw(st.lists(st.integers(0, 5), max_size=5))
            events[i][-1] = "data: " + json.dumps(_replace_somewhere(payload, path, draw(json_values)))
        elif op == "garbage":
            events.insert(i, [draw(st.sampled_from(["data: ", "data:", "event: error", "id: 1", "retry: x", ""]))
                              + draw(texts.filter(lambda t: "\n" not in t and "\r" not in t))])
        else:
            events[i].insert(0, "event: " + draw(st.sampled_from(["error", "ping", "message_stop", "x"])))
    raw = draw(wire(events))
    if draw(st.booleans()):
        raw = raw[:draw(st.integers(0, len(raw)))]
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80", b"\r", b"\n\n"])) + raw[at:]
    return raw


@fuzz(150)
@given(raw=st.binary(max_size=300), api=st.sampled_from(["openai", "anthropic"]), streamed=st.booleans())
@example(raw=b"data: " + b"[" * DEEP, api="openai", streamed=True)  # RecursionError
@example(raw=b"[" * DEEP, api="anthropic", streamed=False)
# Each of these escaped as TypeError / AttributeError before the stream parsers checked types:
@example(raw=b'data: {"choices": [{"index": {}, "delta": {}}]}\n\ndata: [DONE]\n\n', api="openai", streamed=True)
@example(raw=b'data: {"choices": [null]}\n\ndata: [DONE]\n\n', api="openai", streamed=True)
@example(raw=b'data: {"choices": true}\n\ndata: [DONE]\n\n', api="openai", streamed=True)
@example(raw=b'data: {"choices": [{"delta": {"content": true}, "finish_reason": "stop"}]}\n\n', api="openai",
         streamed=True)
@example(raw=b'data: {"choices": [{"index": null, "finish_reason": "stop"}, {"index": 0}]}\n\n', api="openai",
         streamed=True)
@example(raw=b'data: {"choices": [{"delta": {"tool_calls": "ab"}, "finish_reason": "stop"}]}\n\n', api="openai",
         streamed=True)
@example(raw=b'data: {"type": "message_start", "message": 5}\n\n', api="anthropic", streamed=True)
@example(raw=b'data: {"type": "message_start", "message": {}}\n\n'
             b'data: {"type": "content_block_delta", "delta": "x"}\n\n', api="anthropic", streamed=True)
@example(raw=b'data: {"type": "message_start", "message": {}}\n\n'
             b'data: {"type": "message_delta", "delta": {}, "usage": []}\n\n', api="anthropic", streamed=True)
@example(raw=b'data: {"type": "message_start", "message": {"stop_reason": ["end_turn"]}}\n\n'
             b'data: {"type": "message_stop"}\n\n', api="anthropic", streamed=True)
@example(raw=b'data: {"type": "message_start", "message": {}}\n\n'
         b'data: {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use"}}\n\n'
         b'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "'
         + b"[" * DEEP + b'"}}\n\ndata: {"type": "message_stop"}\n\n', api="anthropic", streamed=True)
def test_reassemble_arbitrary_bytes_is_a_dict_or_a_value_error(raw: bytes, api: str, streamed: bool) -> None:
    out = call_or_value_error(reassemble, raw, api, streamed)
    assert out is None or isinstance(out, dict)


@fuzz(50)
@given(stream=openai_streams(), data=st.data())
def test_valid_openai_stream_reassembles_to_the_concatenated_deltas(stream: Any, data: st.DataObject) -> None:
    events, expected_text, expected_calls = stream
    out = reassemble(data.draw(wire(events)), "openai", True)
    assert [c["index"] for c in out["choices"]] == sorted(expected_text)
    for choice in out["choices"]:
        message, index = choice["message"], choice["index"]
        calls = expected_calls[index]
        assert choice["finish_reason"] == "stop"
        if calls:
            got = {i: (c["function"]["name"], c["function"]["arguments"]) for i, c in enumerate(message["tool_calls"])}
            assert got == calls
            assert message["content"] == (expected_text[index] or None)
        else:
            assert message["content"] == expected_text[index]


@fuzz(50)
@given(stream=anthropic_streams(), data=st.data())
def test_valid_anthropic_stream_reassembles_to_the_concatenated_deltas(stream: Any, data: st.DataObject) -> None:
    events, expected_text, tools = stream
    out = reassemble(data.draw(wire(events)), "anthropic", True)
    message = out["choices"][0]["message"]
    assert out["choices"][0]["finish_reason"] == "stop"
    if tools:
        got = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message["tool_calls"]]
        assert got == tools
    if expected_text is None:  # no text block: None beside tool calls, else an empty answer
        expected_text = None if tools else ""
    assert message["content"] == expected_text


@fuzz(60)
@given(data=st.data(), api=st.sampled_from(["openai", "anthropic"]))
def test_damaged_streams_are_a_dict_or_a_value_error(data: st.DataObject, api: str) -> None:
    events = data.draw(openai_streams() if api == "openai" else anthropic_streams())[0]
    raw = data.draw(mutated(events))
    out = call_or_value_error(reassemble, raw, api, True)
    assert out is None or isinstance(out, dict)


# =========================================================================== 2: translation


@fuzz(80)
@given(body=anthropic_requests | st.dictionaries(texts, json_values, max_size=4))
@example(body={"messages": "hi"})
@example(body={"messages": [1]})
@example(body={"system": [1], "messages": []})
@example(body={"metadata": [], "messages": [], "tool_choice": {"type": []}})
def test_anthropic_request_to_openai_is_a_dict_or_a_value_error(body: dict[str, Any]) -> None:
    out = call_or_value_error(anthropic_request_to_openai, body)
    assert out is None or isinstance(out["messages"], list)


@fuzz(80)
@given(body=openai_requests | st.dictionaries(texts, json_values, max_size=4))
@example(body={"messages": [{"role": "assistant", "tool_calls": "x"}]})
@example(body={"temperature": [1]})
@example(body={"temperature": 10**400})
@example(body={"stop": 1})
@example(body={"tools": [{"type": "function", "function": "f"}], "tool_choice": ["x"]})
@example(body={"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 1}}]}]})
def test_openai_request_to_anthropic_is_a_dict_or_a_value_error(body: dict[str, Any]) -> None:
    out = call_or_value_error(openai_request_to_anthropic, body)
    assert out is None or (isinstance(out["messages"], list) and out["max_tokens"])


@fuzz(80)
@given(body=anthropic_responses | openai_responses | st.dictionaries(texts, json_values, max_size=4))
@example(body={"type": "message", "content": [], "usage": {"input_tokens": "5", "output_tokens": 1}})
@example(body={"type": "message", "content": [], "usage": {"input_tokens": float("inf")}})
@example(body={"type": "message", "content": [], "usage": []})
@example(body={"type": "message", "content": [], "stop_reason": ["end_turn"]})
@example(body={"type": "message", "content": [{"type": "text", "text": 5}]})
@example(body={"choices": [{"message": {"content": None, "tool_calls": "x"}}]})
@example(body={"choices": [{"message": {"tool_calls": [{"function": {"arguments": "[" * DEEP}}]}}]})
@example(body={"choices": [], "usage": {"prompt_tokens": 1e400}})
def test_responses_translate_or_raise_value_error(body: dict[str, Any]) -> None:
    out = call_or_value_error(anthropic_response_to_openai, body)
    assert out is None or out["object"] == "chat.completion"
    for response in (body, out or {}):
        text = completion_text(response)
        assert text is None or isinstance(text, str)
        usage = call_or_value_error(completion_usage, response)
        assert usage is None or all(isinstance(n, int) for n in usage)


text_blocks = st.builds(lambda t: {"type": "text", "text": t}, texts)
tool_blocks = st.builds(lambda i, n, a: {"type": "tool_use", "id": i, "name": n, "input": a},
                        texts, texts, st.dictionaries(texts, json_values.filter(_finite), max_size=3))
other_blocks = st.builds(lambda t: {"type": "thinking", "thinking": t, "signature": "s"}, texts)


@fuzz(50)
@given(blocks=st.lists(text_blocks | tool_blocks | other_blocks, max_size=6),
       usage=st.fixed_dictionaries({"input_tokens": st.integers(0, 10**9), "output_tokens": st.integers(0, 10**9)},
                                   optional={"cache_read_input_tokens": st.integers(0, 10**6)}),
       reason=st.sampled_from(["end_turn", "max_tokens", "tool_use", "stop_sequence", None]))
def test_anthropic_response_text_tools_and_usage_survive_translation(
    blocks: list[dict[str, Any]], usage: dict[str, int], reason: str | None
) -> None:
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": blocks,
            "stop_reason": reason, "usage": usage}
    out = anthropic_response_to_openai(body)
    message = out["choices"][0]["message"]
    texts_in = [b["text"] for b in blocks if b["type"] == "text"]
    tools_in = [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]
    assert message["content"] == ("".join(texts_in) if texts_in or not tools_in else None)
    calls = [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
             for c in message.get("tool_calls", [])]
    assert calls == [(i, n, a or {}) for i, n, a in tools_in]
    prompt = usage["input_tokens"] + usage.get("cache_read_input_tokens", 0)
    assert completion_usage(out) == (prompt, usage["output_tokens"])
    finish = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
    assert out["choices"][0]["finish_reason"] == finish.get(reason)
    joined = "".join(texts_in)
    if joined or not tools_in:
        assert completion_text(out) == joined
    else:  # only tool calls: compared as [{"name", "arguments"}]
        assert json.loads(completion_text(out) or "") == [{"name": n, "arguments": a or {}} for _, n, a in tools_in]


chat_turns = st.lists(st.tuples(st.sampled_from(["user", "assistant"]), texts), min_size=1, max_size=5)
request_params = st.fixed_dictionaries({"model": texts, "max_tokens": st.integers(1, 10**6)}, optional={
    "temperature": st.floats(0, 1), "top_p": st.floats(0, 1), "stream": st.booleans(),
    "stop": st.lists(texts.filter(bool), min_size=1, max_size=3), "user": texts.filter(bool),
})
function_tools = st.lists(st.fixed_dictionaries({
    "type": st.just("function"),
    "function": st.fixed_dictionaries(
        {"name": texts, "parameters": st.just({"type": "object", "properties": {"q": {"type": "string"}}})},
        optional={"description": texts}),
}), max_size=2)


@fuzz(60)
@given(system=st.none() | texts.filter(bool), turns=chat_turns, params=request_params, tools=function_tools)
def test_text_requests_round_trip_openai_anthropic_openai(
    system: str | None, turns: list[tuple[str, str]], params: dict[str, Any], tools: list[dict[str, Any]]
) -> None:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": role, "content": content} for role, content in turns]
    request = {**params, "messages": messages, **({"tools": tools} if tools else {})}
    assert anthropic_request_to_openai(openai_request_to_anthropic(request)) == request


def test_nesting_just_under_the_recursion_limit_is_a_result_or_a_value_error() -> None:
    """JSON that json.loads just manages to parse can be too deep to write back (json.dumps) or
    to repr a few frames further down: every depth across the limit, in every nested field the
    parsers touch, is a result or a ValueError. (Found completion_text's RecursionError.)"""
    limit = sys.getrecursionlimit()
    for depth in range(limit - 150, limit + 2):
        nested = "[" * depth + "]" * depth
        cases: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
            (reassemble, (f'data: {{"choices": [{nested}]}}\n\ndata: [DONE]\n\n'.encode(), "openai", True)),
            (reassemble, (f'data: {{"choices": [{{"index": {nested}}}]}}\n\n'.encode(), "openai", True)),
            (reassemble, (f'{{"type": "message", "content": [], "usage": {{"input_tokens": {nested}}}}}'.encode(),
                          "anthropic", False)),
            (reassemble, (f'{{"type": "message", "content": [{{"type": "tool_use", "input": {{"a": {nested}}}}}]}}'
                          .encode(), "anthropic", False)),
            (completion_text, ({"choices": [{"message": {"tool_calls": [{"function": {"arguments": nested}}]}}]},)),
            (openai_request_to_anthropic, ({"messages": [{"role": "assistant", "tool_calls": [
                {"function": {"arguments": nested}}]}]},)),
        ]
        for fn, args in cases:
            call_or_value_error(fn, *args)
        request = f'{{"messages": [{{"role": "user", "content": [{{"type": "tool_use", "input": {nested}}}]}}]}}'
        capture = Capture(task="t", raw_request=request.encode(), raw_response=MESSAGE, api="anthropic")
        call_or_value_error(capture.resolve)


# =========================================================================== 3: captures

ENCODINGS = ["gzip", "x-gzip", "deflate", "br", "zstd", "identity", "compress", "gzip, identity",
             "deflate, gzip", "", " , ", "GZIP", "chunked"]
a_completion = {"id": "c", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Bytes as a body might carry them: anything, JSON of any shape, a valid completion, gzipped
    or not, cut short or not."""
    kind = draw(st.sampled_from(["bytes", "json", "shaped", "completion", "deep"]))
    if kind == "bytes":
        raw = draw(st.binary(max_size=200))
    elif kind == "json":
        raw = json.dumps(draw(json_values)).encode()
    elif kind == "shaped":
        raw = json.dumps(draw(anthropic_responses | openai_responses | anthropic_requests | openai_requests)).encode()
    elif kind == "completion":
        raw = json.dumps(a_completion).encode()
    else:
        depth = draw(st.integers(900, 3000))  # around the interpreter's recursion limit
        raw = b'{"a":' * depth + b"1" + b"}" * depth
    wrap = draw(st.sampled_from(["none", "gzip", "deflate", "raw-deflate", "cut"]))
    if wrap == "gzip":
        raw = gzip.compress(raw)
    elif wrap == "deflate":
        raw = zlib.compress(raw)
    elif wrap == "raw-deflate":
        deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        raw = deflate.compress(raw) + deflate.flush()
    elif wrap == "cut":
        raw = raw[:draw(st.integers(0, len(raw)))]
    return raw


@pytest.fixture(scope="module")
def fuzz_config() -> Config:
    return load_config(data={"database_url": "sqlite+aiosqlite:///unused.db",
                             "models": {"m": {"base_url": "http://127.0.0.1:9/v1",
                                              "input_price": 1.0, "output_price": 2.0}}})


@fuzz(60)
@given(request=bodies(), response=bodies(), encoding=st.sampled_from(ENCODINGS) | texts,
       api=st.sampled_from(["openai", "anthropic"]), streamed=st.booleans())
@example(request=b'{"messages": []}', response=b"not gzip at all", encoding="gzip", api="openai", streamed=False)
@example(request=b"[" * DEEP, response=b"{}", encoding="", api="openai", streamed=False)
@example(request=b'{"messages": []}', response=b"\x78\x9c garbage", encoding="deflate", api="openai", streamed=False)
def test_capture_resolution_raises_only_value_error(
    fuzz_config: Config, request: bytes, response: bytes, encoding: str, api: Any, streamed: bool
) -> None:
    capture = Capture(task="t", raw_request=request, raw_response=response, content_encoding=encoding,
                      api=api, streamed=streamed)
    try:
        capture.resolve()
    except ValueError:
        return
    record = capture.to_record(fuzz_config)
    assert record.request is capture.request and isinstance(record.request, dict)
    assert record.primary_output is None or isinstance(record.primary_output, str)


@fuzz(60)
@given(request=anthropic_requests | openai_requests | st.dictionaries(texts, json_values, max_size=3),
       result=anthropic_responses | openai_responses | json_values, api=st.sampled_from(["openai", "anthropic"]))
def test_capture_of_python_objects_raises_only_value_error(
    fuzz_config: Config, request: dict[str, Any], result: Any, api: Any
) -> None:
    capture = Capture(task="t", request=request, result=result, api=api)
    try:
        capture.resolve()
    except ValueError:
        return
    assert capture.to_record(fuzz_config).task_type == "t"


@fuzz(150)
@given(body=st.binary(max_size=100), encoding=st.sampled_from(ENCODINGS) | texts)
def test_decode_body_raises_only_value_error(body: bytes, encoding: str) -> None:
    out = call_or_value_error(decode_body, body, encoding)
    assert out is None or isinstance(out, bytes)


# ---- import (JSONL lines written by other tools)

chat_lines = shaped(
    {"request": openai_requests | anthropic_requests, "response": openai_responses | anthropic_responses},
    {"task": texts, "metadata": json_values, "latency_ms": st.floats() | st.integers(),
     "created_at": st.sampled_from(["2024-05-01T12:00:00Z", "9999-12-31T23:59:59-12:00",
                                    "0001-01-01T00:00:00+14:00", "2024-13-01", "now"]) | json_values},
)
jsonl_lines = st.one_of(
    chat_lines.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=60).filter(lambda b: b"\n" not in b),
    st.just(b"[" * DEEP), st.just(b'{"request": ' + b"1" * 5000 + b"}"),
    json_values.map(lambda v: json.dumps(v).encode()),
)


def test_import_never_crashes_on_a_bad_line(tmp_path: Path) -> None:
    """Every line is imported or reported bad with a reason; only ConfigError / StoreError (the
    documented errors) ever leave ``import_file``."""
    from shadowroute.offline.importer import import_file
    from shadowroute.store import Store

    config = load_config(data={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'import.db'}"})
    with anyio.from_thread.start_blocking_portal() as portal:
        store = portal.call(Store.open, config.database_url)
        try:
            @fuzz(15)
            @given(lines=st.lists(jsonl_lines, min_size=1, max_size=4))
            @example(lines=[b"[" * DEEP])
            @example(lines=[b'{"request": ' + b"1" * 5000 + b"}"])
            @example(lines=[json.dumps({
                "request": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                "response": {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 1e999}},
            }).encode()])
            @example(lines=[json.dumps({
                "request": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                "response": {"choices": [{"message": {"content": "x"}}]},
                "created_at": "9999-12-31T23:59:59-12:00",
            }).encode()])
            def run(lines: list[bytes]) -> None:
                path = tmp_path / "lines.jsonl"
                path.write_bytes(b"\n".join(lines) + b"\n")
                report = portal.call(lambda: import_file(config, store, path, fmt="chat"))
                accounted = report.imported + report.already_stored + report.bad + report.redaction_errors
                assert report.lines == accounted, report.summary()
                assert all(bad.reason for bad in report.bad_lines)

            run()
        finally:
            portal.call(store.close)


# =========================================================================== 4: the sidecar's HTTP API

COMPLETION = json.dumps(a_completion).encode()
MESSAGE = json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                      "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                      "usage": {"input_tokens": 2, "output_tokens": 1}}).encode()
OPENAI_SSE = (b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'
              b"data: [DONE]\n\n")


def upstream_ok(request: httpx.Request) -> httpx.Response:
    """A mock upstream that answers every call with a 200, so any 5xx is the sidecar's own."""
    if request.url.path.endswith("/v1/messages"):
        return httpx.Response(200, content=MESSAGE, headers={"content-type": "application/json"})
    if b'"stream": true' in request.content or b'"stream":true' in request.content:
        return httpx.Response(200, content=OPENAI_SSE, headers={"content-type": "text/event-stream"})
    return httpx.Response(200, content=COMPLETION, headers={"content-type": "application/json"})


def sidecar_config(tmp_path: Path, upstream: str | None, **sidecar: Any) -> Config:
    return load_config(data={
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}",
        "default_sample_rate": 1.0,  # every call is captured and resolved: the parsers see it all
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
        "mirror": {"shutdown_deadline_s": 2.0},
        "sidecar": {"upstream": upstream, **sidecar},
    })


class InProcessSidecar:
    """The sidecar app in-process (httpx.ASGITransport), its lifespan running in a blocking
    portal so a sync hypothesis test can drive it; upstream calls go to ``handler``."""

    def __init__(self, config: Config, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.errors: list[tuple[str, BaseException]] = []
        self.shadow = Shadow(config, on_error=lambda stage, exc: self.errors.append((stage, exc)))
        self.app = create_app(config, shadow=self.shadow, upstream_transport=httpx.MockTransport(handler))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://sidecar.test")

    @contextmanager
    def running(self) -> Iterator[InProcessSidecar]:
        with anyio.from_thread.start_blocking_portal() as portal, \
                portal.wrap_async_context_manager(self.app.router.lifespan_context(self.app)):
            self.portal = portal
            try:
                yield self
            finally:
                portal.call(self.client.aclose)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(lambda: self.client.request(method, path, **kwargs))

    def drained(self) -> None:
        """Wait until every queued capture was resolved (mirrored or failed)."""
        stats = self.shadow.stats

        async def wait() -> None:
            with anyio.fail_after(5):
                while stats.enqueued > stats.mirrored + stats.discarded["capture_error"]:
                    await anyio.sleep(0.001)

        self.portal.call(wait)


def is_api_error(body: Any, anthropic: bool) -> bool:
    """The API's error shape: OpenAI's ``{"error": {"message", "type", ...}}``; Anthropic's
    adds ``"type": "error"`` at the top."""
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("message"), str)
            and isinstance(error.get("type"), str)):
        return False
    return body.get("type") == "error" if anthropic else True


header_values = st.one_of(
    st.sampled_from([b"application/json", b"text/plain", b"application/x-www-form-urlencoded", b"gzip",
                     b"deflate, br", b"multipart/form-data; boundary=x", b"", b"\xff\xfe", "naïve ✓".encode(),
                     "caf\u00e9".encode("latin-1"), b"\xb2", b"1" * 5000, b"-1", b"0"]),
    st.lists(st.integers(0x20, 0xFF).filter(lambda b: b != 0x7F), max_size=24).map(bytes),
)
header_names = st.sampled_from([
    b"content-type", b"content-encoding", b"content-length", b"x-shadowroute-task", b"authorization",
    b"x-api-key", b"accept-encoding", b"host", b"x-forwarded-host", b"forwarded", b"anthropic-version",
    b"x-shadowroute-route", b"x-shadowroute-reverse", b"x-shadowroute-fallback", b"transfer-encoding",
    b"expect", b"connection", b"x-custom",
]) | st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12).map(str.encode)


@st.composite
def http_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bodies", "request", "captures", "huge", "utf8"]))
    if kind == "bodies":
        return draw(bodies())
    if kind == "request":
        return json.dumps(draw(openai_requests | anthropic_requests)).encode()
    if kind == "captures":
        item = shaped({"task": texts, "request": openai_requests | anthropic_requests,
                       "response": openai_responses | anthropic_responses | texts},
                      {"api": st.sampled_from(["openai", "anthropic"]), "latency_ms": st.floats(),
                       "metadata": json_values, "sampled": st.booleans()})
        return json.dumps({"captures": draw(st.lists(item, max_size=3))}).encode()
    if kind == "huge":
        return draw(st.sampled_from([b'{"model": "m", "max_tokens": ' + b"9" * 5000 + b"}",
                                     b'{"model": "m", "max_tokens": 1e999, "messages": []}',
                                     b'{"model": "m", "temperature": -1e999, "messages": []}',
                                     b'{"captures": [{"task": "t", "request": {}, "response": "x", "latency_ms": 1e999}]}']))
    return b'{"model": "\xff\xfe", "messages": [{"role": "user", "content": "\xc3"}]}'


@st.composite
def http_requests(draw: st.DrawFn) -> tuple[str, str, list[tuple[bytes, bytes]], bytes]:
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "PATCH", "DELETE", "HEAD",
                                   "OPTIONS", "TRACE", "PROPFIND"]))
    path = draw(st.sampled_from(["/v1/chat/completions", "/v1/messages", "/v1/captures", "/v1/models",
                                 "/v1/embeddings", "/healthz", "/metrics", "/v1/"])
                | texts.map(lambda t: "/v1/" + quote(t, safe="")))
    path += draw(st.sampled_from(["", "", "/", "?x=1", "?%00=%ff", "%00", "%0d%0a", "%2F..%2Fx", "/%ff"]))
    headers = draw(st.lists(st.tuples(header_names, header_values), max_size=5))
    return method, path, headers, draw(http_bodies())


@pytest.mark.timeout(60)
def test_sidecar_http_api_never_answers_5xx_and_errors_are_api_shaped(tmp_path: Path) -> None:
    sidecar = InProcessSidecar(sidecar_config(tmp_path, "https://upstream.test"), upstream_ok)
    with sidecar.running():
        @fuzz(80)
        @given(req=http_requests())
        @example(req=("POST", "/v1/a%00b", [], b"{}"))  # NUL in the path: was a 500 (httpx.InvalidURL)
        @example(req=("OPTIONS", "/v1/messages", [], b""))  # Starlette's 405: was text/plain
        @example(req=("POST", "/v1/a%0d%0ab", [], b"{}"))  # no route takes a newline: 404 text/plain
        @example(req=("POST", "/v1/chat/completions", [(b"content-length", b"\xb2")], b"{}"))  # "²".isdigit()
        @example(req=("POST", "/v1/captures", [(b"content-length", b"1" * 5000)], b"{}"))  # int() digit limit
        @example(req=("POST", "/v1/messages", [(b"host", b"[")], b"[" * DEEP))
        def run(req: tuple[str, str, list[tuple[bytes, bytes]], bytes]) -> None:
            method, path, headers, body = req
            response = sidecar.request(method, path, headers=headers, content=body)
            assert response.status_code < 500, (response.status_code, response.text[:300])
            if 400 <= response.status_code < 500 and method != "HEAD":
                anthropic = method == "POST" and path.split("?")[0].endswith("/v1/messages")
                assert response.headers["content-type"] == "application/json", response.text[:300]
                assert is_api_error(response.json(), anthropic), response.text[:300]
            sidecar.drained()  # what the sidecar captured was resolved: only ValueError on garbage
            assert not [(s, e) for s, e in sidecar.errors if not isinstance(e, ValueError)], sidecar.errors

        run()
        assert sidecar.request("GET", "/healthz").status_code == 200
        assert sidecar.request("GET", "/metrics").status_code == 200
    # No capture error went unreported (the transport counts some without the hook): all were seen
    # above, and all were ValueError.
    assert sidecar.shadow.stats.capture_errors == sum(1 for s, _ in sidecar.errors if s == "capture")


# =========================================================================== 5: size limits

LIMIT = 2048


def padded(path: str, size: int) -> bytes:
    """A valid body for ``path`` of exactly ``size`` bytes."""
    if path == "/v1/captures":
        def make(pad: str) -> dict[str, Any]:
            return {"captures": [{"task": "t", "request": {"model": "m", "pad": pad}, "response": "ok"}]}
    else:
        def make(pad: str) -> dict[str, Any]:
            return {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": pad}]}
    base = len(json.dumps(make("")).encode())
    body = json.dumps(make("x" * (size - base))).encode()
    assert len(body) == size
    return body


def test_bodies_over_max_body_bytes_are_413_with_an_api_error_at_the_exact_limit(tmp_path: Path) -> None:
    """``[sidecar] max_body_bytes`` on a real server (uvicorn): a body of exactly the limit goes
    through, one byte more is a 413 in the API's error shape, with or without Content-Length."""
    config = sidecar_config(tmp_path, "https://upstream.test", max_body_bytes=LIMIT)
    app = create_app(config, upstream_transport=httpx.MockTransport(upstream_ok))
    with BackgroundServer(app, timeout_graceful_shutdown=1.0) as server, \
            httpx.Client(base_url=server.base_url, timeout=10) as client:
        @fuzz(30)
        @given(path=st.sampled_from(["/v1/chat/completions", "/v1/messages", "/v1/captures"]),
               size=st.integers(LIMIT - 3, LIMIT + 3) | st.integers(150, 3 * LIMIT),
               chunked=st.booleans(), chunk=st.integers(1, 700))
        @example(path="/v1/captures", size=LIMIT + 1, chunked=True, chunk=256)  # not covered before
        @example(path="/v1/captures", size=LIMIT, chunked=True, chunk=256)
        def run(path: str, size: int, chunked: bool, chunk: int) -> None:
            body = padded(path, size)

            def pieces() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
                for i in range(0, len(body), chunk):
                    yield body[i:i + chunk]

            response = client.post(path, content=pieces() if chunked else body,
                                   headers={"content-type": "application/json"})
            if size <= LIMIT:
                assert response.status_code == (202 if path == "/v1/captures" else 200), response.text
            else:
                assert response.status_code == 413, response.text
                assert is_api_error(response.json(), anthropic=path == "/v1/messages"), response.text
                assert "max_body_bytes" in response.json()["error"]["message"]

        run()
        assert client.get("/healthz").status_code == 200


# =========================================================================== 6: upstreams from config only


class Recorder:
    """A real loopback HTTP server that records every hit; ``answer`` says what it replies."""

    def __init__(self, answer: Callable[[Request, bytes], Response]) -> None:
        self.hits: list[tuple[str, str, dict[str, str], bytes]] = []

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            self.hits.append((request.method, request.url.path, dict(request.headers), body))
            return answer(request, body)

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        app = Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
        self.server = BackgroundServer(app, lifespan="off")

    def paths(self) -> list[str]:
        return [path for _, path, _, _ in self.hits]


def raw_http(port: int, head: bytes, body: bytes = b"") -> bytes:
    """One request written on a socket exactly as given (absolute-form targets, odd paths)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"\r\n" + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_the_sidecar_only_ever_calls_the_configured_upstream(tmp_path: Path) -> None:
    """SSRF: whatever a request says -- absolute-form target, Host, X-Forwarded-Host / Forwarded,
    ``base_url``-like body fields, an upstream redirect -- the sidecar connects to its configured
    upstream (and the configured candidates) only. ``evil`` is a real server counting hits."""
    evil = Recorder(lambda request, body: JSONResponse({"stolen": True}))

    def upstream_answer(request: Request, body: bytes) -> Response:
        code = request.query_params.get("redirect")
        if code:
            return RedirectResponse(evil_url + "/v1/chat/completions", status_code=int(code))
        return Response(MESSAGE if request.url.path.endswith("/v1/messages") else COMPLETION,
                        media_type="application/json")

    upstream = Recorder(upstream_answer)
    with evil.server, upstream.server:
        evil_url = evil.server.base_url
        evil_host = evil_url.removeprefix("http://")
        config = load_config(data={
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'ssrf.db'}",
            "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
            "mirror": {"shutdown_deadline_s": 2.0},
            "models": {"cand": {"base_url": upstream.server.base_url + "/v1", "max_retries": 0}},
            "tasks": {"t": {"candidates": ["cand"], "sample_rate": 1.0}},
            "sidecar": {"upstream": upstream.server.base_url, "default_task": "t"},
        })
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        lures = {"base_url": evil_url, "api_base": evil_url, "api_url": evil_url, "url": evil_url,
                 "endpoint": evil_url + "/v1/chat/completions", "baseURL": evil_url}
        # The real upstream client (httpx over aiohttp): nothing is mocked on the way out.
        with BackgroundServer(create_app(config), timeout_graceful_shutdown=1.0) as sc, \
                httpx.Client(base_url=sc.base_url, timeout=10) as client:
            answers = []
            for head in (  # absolute-form and odd targets, as a client could write them
                b"POST http://%s/v1/chat/completions HTTP/1.1\r\nhost: %s" % (evil_host.encode(), evil_host.encode()),
                b"POST //%s/v1/chat/completions HTTP/1.1\r\nhost: x" % evil_host.encode(),
                b"POST /@%s/v1/chat/completions HTTP/1.1\r\nhost: x" % evil_host.encode(),
            ):
                answers.append(raw_http(sc.port, head, json.dumps(chat).encode()))
            assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers
            for headers in ({"host": evil_host}, {"x-forwarded-host": evil_host, "x-forwarded-proto": "http"},
                            {"forwarded": f"host={evil_host};proto=http"}, {"x-original-url": evil_url},
                            {"x-rewrite-url": evil_url + "/v1/chat/completions"}):
                assert client.post("/v1/chat/completions", json=chat, headers=headers).status_code == 200
            assert client.post("/v1/chat/completions", json={**chat, **lures}).status_code == 200
            assert client.post("/v1/messages", json={**chat, "max_tokens": 5, **lures}).status_code == 200
            captured = client.post("/v1/captures", json={"captures": [
                {"task": "t", "request": {**chat, **lures}, "response": "ok", "sampled": True}]})
            assert captured.status_code == 202 and captured.json()["queued"] == 1
            for code in (302, 307):
                redirected = client.post(f"/v1/chat/completions?redirect={code}", json=chat)
                assert redirected.status_code == code  # relayed as it came, not followed
                assert redirected.headers["location"] == evil_url + "/v1/chat/completions"
            stats = sc.app.state.sidecar.shadow.stats
            for _ in range(1000):  # the candidate calls are made in the background
                if stats.mirrored + stats.discarded["capture_error"] >= stats.enqueued:
                    break
                time.sleep(0.005)
    assert evil.hits == [], evil.hits
    # 12 calls through the proxy (3 raw, 5 with headers, 2 with lures, 2 redirected) and every
    # candidate call (the captured request with lures among them) reached the upstream.
    assert stats.candidate_calls == 11 and stats.candidate_errors == {}  # 10 proxied + 1 posted
    assert len(upstream.hits) == 12 + stats.candidate_calls
    assert upstream.paths()[0] == "/v1/chat/completions"  # the absolute-form call, first of all
    paths = set(upstream.paths())
    assert {f"//{evil_host}/v1/chat/completions", f"/@{evil_host}/v1/chat/completions"} <= paths  # paths


@pytest.mark.parametrize("url", ["ftp://upstream.test", "file:///etc/passwd", "gopher://127.0.0.1:70/",
                                 "127.0.0.1:8080", "//upstream.test", " http://upstream.test", "",
                                 "unix:///var/run/llm.sock", "javascript:alert(1)"])
def test_upstreams_must_be_http_urls(url: str) -> None:
    for data in ({"sidecar": {"upstream": url}}, {"sidecar": {"anthropic_upstream": url}},
                 {"models": {"m": {"base_url": url}}}):
        with pytest.raises(ConfigError, match="http:// or https://"):
            load_config(data=data)
