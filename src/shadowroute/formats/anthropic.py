"""Translation between the canonical (OpenAI chat-completions) shape and Anthropic Messages.

Pure functions, no I/O; called once per captured request, so they stay cheap (one pass, no deep
copies). Requests translate both ways, responses from Anthropic to canonical (captured SSE
streams are reassembled in :mod:`shadowroute.formats.sse`). Anything that is not a usable
request, stream or response -- a field of the wrong JSON type included -- raises
:class:`ValueError` with a clear message, never another exception type.

Translation covers text, images (base64 and URL), tools, tool calls and tool results, and the
settings that have a documented counterpart: ``stop``/``stop_sequences``, ``tool_choice``,
``reasoning_effort``/``output_config.effort``, ``response_format`` (JSON schema) /
``output_config.format``. Anthropic's ``thinking`` and ``top_k`` have no OpenAI counterpart:
the canonical request keeps them under the same names (see :data:`.chat.ANTHROPIC_ONLY`) so an
Anthropic candidate gets them, and an OpenAI one is told they were not carried. What a target
cannot carry is named in the ``dropped`` list the caller passes (``n``, ``seed``,
``logprobs``, penalties, ``json_object``, ``temperature`` above 1 (clamped), ...), so a
candidate is never judged on a request it did not really get. Requests that use Anthropic's
server-side tools (web search, code execution, MCP servers) raise :class:`.chat.NotShadowable`.

- A list-valued Anthropic ``system`` becomes one system message (texts joined by a blank line).
- In responses, Anthropic ``thinking`` blocks are not part of the answer; ``prompt_tokens``
  counts cache reads and writes too (as OpenAI's does), so cost at the plain input price is an
  upper bound.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .chat import (
    ANTHROPIC_ONLY,
    NotShadowable,
    _block_text,
    _brief,
    _count,
    _error_message,
    _note,
    _obj,
    _seq,
    _str,
    _text_of,
)

__all__ = [
    "anthropic_request_to_openai", "anthropic_response_to_openai", "openai_request_to_anthropic",
]

_FINISH_REASON = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_SYSTEM_JOIN = "\n\n"


# -- requests: Anthropic -> canonical -------------------------------------------------------------
def anthropic_request_to_openai(
    body: dict[str, Any], dropped: list[str] | None = None
) -> dict[str, Any]:
    """An Anthropic Messages request as a canonical chat-completions request (settings with no
    canonical place are named in ``dropped``)."""
    for key in ("mcp_servers", "container"):
        if body.get(key):
            raise NotShadowable(key)
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, list):
        system = _SYSTEM_JOIN.join(_block_text(b) for b in system)
    if system:
        messages.append({"role": "system", "content": system})
    for message in _seq(body.get("messages"), "messages"):
        messages.extend(_a2o_message(_obj(message, "a message")))
    out: dict[str, Any] = {"model": body["model"]} if "model" in body else {}
    out["messages"] = messages
    for key in ("max_tokens", "temperature", "top_p", "stream", *ANTHROPIC_ONLY):
        if key in body:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(_seq(body["stop_sequences"], "stop_sequences"))
    if body.get("tools"):
        out["tools"] = [_a2o_tool(_obj(t, "a tool")) for t in _seq(body["tools"], "tools")]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        named = {"auto": "auto", "any": "required", "none": "none"}
        out["tool_choice"] = (named.get(kind) if isinstance(kind, str) else None) or {
            "type": "function", "function": {"name": choice.get("name")}}
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    user = _obj(body.get("metadata"), "metadata").get("user_id")
    if user:
        out["user"] = user
    config = _obj(body.get("output_config"), "output_config")
    if config.get("effort"):
        out["reasoning_effort"] = _str(config["effort"], "output_config.effort")
    form = _obj(config.get("format"), "output_config.format")
    if form.get("type") == "json_schema":
        out["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": _obj(form.get("schema"), "output_config.format.schema"),
            "strict": True}}
    for key in body:
        if key not in _A2O_HANDLED and body[key] is not None:
            _note(dropped, key)
    return out


_A2O_HANDLED = frozenset({
    "model", "system", "messages", "max_tokens", "temperature", "top_p", "stream",
    *ANTHROPIC_ONLY, "stop_sequences", "tools", "tool_choice", "metadata", "output_config",
    "service_tier", "mcp_servers", "container",
})
"""Request fields translated above (``service_tier`` changes the price, not the answer)."""


def _a2o_message(message: dict[str, Any]) -> list[dict[str, Any]]:
    role, content = message.get("role"), message.get("content")
    if not isinstance(content, list):
        return [{"role": role, "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[Any] = []
    tool_calls: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            result = _a2o_tool_content(block.get("content"))
            out.append({"role": "tool", "tool_call_id": block.get("tool_use_id"),
                        "content": result})
        elif kind == "tool_use":
            tool_calls.append(_tool_call(block))
        else:
            parts.append(_a2o_part(block))
    if tool_calls:
        out.append({"role": role, "content": parts or None, "tool_calls": tool_calls})
    elif parts or not out:
        out.append({"role": role, "content": parts})
    return out


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    try:
        arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
    except RecursionError:
        raise ValueError("a tool_use input is nested too deeply") from None
    function = {"name": block.get("name"), "arguments": arguments}
    return {"id": block.get("id"), "type": "function", "function": function}


def _a2o_part(block: Any) -> Any:
    if isinstance(block, str):
        return {"type": "text", "text": block}
    block = _obj(block, "a content block")
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "image":
        source = _obj(block.get("source"), "image source")
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
            return {"type": "image_url", "image_url": {"url": url}}
        if source.get("type") == "url":
            return {"type": "image_url", "image_url": {"url": source.get("url")}}
    return block  # no canonical counterpart: kept as is (see module docstring)


def _a2o_tool_content(content: Any) -> Any:
    if not isinstance(content, list):
        return "" if content is None else content
    if all(isinstance(b, dict) and b.get("type") == "text" for b in content):
        return "\n".join(b.get("text", "") for b in content)
    return [_a2o_part(b) for b in content]


def _a2o_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if "input_schema" not in tool:
        raise NotShadowable(f"{tool.get('type') or tool.get('name')} server tool")
    function = {"name": tool.get("name"), "description": tool.get("description"),
                "parameters": tool["input_schema"]}
    return {"type": "function", "function": {k: v for k, v in function.items() if v is not None}}


# -- requests: canonical -> Anthropic -------------------------------------------------------------
def openai_request_to_anthropic(
    body: dict[str, Any], *, default_max_tokens: int = 1024, dropped: list[str] | None = None
) -> dict[str, Any]:
    """A canonical chat-completions request as an Anthropic Messages request (what Anthropic
    has no place for is named in ``dropped``)."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in _seq(body.get("messages"), "messages"):
        message = _obj(message, "a message")
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            system.append(_text_of(content, _SYSTEM_JOIN))
        elif role == "tool":
            result = _o2a_blocks(content) if isinstance(content, list) else content or ""
            call_id = message.get("tool_call_id")
            block = {"type": "tool_result", "tool_use_id": call_id, "content": result}
            _append_user(messages, [block])
        elif role == "assistant" and message.get("tool_calls"):
            blocks = _o2a_blocks(content)
            calls = _seq(message["tool_calls"], "tool_calls")
            blocks.extend(_o2a_tool_call(_obj(call, "a tool call")) for call in calls)
            messages.append({"role": "assistant", "content": blocks})
        elif role == "user" and messages and _has_tool_result(messages[-1]):
            _append_user(messages, _o2a_blocks(content))
        else:
            converted = _o2a_blocks(content) if isinstance(content, list) else content or ""
            messages.append({"role": role, "content": converted})
    out: dict[str, Any] = {"model": body["model"]} if "model" in body else {}
    if system:
        out["system"] = _SYSTEM_JOIN.join(system)
    out["messages"] = messages
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
    out["max_tokens"] = max_tokens or default_max_tokens
    if body.get("temperature") is not None:
        try:
            temperature = float(body["temperature"])
        except (TypeError, ValueError, OverflowError):
            message = f"temperature is {_brief(body['temperature'])}, expected a number"
            raise ValueError(message) from None
        out["temperature"] = min(max(temperature, 0.0), 1.0)
        if temperature > 1.0:
            _note(dropped, "temperature above 1 (clamped to 1)")
    for key in ("top_p", "stream", *ANTHROPIC_ONLY):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(_seq(stop, "stop"))
    if body.get("tools"):
        out["tools"] = [_o2a_tool(_obj(t, "a tool")) for t in _seq(body["tools"], "tools")]
        choice = _o2a_tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False:
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice:
            out["tool_choice"] = choice
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    config: dict[str, Any] = {}
    effort = body.get("reasoning_effort")
    if effort in _EFFORTS:
        config["effort"] = effort
    elif effort is not None:
        _note(dropped, f"reasoning_effort {effort}")
    form = _obj(body.get("response_format"), "response_format")
    if form.get("type") == "json_schema":
        schema = _obj(_obj(form.get("json_schema"), "response_format.json_schema").get("schema"),
                      "response_format.json_schema.schema")
        config["format"] = {"type": "json_schema", "schema": schema}
    elif form.get("type") not in (None, "text"):
        _note(dropped, f"response_format {form.get('type')}")
    if config:
        out["output_config"] = config
    if body.get("n") not in (None, 1):
        _note(dropped, "n")
    for key in body:
        if key not in _O2A_HANDLED and body[key] is not None:
            _note(dropped, key)
    return out


_EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})
"""``output_config.effort`` values (``reasoning_effort`` ``minimal``/``none`` have none)."""
_O2A_HANDLED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "stream", "stream_options", *ANTHROPIC_ONLY, "stop", "tools", "tool_choice",
    "parallel_tool_calls", "user", "reasoning_effort", "response_format", "n", "store",
    "metadata", "service_tier",
})
"""Canonical fields translated above, or that do not change the answer (``store``,
``metadata``, ``service_tier``)."""


def _o2a_blocks(content: Any) -> list[Any]:
    if not isinstance(content, list):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[Any] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if isinstance(part, str):
            blocks.append({"type": "text", "text": part})
        elif kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, dict) else str(image or "")
            url = _str(url, "image_url url")
            if url.startswith("data:") and ";base64," in url:
                media_type, _, data = url[5:].partition(";base64,")
                source = {"type": "base64", "media_type": media_type, "data": data}
            else:
                source = {"type": "url", "url": url}
            blocks.append({"type": "image", "source": source})
        else:
            blocks.append(part)  # no Anthropic counterpart: kept as is (see module docstring)
    return blocks


def _o2a_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    function = _obj(call.get("function"), "a tool call's function")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        parsed = {"arguments": arguments}  # Anthropic needs an object; keep the text visible
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": parsed}


def _o2a_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        return tool
    function = _obj(tool.get("function"), "a tool's function")
    out = {"name": function.get("name"), "description": function.get("description"),
           "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
    return {k: v for k, v in out.items() if v is not None}


def _o2a_tool_choice(choice: Any) -> dict[str, Any] | None:
    if isinstance(choice, dict):
        function = _obj(choice.get("function"), "tool_choice function")
        return {"type": "tool", "name": function.get("name")}
    if choice and not isinstance(choice, str):
        raise ValueError(f"tool_choice is {_brief(choice)}, expected a string or an object")
    return {"type": {"required": "any"}.get(choice, choice)} if choice else None


def _has_tool_result(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return message.get("role") == "user" and isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def _append_user(messages: list[dict[str, Any]], blocks: list[Any]) -> None:
    """Tool results (and the user text after them) form one user turn, as Anthropic expects."""
    if messages and _has_tool_result(messages[-1]):
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": "user", "content": blocks})


# -- responses ------------------------------------------------------------------------------------
def anthropic_response_to_openai(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages response as a canonical ``chat.completion``; ValueError if not one."""
    if not isinstance(body, dict) or body.get("type") == "error" or "error" in body:
        raise ValueError(f"Anthropic error response: {_error_message(body)}")
    content = body.get("content")
    if not isinstance(content, list):
        raise ValueError("Anthropic response has no 'content' list")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(_str(block.get("text") or "", "a text block's text"))
        elif block.get("type") == "tool_use":
            tool_calls.append(_tool_call(block))
    text = "".join(texts) if texts or not tool_calls else None
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = _obj(body.get("usage"), "usage")
    out_usage: dict[str, Any] | None = None  # no usage reported: unknown, not zero
    if usage:
        cache_read = _count(usage, "cache_read_input_tokens")
        prompt = _count(usage, "input_tokens") + _count(usage, "cache_creation_input_tokens")
        prompt += cache_read
        completion = _count(usage, "output_tokens")
        out_usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}
        if cache_read:
            out_usage["prompt_tokens_details"] = {"cached_tokens": cache_read}
    reason = body.get("stop_reason")
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"stop_reason is {_brief(reason)}, expected a string")
    choice = {"index": 0, "message": message, "logprobs": None,
              "finish_reason": _FINISH_REASON.get(reason, reason)}
    return {"id": body.get("id"), "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"), "choices": [choice], "usage": out_usage}






















