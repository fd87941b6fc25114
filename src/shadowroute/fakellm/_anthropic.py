"""Anthropic Messages on the fake: the request body, the message, the stream, the errors.

Shapes as ``anthropic.types.Message`` / ``RawMessageStreamEvent`` validate them. Content comes
in Claude's order: a ``thinking`` block (with its ``signature``) when thinking is on and the
model reasons, a ``text`` block, then ``tool_use`` blocks (``stop_reason: "tool_use"``). A stream
is ``message_start`` (usage with the input tokens), per block ``content_block_start`` /
deltas (``thinking_delta`` + ``signature_delta``, ``text_delta``, ``input_json_delta``) /
``content_block_stop`` (a ``ping`` after the first start), ``message_delta`` (stop reason and
output tokens) and ``message_stop``. ``thinking.budget_tokens`` must be >= 1024 and below
``max_tokens``, as the real API requires.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, model_validator

from ._wire import (
    Ask,
    Body,
    CallIndex,
    Choice,
    Completion,
    ThinkingSpec,
    ToolSpec,
    arguments_value,
    flatten,
    json_pieces,
    split_words,
)

__all__ = ["AnthropicRequest", "anthropic_ask", "anthropic_body", "anthropic_error",
           "anthropic_events"]


class AnthropicMessage(Body):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class AnthropicTool(Body):
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None


class AnthropicToolChoice(Body):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class AnthropicThinking(Body):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = None
    display: str | None = None


class AnthropicRequest(Body):
    model: str
    max_tokens: int = Field(ge=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    stream: bool | None = False
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None
    thinking: AnthropicThinking | None = None
    output_config: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _thinking_budget(self) -> AnthropicRequest:
        if self.thinking is not None and self.thinking.type == "enabled":
            budget = self.thinking.budget_tokens
            if budget is None:
                raise ValueError("thinking.enabled.budget_tokens: Field required")
            if budget < 1024:
                raise ValueError("thinking.enabled.budget_tokens: Input should be greater "
                                 "than or equal to 1024")
            if budget >= self.max_tokens:
                raise ValueError("`max_tokens` must be greater than `thinking.budget_tokens`")
        return self


def _messages(req: AnthropicRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        [{"role": "system", "content": flatten(req.system)}] if req.system else [])
    index = CallIndex()
    for m in req.messages:
        blocks = m.content if isinstance(m.content, list) else []
        uses = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]
        results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
        if not uses and not results:
            messages.append({"role": m.role, "content": flatten(m.content)})
            continue
        for block in results:
            messages.append(index.result(block.get("tool_use_id"), flatten(block.get("content"))))
        text = flatten(m.content)
        if uses:
            messages.append({"role": m.role, "content": text, "tool_calls": [
                index.call(b.get("id"), str(b.get("name", "")), b.get("input") or {})
                for b in uses]})
        elif text:
            messages.append({"role": m.role, "content": text})
    return messages


def anthropic_ask(req: AnthropicRequest) -> Ask:
    """The request as an :class:`Ask`: the system prompt first, then canonical messages."""
    choice = req.tool_choice
    tool_choice = {"auto": "auto", "any": "required", "none": "none",
                   "tool": choice.name or "required"}[choice.type] if choice else "auto"
    fmt = (req.output_config or {}).get("format") or {}
    fmt = fmt if isinstance(fmt, dict) else {}
    schema = fmt.get("schema")
    thinking = req.thinking
    return Ask(
        model=req.model, messages=_messages(req), stream=bool(req.stream), limit=req.max_tokens,
        tools=[ToolSpec(t.name, t.description, t.input_schema) for t in req.tools or ()
               if t.type in (None, "custom")],
        tool_choice=tool_choice,
        parallel_tool_calls=not (choice and choice.disable_parallel_tool_use),
        thinking=(ThinkingSpec(thinking.budget_tokens, thinking.display)
                  if thinking is not None and thinking.type != "disabled" else None),
        json_mode=fmt.get("type") == "json_schema",
        schema=schema if isinstance(schema, dict) else None,
    )


def _stop_reason(choice: Choice) -> str:
    return {"length": "max_tokens", "tool_calls": "tool_use", "stop": "end_turn"}[choice.finish]


def _blocks(choice: Choice) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if choice.thinking is not None:
        blocks.append({"type": "thinking", "thinking": choice.thinking,
                       "signature": choice.signature})
    if choice.text or not choice.tool_calls:
        blocks.append({"type": "text", "text": choice.text})
    for call in choice.tool_calls:
        value = arguments_value(call.arguments)
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name,
                       "input": value if isinstance(value, dict) else {}})
    return blocks


def _usage(c: Completion, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": c.prompt_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "output_tokens": output_tokens}


def anthropic_body(c: Completion) -> dict[str, Any]:
    choice = c.first
    return {
        "id": f"msg_{c.id}",
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": _blocks(choice),
        "stop_reason": _stop_reason(choice),
        "stop_sequence": None,
        "usage": _usage(c, c.completion_tokens),
    }


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _block_events(index: int, block: dict[str, Any], choice: Choice) -> Iterator[str]:
    kind = block["type"]
    empty = {"thinking": {"type": "thinking", "thinking": "", "signature": ""},
             "text": {"type": "text", "text": ""},
             "tool_use": {**block, "input": {}}}[kind]
    yield _event("content_block_start", {"type": "content_block_start", "index": index,
                                         "content_block": empty})
    if index == 0:
        yield _event("ping", {"type": "ping"})

    def delta(payload: dict[str, Any]) -> str:
        return _event("content_block_delta", {"type": "content_block_delta", "index": index,
                                              "delta": payload})

    if kind == "thinking":
        for piece in split_words(block["thinking"]):
            yield delta({"type": "thinking_delta", "thinking": piece})
        yield delta({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "text":
        for piece in split_words(block["text"]):
            yield delta({"type": "text_delta", "text": piece})
    else:
        arguments = next(c.arguments for c in choice.tool_calls if c.id == block["id"])
        yield delta({"type": "input_json_delta", "partial_json": ""})
        for piece in json_pieces(arguments):
            yield delta({"type": "input_json_delta", "partial_json": piece})
    yield _event("content_block_stop", {"type": "content_block_stop", "index": index})


def anthropic_events(c: Completion) -> Iterator[str]:
    """The SSE events of a streamed Messages API response."""
    choice = c.first
    message = anthropic_body(c) | {"content": [], "stop_reason": None, "usage": _usage(c, 1)}
    yield _event("message_start", {"type": "message_start", "message": message})
    for index, block in enumerate(_blocks(choice)):
        yield from _block_events(index, block, choice)
    yield _event("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": _stop_reason(choice), "stop_sequence": None},
        "usage": {"output_tokens": c.completion_tokens},
    })
    yield _event("message_stop", {"type": "message_stop"})


_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 529: "overloaded_error",
}


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}
