"""Wire formats of the two APIs the fake server speaks: request bodies, responses, SSE, errors."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "AnthropicRequest",
    "Completion",
    "OpenAIRequest",
    "anthropic_body",
    "anthropic_error",
    "anthropic_events",
    "describe_validation_error",
    "normalize_anthropic",
    "normalize_openai",
    "openai_body",
    "openai_chunks",
    "openai_error",
    "split_words",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class OpenAIMessage(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(_Body):
    include_usage: bool = False


class OpenAIRequest(_Body):
    model: str
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)


class AnthropicMessage(_Body):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class AnthropicRequest(_Body):
    model: str
    max_tokens: int = Field(ge=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    stream: bool | None = False


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _flatten(content: str | list[dict[str, Any]] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(
        str(part.get("text", "")) for part in content if part.get("type") in ("text", "input_text")
    )


def normalize_openai(req: OpenAIRequest) -> list[dict[str, str]]:
    """OpenAI-style messages with plain string contents (the input of the simulators)."""
    return [{"role": m.role, "content": _flatten(m.content)} for m in req.messages]


def normalize_anthropic(req: AnthropicRequest) -> list[dict[str, str]]:
    """The same canonical form as :func:`normalize_openai`: the system prompt comes first."""
    messages = [{"role": "system", "content": _flatten(req.system)}] if req.system else []
    return messages + [{"role": m.role, "content": _flatten(m.content)} for m in req.messages]


class Completion(BaseModel):
    """What the simulated model produced for one call, API independent."""

    id: str
    model: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool = False


def split_words(text: str) -> list[str]:
    """Stream pieces: each word with its trailing whitespace (joined, they give ``text``)."""
    pieces = re.findall(r"\S+\s*", text)
    lead = text[: len(text) - len(text.lstrip())]
    if pieces and lead:
        pieces[0] = lead + pieces[0]
    return pieces or ([text] if text else [])


# --- OpenAI ----------------------------------------------------------------------------------
def _usage_openai(c: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "total_tokens": c.prompt_tokens + c.completion_tokens,
    }


def openai_body(c: Completion) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{c.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": c.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": c.text, "refusal": None},
                "logprobs": None,
                "finish_reason": "length" if c.truncated else "stop",
            }
        ],
        "usage": _usage_openai(c),
        "system_fingerprint": "fp_fakellm",
    }


def openai_chunks(c: Completion, *, include_usage: bool) -> Iterator[str]:
    """``data:`` lines of a streamed chat completion, ending with ``data: [DONE]``."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None) -> str:
        body: dict[str, Any] = {
            "id": f"chatcmpl-{c.id}", "object": "chat.completion.chunk", "created": created,
            "model": c.model, "system_fingerprint": "fp_fakellm",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            body["usage"] = None
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, None)
    for piece in split_words(c.text):
        yield chunk({"content": piece}, None)
    yield chunk({}, "length" if c.truncated else "stop")
    if include_usage:
        body = {
            "id": f"chatcmpl-{c.id}", "object": "chat.completion.chunk", "created": created,
            "model": c.model, "system_fingerprint": "fp_fakellm", "choices": [],
            "usage": _usage_openai(c),
        }
        yield f"data: {json.dumps(body)}\n\n"
    yield "data: [DONE]\n\n"


_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None), 401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None), 404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None), 409: ("conflict", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def openai_error(status: int, message: str, *, param: str | None = None) -> dict[str, Any]:
    kind, code = _OPENAI_ERROR_TYPES.get(status, ("server_error" if status >= 500 else
                                                  "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# --- Anthropic -------------------------------------------------------------------------------
def anthropic_body(c: Completion) -> dict[str, Any]:
    return {
        "id": f"msg_{c.id}",
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": [{"type": "text", "text": c.text}],
        "stop_reason": "max_tokens" if c.truncated else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": c.prompt_tokens, "output_tokens": c.completion_tokens},
    }


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def anthropic_events(c: Completion) -> Iterator[str]:
    """The SSE events of a streamed Messages API response."""
    message = anthropic_body(c) | {"content": [], "stop_reason": None}
    message["usage"] = {"input_tokens": c.prompt_tokens, "output_tokens": 1}
    yield _event("message_start", {"type": "message_start", "message": message})
    yield _event("content_block_start", {
        "type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""},
    })
    yield _event("ping", {"type": "ping"})
    for piece in split_words(c.text):
        yield _event("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": piece},
        })
    yield _event("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield _event("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens" if c.truncated else "end_turn",
                  "stop_sequence": None},
        "usage": {"output_tokens": c.completion_tokens},
    })
    yield _event("message_stop", {"type": "message_stop"})


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 529: "overloaded_error",
}


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else
                                      "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}
