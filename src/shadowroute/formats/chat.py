"""The canonical shape: OpenAI chat completions, the lingua franca inside shadowroute.

What a stored answer is (:func:`completion_text`) and what it cost in tokens
(:func:`completion_usage`), plus the strict JSON helpers every parser in :mod:`shadowroute.formats`
uses, so that a field of the wrong JSON type is a :class:`ValueError` with a clear message and
never another exception type. The helpers with a leading underscore are private to the package.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["completion_text", "completion_usage"]


def completion_text(response: dict[str, Any]) -> str | None:
    """The first choice's text. A message carrying only tool calls is rendered as a compact JSON
    array ``[{"name": ..., "arguments": {...}}]`` so tool-calling tasks can still be compared."""
    try:
        message = response["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if isinstance(content, list):
        content = _text_of(content, "")
    if content or not message.get("tool_calls"):
        return content if isinstance(content, str) else None
    if not isinstance(message["tool_calls"], list):
        return None
    calls = []
    for call in message["tool_calls"]:
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
        return json.dumps(calls, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:  # arguments parsed, but nested too deeply to write back
        return None


def completion_usage(response: dict[str, Any]) -> tuple[int, int]:
    """``(prompt_tokens, completion_tokens)`` of a canonical response; ``(0, 0)`` when absent."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
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

