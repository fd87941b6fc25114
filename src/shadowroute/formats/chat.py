"""The canonical shape: OpenAI chat completions, the lingua franca inside shadowroute.

What a stored answer is (:func:`completion_text`) and what it cost in tokens
(:func:`completion_usage`), plus the strict JSON helpers every parser in :mod:`shadowroute.formats`
uses, so that a field of the wrong JSON type is a :class:`ValueError` with a clear message and
never another exception type. The helpers with a leading underscore are private to the package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ANTHROPIC_ONLY", "Answer", "NotShadowable", "chat_request", "completion_text",
    "completion_usage", "parse_answer", "stateful_feature",
]


ANTHROPIC_ONLY = ("thinking", "top_k")
"""Anthropic request settings with no chat-completions counterpart. The canonical request keeps
them under their own names so that an Anthropic candidate gets them; any other API is told
they were not carried (:func:`chat_request`)."""
ANTHROPIC_ONLY_EFFORTS = frozenset({"max"})
"""``reasoning_effort`` levels only Anthropic's ``output_config.effort`` has: kept in the
canonical request for an Anthropic candidate, named and not sent to OpenAI's APIs."""

_CHAT_PARTS = frozenset({"text", "image_url", "input_audio", "file"})
"""Content part types the chat-completions API accepts."""


class NotShadowable(ValueError):
    """A call whose meaning depends on state the provider keeps (a stored conversation, a
    prompt template, a server-side tool): no other model can be given the same request, so it
    is counted and left out rather than mirrored half-way. ``feature`` names what it uses."""

    def __init__(self, feature: str) -> None:
        super().__init__(f"not shadowable: the call uses {feature}, which another model cannot "
                         "be given")
        self.feature = feature


def completion_text(response: dict[str, Any]) -> str | None:
    """The answer of the first choice as shadowroute stores and compares it.

    A message without tool calls is its text. A message with tool calls (alone, or after text
    such as Claude's "Let me look that up.") is rendered as one JSON object,
    ``{"content": <text or null>, "tool_calls": [{"name": ..., "arguments": {...}}]}``, with
    each call's arguments parsed (kept as the raw string when they are not JSON) and call ids
    left out (they differ from model to model): nothing the model said is lost, and scorers
    compare the calls as calls (:func:`parse_answer`). ``None`` when there is no message."""
    try:
        message = response["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if isinstance(content, list):
        content = _text_of(content, "")
    if content is not None and not isinstance(content, str):
        return None
    if not content and isinstance(message.get("refusal"), str):
        content = message["refusal"]  # OpenAI's structured refusal: what the model said
    raw_calls = message.get("tool_calls")
    if not raw_calls:
        return content
    if not isinstance(raw_calls, list):
        return None
    calls = []
    for call in raw_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            return None  # not tool calls anyone could compare
        arguments = function.get("arguments")
        try:
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        except (ValueError, RecursionError):
            pass
        calls.append({"name": function.get("name"), "arguments": arguments})
    try:
        return json.dumps({"content": content or None, "tool_calls": calls},
                          ensure_ascii=False, separators=(",", ":"))
    except RecursionError:  # arguments parsed, but nested too deeply to write back
        return None


@dataclass(frozen=True, slots=True)
class Answer:
    """A stored answer read back: its text and, when the model called tools, the calls."""

    content: str | None
    tool_calls: tuple[dict[str, Any], ...] | None = None
    """``({"name": ..., "arguments": ...}, ...)`` in the model's order; ``None``: no calls."""


def parse_answer(stored: str | None) -> Answer:
    """What :func:`completion_text` stored, read back. Tool calls come back from the object
    rendering, and from the bare array ``[{"name": ..., "arguments": ...}]`` that earlier
    versions stored for a message that only called tools; anything else is text."""
    if not stored or stored[0] not in "[{":
        return Answer(stored)
    try:
        value = json.loads(stored)
    except (ValueError, RecursionError):
        return Answer(stored)
    content: Any = None
    if isinstance(value, dict) and set(value) == {"content", "tool_calls"}:
        content, value = value["content"], value["tool_calls"]
        if content is not None and not isinstance(content, str):
            return Answer(stored)
    elif not isinstance(value, list) or not value:
        return Answer(stored)
    if not isinstance(value, list) or not all(
        isinstance(c, dict) and set(c) == {"name", "arguments"} and isinstance(c["name"], str)
        for c in value
    ):
        return Answer(stored)
    return Answer(content, tuple(value))


def completion_usage(response: dict[str, Any]) -> tuple[int | None, int | None]:
    """``(prompt_tokens, completion_tokens)`` of a canonical response; ``(None, None)`` when
    the response carries no usage (an OpenAI stream without ``stream_options.include_usage``):
    unknown, never zero."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict) or not usage:
        return None, None
    return _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")


def _count(usage: dict[str, Any], key: str) -> int:
    """A token count of ``usage`` (0 when absent); ValueError when it is not a number."""
    value = usage.get(key)
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"usage.{key} is {_brief(value)}, expected a token count") from None


def _loads(data: str | bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"malformed JSON in {what}: {exc} (starts {data[:80]!r})") from exc
    except RecursionError:  # absurdly deep nesting: not a response anyone sends
        raise ValueError(f"malformed JSON in {what}: nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} is {type(value).__name__}, expected a JSON object")
    return value


def _error_message(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message") or error.get("code") or "no message"
        return f"{kind}: {message}" if kind else str(message)
    return str(error if error is not None else body)[:300]


def _obj(value: Any, what: str) -> dict[str, Any]:
    """``value`` when it is a JSON object, ``{}`` when absent (None); else ValueError."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{what} is {_brief(value)}, expected a JSON object")
    return value


def _seq(value: Any, what: str) -> list[Any]:
    """``value`` when it is a JSON array, ``[]`` when absent (None); else ValueError."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{what} is {_brief(value)}, expected a JSON array")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is {_brief(value)}, expected a string")
    return value


def _brief(value: Any) -> str:
    """A wrong value, for an error message: short, and never a repr of a nested container
    (which could be as deep as the recursion limit) or of a 5,000-digit integer."""
    if isinstance(value, dict | list):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return "a huge integer"
    return repr(value)[:40]


def _block_text(block: Any) -> str:
    return block if isinstance(block, str) else str(_obj(block, "a system block").get("text", ""))


def _text_of(content: Any, sep: str) -> str:
    if isinstance(content, list):
        return sep.join(
            _block_text(p) for p in content
            if isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text")
        )
    return "" if content is None else str(content)


def chat_request(body: dict[str, Any], dropped: list[str] | None = None) -> dict[str, Any]:
    """A canonical request as the body an OpenAI chat-completions endpoint accepts: Anthropic's
    own settings and content blocks that endpoint would reject are taken out, and ``n`` is 1
    (a candidate answers once: its other answers would be paid for and thrown away). Each is
    named in ``dropped``."""
    out = dict(body)
    for key in ANTHROPIC_ONLY:
        if out.pop(key, None) is not None:
            _note(dropped, key)
    if out.pop("n", None) not in (None, 1):
        _note(dropped, "n")
    if out.get("reasoning_effort") in ANTHROPIC_ONLY_EFFORTS:
        _note(dropped, f"reasoning_effort {out.pop('reasoning_effort')}")
    messages = []
    for message in _seq(out.get("messages"), "messages"):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            kept = [p for p in content if not isinstance(p, dict) or p.get("type") in _CHAT_PARTS]
            for part in content:
                if isinstance(part, dict) and part.get("type") not in _CHAT_PARTS:
                    _note(dropped, f"{part.get('type')} content")
            message = {**message, "content": kept}
        messages.append(message)
    if "messages" in out:
        out["messages"] = messages
    return out


def _note(dropped: list[str] | None, what: str) -> None:
    """Name a setting a translation could not carry (once)."""
    if dropped is not None and what not in dropped:
        dropped.append(what)


def stateful_feature(api: str, body: dict[str, Any]) -> str | None:
    """The feature that makes a request depend on state its provider keeps (see
    :class:`NotShadowable`), found cheaply on the request path without translating it; ``None``
    for a call any model of the family can be given. Such calls are neither shadowed nor
    routed to a promoted model: no evidence was gathered on them."""
    if api == "responses":
        for key in ("previous_response_id", "conversation", "prompt", "background"):
            if body.get(key):
                return key
        items = body.get("input")
        for item in items if isinstance(items, list) else ():
            kind = item.get("type", "message") if isinstance(item, dict) else "message"
            if kind not in _STATELESS_ITEMS:
                return f"{kind} input item"
        return _server_tool(body, lambda tool: tool.get("type") != "function")
    if api == "anthropic":
        for key in ("mcp_servers", "container"):
            if body.get(key):
                return key
        return _server_tool(body, lambda tool: "input_schema" not in tool)
    return "web_search_options" if body.get("web_search_options") else None


_STATELESS_ITEMS = frozenset({"message", "function_call", "function_call_output", "reasoning"})


def _server_tool(body: dict[str, Any], is_server: Any) -> str | None:
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, dict) and is_server(tool):
            return f"{tool.get('type') or tool.get('name')} tool"
    return None
