"""OpenAI chat completions on the fake: the request body, the response, the stream, the errors.

Shapes as ``openai.types.chat.ChatCompletion`` / ``ChatCompletionChunk`` validate them:
``tool_calls`` with ``content: null`` (or with text before them) and ``finish_reason:
"tool_calls"``; ``n`` choices; usage with ``prompt_tokens_details`` and
``completion_tokens_details.reasoning_tokens``. A stream sends a role chunk per choice, text
pieces by word, tool calls as a header (``index``, ``id``, ``type``, ``name``) then argument
fragments, a finish chunk per choice, and -- only with ``stream_options.include_usage`` -- a last
chunk with no choices and the usage (every other chunk then has ``"usage": null``), then
``data: [DONE]``. With several choices their chunks interleave.
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
    Effort,
    ToolSpec,
    flatten,
    json_pieces,
    split_words,
)

__all__ = ["OpenAIRequest", "openai_ask", "openai_body", "openai_chunks", "openai_error"]


class OpenAIMessage(Body):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCallBody] | None = None
    tool_call_id: str | None = None


class FunctionBody(Body):
    name: str = Field(min_length=1)
    arguments: str = ""


class ToolCallBody(Body):
    id: str | None = None
    type: str = "function"
    function: FunctionBody


class FunctionDef(Body):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolDef(Body):
    type: str = "function"
    function: FunctionDef | None = None


class JSONSchemaBody(Body):
    name: str = Field(min_length=1)
    schema_: dict[str, Any] | None = Field(None, alias="schema")


class ResponseFormat(Body):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaBody | None = None

    @model_validator(mode="after")
    def _has_schema(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format json_schema needs `json_schema`")
        return self


class StreamOptions(Body):
    include_usage: bool = False


class OpenAIRequest(Body):
    model: str
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1, le=128)
    tools: list[ToolDef] | None = None
    tool_choice: Literal["auto", "none", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: Effort | None = None
    response_format: ResponseFormat | None = None


OpenAIMessage.model_rebuild()


def _tool_choice(value: str | dict[str, Any] | None) -> str:
    if isinstance(value, dict):
        function = value.get("function")
        if isinstance(function, dict) and function.get("name"):
            return str(function["name"])
        return "required"
    return value or "auto"


def openai_ask(req: OpenAIRequest) -> Ask:
    """The request as an :class:`Ask` (canonical messages; see ``fakellm/_wire.py``)."""
    index = CallIndex()
    messages: list[dict[str, Any]] = []
    for m in req.messages:
        message: dict[str, Any] = {"role": m.role, "content": flatten(m.content)}
        if m.tool_calls:
            message["tool_calls"] = [index.call(c.id, c.function.name, c.function.arguments)
                                     for c in m.tool_calls]
        if m.role == "tool":
            message = index.result(m.tool_call_id, message["content"])
        messages.append(message)
    fmt = req.response_format
    schema = fmt.json_schema.schema_ if fmt and fmt.json_schema else None
    return Ask(
        model=req.model, messages=messages, stream=bool(req.stream),
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        limit=req.max_completion_tokens or req.max_tokens, n=req.n or 1,
        tools=[ToolSpec(t.function.name, t.function.description, t.function.parameters)
               for t in req.tools or () if t.type == "function" and t.function],
        tool_choice=_tool_choice(req.tool_choice),
        parallel_tool_calls=req.parallel_tool_calls is not False,
        effort=req.reasoning_effort,
        json_mode=fmt is not None and fmt.type in ("json_schema", "json_object"),
        schema=schema,
    )


def _usage(c: Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "total_tokens": c.prompt_tokens + c.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": c.reasoning_tokens, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def _message(choice: Choice) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": choice.text if choice.text or not choice.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if choice.tool_calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": call.arguments}}
            for call in choice.tool_calls
        ]
    return message


def openai_body(c: Completion) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{c.id}",
        "object": "chat.completion",
        "created": c.created,
        "model": c.model,
        "choices": [
            {"index": i, "message": _message(choice), "logprobs": None,
             "finish_reason": choice.finish}
            for i, choice in enumerate(c.choices)
        ],
        "usage": _usage(c),
        "service_tier": "default",
        "system_fingerprint": "fp_fakellm",
    }


def _deltas(choice: Choice) -> Iterator[tuple[dict[str, Any], str | None]]:
    """(delta, finish_reason) of one choice's chunks, in order."""
    calls = choice.tool_calls
    if choice.text or not calls:
        yield {"role": "assistant", "content": "", "refusal": None}, None
        for piece in split_words(choice.text):
            yield {"content": piece}, None
    for k, call in enumerate(calls):
        header = {"index": k, "id": call.id, "type": "function",
                  "function": {"name": call.name, "arguments": ""}}
        if k == 0 and not choice.text:
            yield {"role": "assistant", "content": None, "tool_calls": [header],
                   "refusal": None}, None
        else:
            yield {"tool_calls": [header]}, None
        for piece in json_pieces(call.arguments):
            yield {"tool_calls": [{"index": k, "function": {"arguments": piece}}]}, None
    yield {}, choice.finish


def openai_chunks(c: Completion, *, include_usage: bool) -> Iterator[str]:
    """``data:`` lines of a streamed chat completion, ending with ``data: [DONE]``."""

    def chunk(choices: list[dict[str, Any]], usage: Any = None) -> str:
        body: dict[str, Any] = {
            "id": f"chatcmpl-{c.id}", "object": "chat.completion.chunk", "created": c.created,
            "model": c.model, "service_tier": "default", "system_fingerprint": "fp_fakellm",
            "choices": choices,
        }
        if include_usage:
            body["usage"] = usage
        return f"data: {json.dumps(body)}\n\n"

    streams = [list(_deltas(choice)) for choice in c.choices]
    for step in range(max(len(s) for s in streams)):
        for i, deltas in enumerate(streams):
            if step < len(deltas):
                delta, finish = deltas[step]
                yield chunk([{"index": i, "delta": delta, "logprobs": None,
                              "finish_reason": finish}])
    if include_usage:
        yield chunk([], _usage(c))
    yield "data: [DONE]\n\n"


_ERROR_TYPES = {
    400: ("invalid_request_error", None), 401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None), 404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None), 409: ("conflict", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def openai_error(status: int, message: str, *, param: str | None = None,
                 code: str | None = None) -> dict[str, Any]:
    """The error body of the OpenAI APIs (chat completions and Responses alike)."""
    kind, default_code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else
                                                   "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": param,
                      "code": code if code is not None else default_code}}
