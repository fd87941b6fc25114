"""The OpenAI Responses API (``POST /v1/responses``) to and from the canonical shape.

Requests: ``instructions`` and ``input`` (a string, or items: messages with ``input_text`` /
``input_image`` / ``input_file`` / ``output_text`` parts, ``function_call`` and
``function_call_output`` items) become canonical messages; function ``tools``, ``tool_choice``,
``max_output_tokens``, ``reasoning.effort`` (-> ``reasoning_effort``), ``text.format``
(-> ``response_format``) and ``text.verbosity`` travel; ``reasoning`` items of earlier turns are
the previous model's own (often encrypted) thoughts and are left out, as the chat API has no
place for them. Responses: ``output`` items become one canonical message (the text of its
``message`` items, ``function_call`` items as tool calls), ``usage`` becomes canonical usage
with its reasoning and cached tokens.

Requests that depend on state kept by the provider cannot be shadowed faithfully: another
model would answer without the context or the tools the primary had. They raise
:class:`NotShadowable` naming the feature: ``previous_response_id``, ``conversation``,
``prompt`` (a stored template), ``background``, ``item_reference`` inputs, and built-in
(server-side) tools such as web or file search.
"""

from __future__ import annotations

import time
from typing import Any

from .chat import (
    ANTHROPIC_ONLY,
    ANTHROPIC_ONLY_EFFORTS,
    NotShadowable,
    _brief,
    _count,
    _error_message,
    _note,
    _obj,
    _seq,
    _str,
)

__all__ = [
    "openai_request_to_responses",
    "responses_request_to_openai",
    "responses_response_to_openai",
]

_STATEFUL = ("previous_response_id", "conversation", "prompt")
"""Request fields whose meaning lives on the provider's side."""
_CARRIED = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
    "max_output_tokens", "temperature", "top_p", "reasoning", "text", "stream", "metadata",
    "user", "safety_identifier", "store", "include", "stream_options", "background",
    "previous_response_id", "conversation", "prompt", "top_logprobs",
})
"""Fields handled below; any other field of a Responses request is listed as not carried."""
_HARMLESS = frozenset({"store", "include", "stream_options", "metadata", "safety_identifier"})
"""Fields that do not change the answer (storage, what the response echoes back)."""
_ROLES = frozenset({"user", "assistant", "system", "developer"})


# -- requests: Responses -> canonical -------------------------------------------------------------
def responses_request_to_openai(
    body: dict[str, Any], dropped: list[str] | None = None
) -> dict[str, Any]:
    """A Responses API request as a canonical chat-completions request.

    Raises :class:`NotShadowable` for a request that depends on provider-side state, and
    ``ValueError`` for one that is not a usable request. Settings with no canonical counterpart
    are named in ``dropped`` (when given)."""
    body = _obj(body, "a Responses request")
    for key in _STATEFUL:
        if body.get(key):
            raise NotShadowable(key)
    if body.get("background"):
        raise NotShadowable("background")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions:
        messages.append({"role": "system", "content": _str(instructions, "instructions")})
    source = body.get("input")
    if isinstance(source, str):
        messages.append({"role": "user", "content": source})
    else:
        for item in _seq(source, "input"):
            _input_item(_obj(item, "an input item"), messages, dropped)
    if not messages:
        raise ValueError("Responses request has no input")
    out: dict[str, Any] = {"model": body["model"]} if "model" in body else {}
    out["messages"] = messages
    if body.get("max_output_tokens") is not None:
        out["max_completion_tokens"] = body["max_output_tokens"]
    for key in ("temperature", "top_p", "parallel_tool_calls", "stream", "user", "top_logprobs"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("tools"):
        out["tools"] = [_tool_to_chat(_obj(t, "a tool")) for t in _seq(body["tools"], "tools")]
    choice = body.get("tool_choice")
    if choice is not None:
        out["tool_choice"] = _tool_choice_to_chat(choice, dropped)
    reasoning = _obj(body.get("reasoning"), "reasoning")
    if reasoning.get("effort"):
        out["reasoning_effort"] = _str(reasoning["effort"], "reasoning.effort")
    if reasoning.get("summary") or reasoning.get("generate_summary"):
        _note(dropped, "reasoning.summary")
    text = _obj(body.get("text"), "text")
    form = _obj(text.get("format"), "text.format")
    if form.get("type") == "json_schema":
        schema = {k: form[k] for k in ("name", "description", "schema", "strict") if k in form}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif form.get("type") == "json_object":
        out["response_format"] = {"type": "json_object"}
    if text.get("verbosity"):
        out["verbosity"] = text["verbosity"]
    for key in body:
        if key not in _CARRIED and body[key] is not None:
            _note(dropped, key)
    return out


def _input_item(item: dict[str, Any], messages: list[dict[str, Any]],
                dropped: list[str] | None) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in _ROLES:
            raise ValueError(f"an input message has role {_brief(role)}")
        content = item.get("content")
        if isinstance(content, list):
            content = [_part_to_chat(_obj(p, "a content part"), dropped) for p in content]
            if all(p.get("type") == "text" for p in content) and role != "user":
                content = "".join(p["text"] for p in content)
        messages.append({"role": role, "content": content})
    elif kind == "function_call":
        function = {"name": _str(item.get("name"), "function_call name"),
                    "arguments": _str(item.get("arguments", ""), "function_call arguments")}
        call = {"id": item.get("call_id"), "type": "function", "function": function}
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)  # text, then its calls: one turn
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        if isinstance(output, list):
            parts = [_part_to_chat(_obj(p, "a content part"), dropped) for p in output]
            output = ("".join(p["text"] for p in parts)
                      if all(p.get("type") == "text" for p in parts) else parts)
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                         "content": "" if output is None else output})
    elif kind == "reasoning":
        return  # the earlier model's own thoughts: no place for them in the chat API
    elif kind == "item_reference":
        raise NotShadowable("item_reference")
    else:
        raise NotShadowable(f"{kind} input item")  # a built-in tool's call or its output


def _part_to_chat(part: dict[str, Any], dropped: list[str] | None) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _str(part.get("text", ""), f"{kind} text")}
    if kind == "refusal":
        return {"type": "text", "text": _str(part.get("refusal", ""), "refusal")}
    if kind == "input_image":
        if not part.get("image_url"):
            raise NotShadowable("input_image by file_id")
        image = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if part.get("file_id") and not part.get("file_data"):
            raise NotShadowable("input_file by file_id")
        file = {k: part[k] for k in ("file_data", "filename", "file_id") if part.get(k)}
        return {"type": "file", "file": file}
    _note(dropped, f"{kind} content")
    return part


def _tool_to_chat(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise NotShadowable(f"{tool.get('type')} tool")  # web/file search, MCP, computer, ...
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": "function", "function": function}


def _tool_choice_to_chat(choice: Any, dropped: list[str] | None) -> Any:
    if isinstance(choice, str):
        return choice
    choice = _obj(choice, "tool_choice")
    if choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    _note(dropped, f"tool_choice {choice.get('type')}")
    return "auto"


# -- requests: canonical -> Responses -------------------------------------------------------------
def openai_request_to_responses(
    body: dict[str, Any], dropped: list[str] | None = None
) -> dict[str, Any]:
    """A canonical chat-completions request as a Responses API request (stateless:
    ``store: false``, the whole conversation in ``input``)."""
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    for message in _seq(body.get("messages"), "messages"):
        message = _obj(message, "a message")
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer") and not items:
            instructions.append(_plain(content))
        elif role == "tool":
            output = content if isinstance(content, str) else _plain(content)
            items.append({"type": "function_call_output", "call_id": message.get("tool_call_id"),
                          "output": output})
        else:
            if content:
                items.append({"type": "message", "role": role,
                              "content": _parts_to_responses(content, role, dropped)})
            for call in _seq(message.get("tool_calls"), "tool_calls"):
                function = _obj(_obj(call, "a tool call").get("function"), "a tool call function")
                items.append({"type": "function_call", "call_id": call.get("id"),
                              "name": function.get("name"),
                              "arguments": function.get("arguments") or "{}"})
    out: dict[str, Any] = {"model": body["model"]} if "model" in body else {}
    if instructions:
        out["instructions"] = "\n\n".join(instructions)
    out["input"] = items
    out["store"] = False
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        out["max_output_tokens"] = max_tokens
    for key in ("temperature", "top_p", "parallel_tool_calls", "stream", "user", "top_logprobs"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("tools"):
        out["tools"] = [_tool_to_responses(_obj(t, "a tool"), dropped)
                        for t in _seq(body["tools"], "tools")]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        function = _obj(choice.get("function"), "tool_choice function")
        out["tool_choice"] = {"type": "function", "name": function.get("name")}
    elif choice is not None:
        out["tool_choice"] = choice
    if body.get("reasoning_effort") in ANTHROPIC_ONLY_EFFORTS:
        _note(dropped, f"reasoning_effort {body['reasoning_effort']}")
    elif body.get("reasoning_effort"):
        out["reasoning"] = {"effort": body["reasoning_effort"]}
    text: dict[str, Any] = {}
    form = _obj(body.get("response_format"), "response_format")
    if form.get("type") == "json_schema":
        schema = _obj(form.get("json_schema"), "response_format.json_schema")
        text["format"] = {"type": "json_schema", **schema}
    elif form.get("type") == "json_object":
        text["format"] = {"type": "json_object"}
    if body.get("verbosity"):
        text["verbosity"] = body["verbosity"]
    if text:
        out["text"] = text
    for key in ("seed", "logprobs", "logit_bias", "presence_penalty", "frequency_penalty",
                "stop", "modalities", "audio", "prediction", "web_search_options",
                *ANTHROPIC_ONLY):
        if body.get(key) is not None:
            _note(dropped, key)
    if body.get("n") not in (None, 1):
        _note(dropped, "n")
    return out


def _plain(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


def _parts_to_responses(content: Any, role: str, dropped: list[str] | None) -> Any:
    text_type = "output_text" if role == "assistant" else "input_text"
    if not isinstance(content, list):
        return [{"type": text_type, "text": str(content)}]
    parts: list[dict[str, Any]] = []
    for part in content:
        part = _obj(part, "a content part")
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": text_type, "text": part.get("text", "")})
        elif kind == "image_url":
            image = _obj(part.get("image_url"), "image_url")
            parts.append({"type": "input_image", "image_url": image.get("url"),
                          "detail": image.get("detail", "auto")})
        elif kind == "file":
            file = _obj(part.get("file"), "file")
            parts.append({"type": "input_file", **file})
        else:
            _note(dropped, f"{kind} content")
    return parts


def _tool_to_responses(tool: dict[str, Any], dropped: list[str] | None) -> dict[str, Any]:
    if tool.get("type") != "function":
        _note(dropped, f"{tool.get('type')} tool")
        return tool
    function = _obj(tool.get("function"), "a tool's function")
    out = {"type": "function", **{k: function[k] for k in ("name", "description", "parameters",
                                                          "strict") if k in function}}
    return out


# -- responses ------------------------------------------------------------------------------------
def responses_response_to_openai(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses API response object as a canonical ``chat.completion``; ValueError when it
    is an error or not a response."""
    if not isinstance(body, dict) or body.get("error") or body.get("status") == "failed":
        raise ValueError(f"Responses API error: {_error_message(body)}")
    if body.get("object") not in (None, "response"):
        raise ValueError(f"not a Responses API response (object {_brief(body.get('object'))})")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    refused = False
    for item in _seq(body.get("output"), "output"):
        item = _obj(item, "an output item")
        kind = item.get("type")
        if kind == "message":
            for part in _seq(item.get("content"), "message content"):
                part = _obj(part, "an output content part")
                if part.get("type") == "output_text":
                    texts.append(_str(part.get("text", ""), "output_text text"))
                elif part.get("type") == "refusal":
                    refused = True
                    texts.append(_str(part.get("refusal", ""), "refusal"))
        elif kind == "function_call":
            calls.append({"id": item.get("call_id"), "type": "function",
                          "function": {"name": _str(item.get("name"), "function_call name"),
                                       "arguments": _str(item.get("arguments", ""),
                                                         "function_call arguments")}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    status = body.get("status")
    reason = _obj(body.get("incomplete_details"), "incomplete_details").get("reason")
    if status == "incomplete":
        finish = "length" if reason == "max_output_tokens" else "content_filter"
    elif refused:
        finish = "content_filter"
    else:
        finish = "tool_calls" if calls else "stop"
    usage = _obj(body.get("usage"), "usage")
    out_usage: dict[str, Any] | None = None
    if usage:
        prompt = _count(usage, "input_tokens")
        completion = _count(usage, "output_tokens")
        out_usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}
        cached = _obj(usage.get("input_tokens_details"), "input_tokens_details")
        if cached.get("cached_tokens"):
            out_usage["prompt_tokens_details"] = {"cached_tokens": cached["cached_tokens"]}
        reasoning = _obj(usage.get("output_tokens_details"), "output_tokens_details")
        if reasoning.get("reasoning_tokens"):
            out_usage["completion_tokens_details"] = {
                "reasoning_tokens": reasoning["reasoning_tokens"]}
    created = body.get("created_at")
    return {"id": body.get("id"), "object": "chat.completion",
            "created": int(created) if isinstance(created, int | float) else int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": out_usage}

