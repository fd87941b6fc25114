"""Captured response bodies, SSE streams included, as one canonical ``chat.completion`` dict.

Input is the whole captured body as bytes (the transport and the sidecar keep a copy of what
the caller read). Anything that is not a usable stream or response raises :class:`ValueError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from .anthropic import anthropic_response_to_openai
from .chat import _brief, _error_message, _loads, _obj, _seq, _str
from .responses import responses_response_to_openai

__all__ = [
    "reassemble", "reassemble_anthropic_stream", "reassemble_openai_stream",
    "reassemble_responses_stream",
]


def reassemble(
    raw: bytes, api: Literal["openai", "anthropic", "responses"], streamed: bool
) -> dict[str, Any]:
    """A captured response body (an SSE stream when ``streamed``) as a canonical completion."""
    if api not in _STREAMS:
        raise ValueError(f"unknown api {api!r} (expected one of {', '.join(_STREAMS)})")
    if streamed:
        return _STREAMS[api](raw)
    body = _loads(raw, f"{api} response body")
    if api == "anthropic":
        return anthropic_response_to_openai(body)
    if api == "responses":
        return responses_response_to_openai(body)
    if "error" in body:
        raise ValueError(f"OpenAI error response: {_error_message(body)}")
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(first, dict) or not isinstance(first.get("message"), dict):
        raise ValueError("OpenAI response has no choices[0].message")
    return body


def reassemble_openai_stream(raw: bytes) -> dict[str, Any]:
    """A complete chat-completions SSE stream as one ``chat.completion``; ValueError if unusable."""
    head: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    usage: Any = None
    chunks, done = 0, False
    for event, data in _sse_events(raw):
        if data.strip() == "[DONE]":
            done = True
            break
        chunk = _loads(data, "OpenAI stream chunk")
        if event == "error" or "error" in chunk:
            raise ValueError(f"OpenAI stream error: {_error_message(chunk)}")
        chunks += 1
        for key in ("id", "created", "model", "system_fingerprint"):
            if head.get(key) is None and chunk.get(key) is not None:
                head[key] = chunk[key]
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in _seq(chunk.get("choices"), "OpenAI stream chunk choices"):
            choice = _obj(choice, "OpenAI stream choice")
            index = _index(choice.get("index", 0), "choice index")
            acc = choices.setdefault(index, {"text": [], "calls": {}, "finish": None,
                                             "refusal": []})
            delta = _obj(choice.get("delta"), "OpenAI stream delta")
            if delta.get("content"):
                acc["text"].append(_str(delta["content"], "delta content"))
            if delta.get("refusal"):
                acc["refusal"].append(_str(delta["refusal"], "delta refusal"))
            for call in _seq(delta.get("tool_calls"), "delta tool_calls"):
                call = _obj(call, "delta tool call")
                key = _index(call.get("index", 0), "tool call index")
                slot = acc["calls"].setdefault(key, {"id": None, "name": "", "args": []})
                function = _obj(call.get("function"), "tool call function")
                slot["id"] = slot["id"] or call.get("id")
                slot["name"] = slot["name"] or _str(function.get("name") or "", "tool call name")
                if function.get("arguments"):
                    slot["args"].append(_str(function["arguments"], "tool call arguments"))
            if choice.get("finish_reason"):
                acc["finish"] = choice["finish_reason"]
    if not chunks:
        raise ValueError("OpenAI stream has no data chunks")
    if not done and not any(acc["finish"] for acc in choices.values()):
        raise ValueError("OpenAI stream ended without a finish_reason or [DONE] (truncated?)")
    out_choices = []
    for index in sorted(choices):
        acc = choices[index]
        message: dict[str, Any] = {"role": "assistant", "content": "".join(acc["text"])}
        if acc["refusal"]:
            message["refusal"] = "".join(acc["refusal"])
        if acc["calls"]:
            message["tool_calls"] = [
                {"id": s["id"], "type": "function",
                 "function": {"name": s["name"], "arguments": "".join(s["args"])}}
                for _, s in sorted(acc["calls"].items())
            ]
            message["content"] = message["content"] or None
        out_choices.append(
            {"index": index, "message": message, "logprobs": None, "finish_reason": acc["finish"]}
        )
    result = {"id": head.get("id"), "object": "chat.completion", "created": head.get("created"),
              "model": head.get("model"), "choices": out_choices, "usage": usage}
    if "system_fingerprint" in head:
        result["system_fingerprint"] = head["system_fingerprint"]
    return result


def reassemble_anthropic_stream(raw: bytes) -> dict[str, Any]:
    """A complete Messages SSE stream as one canonical completion; ValueError if unusable."""
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    pieces: dict[int, list[str]] = {}  # text deltas, or partial JSON of a tool_use input
    stopped = False
    for event, data in _sse_events(raw):
        payload = _loads(data, "Anthropic stream event")
        kind = payload.get("type") or event
        if kind == "error" or event == "error":
            raise ValueError(f"Anthropic stream error: {_error_message(payload)}")
        if kind == "ping":
            continue
        if kind == "message_start":
            message = dict(_obj(payload.get("message"), "message_start message"))
            message["usage"] = dict(_obj(message.get("usage"), "message_start usage"))
            continue
        if message is None:
            raise ValueError(f"Anthropic stream: {kind!r} event before message_start")
        index = _index(payload.get("index", 0), f"{kind} index")
        if kind == "content_block_start":
            blocks[index] = dict(_obj(payload.get("content_block"), "content_block"))
        elif kind == "content_block_delta":
            delta = _obj(payload.get("delta"), "content_block_delta delta")
            block = blocks.setdefault(index, {"type": "text", "text": ""})
            if delta.get("type") == "text_delta":
                first = _str(block.get("text") or "", "content block text")
                pieces.setdefault(index, [first]).append(_str(delta.get("text", ""), "text_delta"))
            elif delta.get("type") == "input_json_delta":
                partial = _str(delta.get("partial_json", ""), "input_json_delta")
                pieces.setdefault(index, []).append(partial)
        elif kind == "message_delta":
            delta = _obj(payload.get("delta"), "message_delta delta")
            for key in ("stop_reason", "stop_sequence"):
                if key in delta:
                    message[key] = delta[key]
            usage = _obj(payload.get("usage"), "message_delta usage")  # cumulative counts
            message["usage"].update({k: v for k, v in usage.items() if v is not None})
        elif kind == "message_stop":
            stopped = True
            break
    if message is None:
        raise ValueError("Anthropic stream has no message_start event")
    if not stopped and message.get("stop_reason") is None:
        raise ValueError("Anthropic stream ended without message_stop or stop_reason (truncated?)")
    content = []
    for index in sorted(blocks):
        block = blocks[index]
        if index in pieces and block.get("type") == "tool_use":
            partial = "".join(pieces[index])
            try:
                block["input"] = json.loads(partial) if partial else {}
            except (ValueError, RecursionError) as exc:
                raise ValueError(f"Anthropic stream: malformed tool_use input JSON: {exc}") from exc
        elif index in pieces:
            block["text"] = "".join(pieces[index])
        content.append(block)
    message["content"] = content
    return anthropic_response_to_openai(message)


def reassemble_responses_stream(raw: bytes) -> dict[str, Any]:
    """A complete Responses API SSE stream as one canonical completion; ValueError if unusable.

    The terminal event (``response.completed``, ``response.incomplete``) carries the whole
    response object; its output is rebuilt from the ``response.output_item.done`` events (and
    the text and argument deltas of items that never finished) when a server leaves it out.
    A stream without a terminal event was cut short; ``response.failed`` and ``error`` are
    error responses."""
    final: dict[str, Any] | None = None
    items: dict[int, dict[str, Any]] = {}
    done: set[int] = set()
    texts: dict[tuple[int, int], list[str]] = {}
    arguments: dict[int, list[str]] = {}
    events = 0
    for event, data in _sse_events(raw):
        payload = _loads(data, "Responses stream event")
        kind = payload.get("type") or event
        events += 1
        if kind == "error" or event == "error":
            raise ValueError(f"Responses stream error: {_error_message(payload)}")
        if kind == "response.failed":
            response = _obj(payload.get("response"), "response.failed response")
            raise ValueError(f"Responses stream failed: {_error_message(response)}")
        if kind in ("response.completed", "response.incomplete"):
            final = dict(_obj(payload.get("response"), f"{kind} response"))
            break
        if kind in ("response.output_item.added", "response.output_item.done"):
            index = _index(payload.get("output_index", 0), f"{kind} output_index")
            items[index] = dict(_obj(payload.get("item"), f"{kind} item"))
            if kind == "response.output_item.done":
                done.add(index)
        elif kind == "response.output_text.delta":
            key = (_index(payload.get("output_index", 0), "output_index"),
                   _index(payload.get("content_index", 0), "content_index"))
            texts.setdefault(key, []).append(_str(payload.get("delta", ""), "output_text delta"))
        elif kind == "response.function_call_arguments.delta":
            index = _index(payload.get("output_index", 0), "output_index")
            arguments.setdefault(index, []).append(_str(payload.get("delta", ""),
                                                        "function_call_arguments delta"))
    if not events:
        raise ValueError("Responses stream has no events")
    if final is None:
        raise ValueError("Responses stream ended without response.completed (truncated?)")
    if not final.get("output") and items:
        output = []
        for index in sorted(items):
            item = items[index]
            if index not in done:  # finished by the terminal event: put its deltas back
                if item.get("type") == "message":
                    parts = sorted((c, "".join(p)) for (o, c), p in texts.items() if o == index)
                    item["content"] = [{"type": "output_text", "text": text} for _, text in parts]
                elif item.get("type") == "function_call":
                    item["arguments"] = "".join(arguments.get(index, []))
            output.append(item)
        final["output"] = output
    return responses_response_to_openai(final)


def _index(value: Any, what: str) -> int:
    """A choice / block / tool call index: an integer, or the stream is not usable."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} is {_brief(value)}, expected an integer")
    return value


def _sse_events(raw: bytes) -> Iterator[tuple[str, str]]:
    """``(event, data)`` per SSE event; CRLF/CR/LF line ends, comments skipped, multi-line data."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"SSE stream is not valid UTF-8: {exc}") from exc
    event, data = "", []
    for line in text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
        elif line[0] != ":":
            name, _, value = line.partition(":")
            value = value[1:] if value[:1] == " " else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
    if data:  # a stream cut after its last event's data line
        yield event or "message", "\n".join(data)


_STREAMS = {"openai": reassemble_openai_stream, "anthropic": reassemble_anthropic_stream,
            "responses": reassemble_responses_stream}
