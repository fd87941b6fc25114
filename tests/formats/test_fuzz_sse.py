"""Property tests (hypothesis) of SSE reassembly: arbitrary bytes, valid generated streams (the
text is the deltas), damaged streams. Bad input is a ValueError, never another exception.

Bugs these found keep an ``@example`` of the input that found them.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from shadowroute.formats.sse import reassemble
from support.fuzz import DEEP, call_or_value_error, finite, fuzz, json_values, texts

# =========================================================================== SSE reassembly


def sse_event(data: str, event: str | None = None) -> list[str]:
    """The lines of one SSE event (no blank terminator)."""
    return ([f"event: {event}"] if event else []) + [f"data: {data}"]


@st.composite
def openai_streams(
    draw: st.DrawFn,
) -> tuple[list[list[str]], dict[int, str], dict[int, dict[int, tuple[str, str]]]]:
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
            tool_input = draw(st.dictionaries(texts, json_values.filter(finite), max_size=3))
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
def test_reassemble_arbitrary_bytes_is_a_dict_or_a_value_error(
    raw: bytes, api: str, streamed: bool,
) -> None:
    out = call_or_value_error(reassemble, raw, api, streamed)
    assert out is None or isinstance(out, dict)


@fuzz(50)
@given(stream=openai_streams(), data=st.data())
def test_valid_openai_stream_reassembles_to_the_concatenated_deltas(
    stream: Any, data: st.DataObject,
) -> None:
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
def test_valid_anthropic_stream_reassembles_to_the_concatenated_deltas(
    stream: Any, data: st.DataObject,
) -> None:
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
