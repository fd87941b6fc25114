"""The canonical (OpenAI chat-completions) shape and the Anthropic Messages shape.

Pure functions, no I/O; called once per captured request, so they stay cheap (one pass, no deep
copies). Requests translate both ways, responses from Anthropic to canonical (captured SSE
streams are reassembled in :mod:`shadowroute.sse`). Anything that is not a usable stream or response raises :class:`ValueError` with a clear message.

Translation covers text, images (base64 and URL), tools, tool calls and tool results. Limitations:

- Blocks or parts with no counterpart (Anthropic ``document``/``thinking``/server-tool blocks,
  OpenAI ``input_audio``/``file`` parts) are passed through unchanged: nothing crashes, but the
  other API may reject them with a 400.
- Dropped: ``cache_control``, ``top_k``, ``thinking``, tool-result ``is_error`` (Anthropic);
  ``n``, ``seed``, ``response_format``, ``logprobs``, penalties, ``logit_bias`` and any other
  OpenAI-only field. ``temperature`` is clamped to Anthropic's 0..1.
- A list-valued Anthropic ``system`` becomes one system message (texts joined by a blank line).
- In responses, Anthropic ``thinking`` blocks are ignored; ``prompt_tokens`` counts cache reads
  and writes too (as OpenAI's does), so cost at the plain input price is an upper bound.
"""

from __future__ import annotations

import json
import time
from typing import Any

__all__ = [
    "anthropic_request_to_openai", "anthropic_response_to_openai", "completion_text",
    "completion_usage", "openai_request_to_anthropic",
]

_FINISH_REASON = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_SYSTEM_JOIN = "\n\n"


# -- requests: Anthropic -> canonical -------------------------------------------------------------
def anthropic_request_to_openai(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request as a canonical chat-completions request."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, list):
        system = _SYSTEM_JOIN.join(_block_text(b) for b in system)
    if system:
        messages.append({"role": "system", "content": system})
    for message in body.get("messages") or ():
        messages.extend(_a2o_message(message))
    out: dict[str, Any] = {"model": body["model"]} if "model" in body else {}
    out["messages"] = messages
    for key in ("max_tokens", "temperature", "top_p", "stream"):
        if key in body:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if body.get("tools"):
        out["tools"] = [_a2o_tool(t) for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(kind) or {
            "type": "function", "function": {"name": choice.get("name")}}
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        out["user"] = user
    return out


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
    arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
    function = {"name": block.get("name"), "arguments": arguments}
    return {"id": block.get("id"), "type": "function", "function": function}


def _a2o_part(block: Any) -> Any:
    if isinstance(block, str):
        return {"type": "text", "text": block}
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "image":
        source = block.get("source") or {}
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
        return tool  # an Anthropic server tool (web search, ...): no canonical counterpart
    function = {"name": tool.get("name"), "description": tool.get("description"),
                "parameters": tool["input_schema"]}
    return {"type": "function", "function": {k: v for k, v in function.items() if v is not None}}


# -- requests: canonical -> Anthropic -------------------------------------------------------------
def openai_request_to_anthropic(
    body: dict[str, Any], *, default_max_tokens: int = 1024
) -> dict[str, Any]:
    """A canonical chat-completions request as an Anthropic Messages request."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in body.get("messages") or ():
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
            blocks.extend(_o2a_tool_call(call) for call in message["tool_calls"])
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
        out["temperature"] = min(max(float(body["temperature"]), 0.0), 1.0)
    for key in ("top_p", "stream"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        out["tools"] = [_o2a_tool(t) for t in body["tools"]]
        choice = _o2a_tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False:
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice:
            out["tool_choice"] = choice
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    return out


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
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        parsed = {"arguments": arguments}  # Anthropic needs an object; keep the text visible
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": parsed}


def _o2a_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        return tool
    function = tool.get("function") or {}
    out = {"name": function.get("name"), "description": function.get("description"),
           "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
    return {k: v for k, v in out.items() if v is not None}


def _o2a_tool_choice(choice: Any) -> dict[str, Any] | None:
    if isinstance(choice, dict):
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
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
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            tool_calls.append(_tool_call(block))
    text = "".join(texts) if texts or not tool_calls else None
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = body.get("usage") or {}
    cache_read = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + (usage.get("cache_creation_input_tokens") or 0)
    prompt += cache_read
    completion = usage.get("output_tokens") or 0
    out_usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}
    if cache_read:
        out_usage["prompt_tokens_details"] = {"cached_tokens": cache_read}
    reason = body.get("stop_reason")
    choice = {"index": 0, "message": message, "logprobs": None,
              "finish_reason": _FINISH_REASON.get(reason, reason)}
    return {"id": body.get("id"), "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"), "choices": [choice], "usage": out_usage}


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
    calls = []
    for call in message["tool_calls"]:
        function = call.get("function") or {}
        arguments = function.get("arguments")
        try:
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            pass
        calls.append({"name": function.get("name"), "arguments": arguments})
    return json.dumps(calls, ensure_ascii=False, separators=(",", ":"))


def completion_usage(response: dict[str, Any]) -> tuple[int, int]:
    """``(prompt_tokens, completion_tokens)`` of a canonical response; ``(0, 0)`` when absent."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def _loads(data: str | bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"malformed JSON in {what}: {exc} (starts {data[:80]!r})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{what} is {type(value).__name__}, expected a JSON object")
    return value


def _error_message(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message") or error.get("code") or "no message"
        return f"{kind}: {message}" if kind else str(message)
    return str(error if error is not None else body)[:300]


def _block_text(block: Any) -> str:
    return block if isinstance(block, str) else str(block.get("text", ""))


def _text_of(content: Any, sep: str) -> str:
    if isinstance(content, list):
        return sep.join(
            _block_text(p) for p in content
            if isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text")
        )
    return "" if content is None else str(content)
