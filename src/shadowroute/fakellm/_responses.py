"""The OpenAI Responses API on the fake: request, response object, event stream, errors.

Request: ``input`` (a string or items: ``message`` with ``input_text`` / ``input_image`` /
``output_text`` parts, ``function_call``, ``function_call_output``, ``reasoning`` -- ignored, as
are unknown items), ``instructions`` (a system message first; not carried over from a previous
response), function ``tools``, ``tool_choice``, ``parallel_tool_calls``, ``max_output_tokens``
(>= 16), ``reasoning`` (``effort``, ``summary``), ``text.format`` (json_schema / json_object),
``previous_response_id`` (the stored conversation of that response is prepended; see
:class:`~shadowroute.fakellm._state.FakeState`), ``store``, ``include``.

Response: the object ``openai.types.responses.Response`` validates, with the request's settings
echoed; ``output`` holds a ``reasoning`` item (when the model reasoned), a ``message`` with one
``output_text`` part (when there is text) and ``function_call`` items; ``status`` is
``incomplete`` with ``incomplete_details.reason = "max_output_tokens"`` when the answer was cut.
A stream is ``event:``/``data:`` pairs with increasing ``sequence_number``: ``response.created``,
``response.in_progress``, per item ``response.output_item.added`` ... ``.done`` (with the
content part, text delta, reasoning summary and function-call argument events in between), and
``response.completed`` (or ``response.incomplete``) carrying the whole response and its usage.
Errors use the OpenAI error body (``_openai.openai_error``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, model_validator

from ._wire import (
    Ask,
    Body,
    CallIndex,
    Completion,
    Effort,
    ToolSpec,
    flatten,
    json_pieces,
    split_words,
)

__all__ = ["ResponsesRequest", "Stored", "responses_ask", "responses_body", "responses_events",
           "stored_after"]


class ReasoningBody(Body):
    effort: Effort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class FormatBody(Body):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(None, min_length=1)
    schema_: dict[str, Any] | None = Field(None, alias="schema")

    @model_validator(mode="after")
    def _schema_named(self) -> FormatBody:
        if self.type == "json_schema" and (self.name is None or self.schema_ is None):
            raise ValueError("a json_schema format needs a name and a schema")
        return self


class TextBody(Body):
    format: FormatBody | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponsesTool(Body):
    type: str
    name: str | None = Field(None, min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _named(self) -> ResponsesTool:
        if self.type == "function" and not self.name:
            raise ValueError("a function tool needs a name")
        return self


class ToolChoiceBody(Body):
    type: str
    name: str | None = None
    mode: Literal["auto", "required"] | None = None


class ResponsesRequest(Body):
    model: str
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    stream: bool | None = False
    tools: list[ResponsesTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | ToolChoiceBody | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(None, ge=16)
    reasoning: ReasoningBody | None = None
    text: TextBody | None = None
    previous_response_id: str | None = None
    store: bool | None = True
    include: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None


Stored = tuple[list[dict[str, Any]], dict[str, tuple[str, Any]]]
"""A stored response: its conversation (canonical messages, no instructions) and its calls."""


def _tool_choice(value: str | ToolChoiceBody | None) -> str:
    if not isinstance(value, ToolChoiceBody):
        return value or "auto"
    if value.type == "function":
        return value.name or "required"
    if value.type == "allowed_tools":
        return value.mode or "auto"
    return "required"


def responses_ask(req: ResponsesRequest, previous: Stored | None) -> Ask:
    """The request as an :class:`Ask`; ``previous``: the stored ``previous_response_id``."""
    history, known = previous if previous is not None else ([], {})
    index = CallIndex(known)
    messages: list[dict[str, Any]] = copy.deepcopy(history)  # the stored one stays as it was
    items = [{"role": "user", "content": req.input}] if isinstance(req.input, str) \
        else req.input or []
    for item in items:
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            messages.append({"role": str(item.get("role", "user")),
                             "content": flatten(item.get("content"))})
        elif kind == "function_call":
            call = index.call(item.get("call_id"), str(item.get("name", "")),
                              item.get("arguments", ""))
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(index.result(item.get("call_id"), flatten(item.get("output"))))
    system = [{"role": "system", "content": req.instructions}] if req.instructions else []
    reasoning = req.reasoning or ReasoningBody()
    fmt = req.text.format.model_dump(by_alias=True, exclude_none=True) \
        if req.text and req.text.format else {}
    return Ask(
        model=req.model, messages=system + messages, stream=bool(req.stream),
        limit=req.max_output_tokens,
        tools=[ToolSpec(str(t.name), t.description, t.parameters)
               for t in req.tools or () if t.type == "function"],
        tool_choice=_tool_choice(req.tool_choice),
        parallel_tool_calls=req.parallel_tool_calls is not False,
        effort=reasoning.effort, reasoning_summary=reasoning.summary,
        json_mode=fmt.get("type") in ("json_schema", "json_object"),
        schema=_schema(fmt),
        extra={"request": req, "calls": index.calls},
    )


def _schema(fmt: dict[str, Any]) -> dict[str, Any] | None:
    schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
    return schema if isinstance(schema, dict) else None


def stored_after(ask: Ask, c: Completion) -> Stored:
    """What to store for this response: its conversation so far and the calls it knows."""
    conversation = ask.messages[1:] if ask.extra["request"].instructions else ask.messages
    choice = c.first
    calls = dict(ask.extra["calls"])
    reply: dict[str, Any] = {"role": "assistant", "content": choice.text}
    if choice.tool_calls:
        index = CallIndex(calls)
        reply["tool_calls"] = [index.call(t.id, t.name, t.arguments) for t in choice.tool_calls]
        calls = index.calls
    return [*conversation, reply], calls


def _item_id(prefix: str, c: Completion, k: int) -> str:
    return f"{prefix}_{hashlib.sha256(f'{c.id}:{prefix}:{k}'.encode()).hexdigest()[:32]}"


def _tools_echo(req: ResponsesRequest) -> list[dict[str, Any]]:
    out = []
    for spec in req.tools or ():
        tool = spec.model_dump(exclude_none=True)
        if spec.type == "function":
            tool = {"type": "function", "name": spec.name, "description": spec.description,
                    "parameters": spec.parameters, "strict": tool.get("strict", True)}
        out.append(tool)
    return out


def _items(ask: Ask, c: Completion) -> list[dict[str, Any]]:
    req: ResponsesRequest = ask.extra["request"]
    choice = c.first
    status = "incomplete" if choice.truncated else "completed"
    items: list[dict[str, Any]] = []
    if choice.reasoned:
        reasoning: dict[str, Any] = {
            "id": _item_id("rs", c, 0), "type": "reasoning",
            "summary": [{"type": "summary_text", "text": choice.summary}] if choice.summary else [],
        }
        if "reasoning.encrypted_content" in (req.include or ()):
            reasoning["encrypted_content"] = "gAAAAB" + hashlib.sha256(c.id.encode()).hexdigest()
        items.append(reasoning)
    if choice.text or not (choice.tool_calls or choice.truncated):
        items.append({
            "id": _item_id("msg", c, 0), "type": "message", "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [],
                         "text": choice.text}],
        })
    for k, call in enumerate(choice.tool_calls):
        items.append({"id": _item_id("fc", c, k), "type": "function_call",
                      "status": "completed", "arguments": call.arguments,
                      "call_id": call.id, "name": call.name})
    return items


def responses_body(ask: Ask, c: Completion, *, final: bool = True) -> dict[str, Any]:
    """The Response object; ``final=False``: the in-progress snapshot a stream starts with."""
    req: ResponsesRequest = ask.extra["request"]
    choice = c.first
    status = ("incomplete" if choice.truncated else "completed") if final else "in_progress"
    reasoning = req.reasoning or ReasoningBody()
    fmt = req.text.format.model_dump(by_alias=True, exclude_none=True) \
        if req.text and req.text.format else {"type": "text"}
    return {
        "id": f"resp_{c.id}", "object": "response", "created_at": c.created, "status": status,
        "background": False, "completed_at": c.created if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": req.instructions, "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": None, "model": c.model,
        "output": _items(ask, c) if final else [],
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "previous_response_id": req.previous_response_id, "prompt_cache_key": None,
        "reasoning": {"effort": reasoning.effort, "summary": reasoning.summary},
        "safety_identifier": None, "service_tier": "default", "store": req.store is not False,
        "temperature": req.temperature if req.temperature is not None else 1.0,
        "text": {"format": fmt, "verbosity": (req.text.verbosity if req.text else None) or "medium"},
        "tool_choice": "auto" if req.tool_choice is None else req.tool_choice
        if isinstance(req.tool_choice, str) else req.tool_choice.model_dump(exclude_none=True),
        "tools": _tools_echo(req), "top_logprobs": 0,
        "top_p": req.top_p if req.top_p is not None else 1.0, "truncation": "disabled",
        "usage": {
            "input_tokens": c.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": c.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": c.reasoning_tokens},
            "total_tokens": c.prompt_tokens + c.completion_tokens,
        } if final else None,
        "user": req.user, "metadata": req.metadata or {},
    }


def responses_events(ask: Ask, c: Completion) -> Iterator[str]:
    """The SSE events of a streamed response (no ``[DONE]``: the API does not send one)."""
    seq = 0

    def event(kind: str, **data: Any) -> str:
        nonlocal seq
        line = f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': seq, **data})}\n\n"
        seq += 1
        return line

    start = responses_body(ask, c, final=False)
    yield event("response.created", response=start)
    yield event("response.in_progress", response=start)
    for index, item in enumerate(_items(ask, c)):
        yield from _item_events(event, index, item)
    final = responses_body(ask, c)
    yield event(f"response.{'incomplete' if final['status'] == 'incomplete' else 'completed'}",
                response=final)


def _item_events(event: Any, index: int, item: dict[str, Any]) -> Iterator[str]:
    ids = {"item_id": item["id"], "output_index": index}
    kind = item["type"]
    if kind == "reasoning":
        yield event("response.output_item.added", output_index=index,
                    item={**item, "summary": []})
        for k, part in enumerate(item["summary"]):
            yield event("response.reasoning_summary_part.added", **ids, summary_index=k,
                        part={"type": "summary_text", "text": ""})
            for piece in split_words(part["text"]):
                yield event("response.reasoning_summary_text.delta", **ids, summary_index=k,
                            delta=piece)
            yield event("response.reasoning_summary_text.done", **ids, summary_index=k,
                        text=part["text"])
            yield event("response.reasoning_summary_part.done", **ids, summary_index=k,
                        part=part)
    elif kind == "message":
        yield event("response.output_item.added", output_index=index,
                    item={**item, "status": "in_progress", "content": []})
        part = item["content"][0]
        yield event("response.content_part.added", **ids, content_index=0,
                    part={**part, "text": ""})
        for piece in split_words(part["text"]):
            yield event("response.output_text.delta", **ids, content_index=0, delta=piece,
                        logprobs=[])
        yield event("response.output_text.done", **ids, content_index=0, text=part["text"],
                    logprobs=[])
        yield event("response.content_part.done", **ids, content_index=0, part=part)
    else:
        yield event("response.output_item.added", output_index=index,
                    item={**item, "status": "in_progress", "arguments": ""})
        for piece in json_pieces(item["arguments"]):
            yield event("response.function_call_arguments.delta", **ids, delta=piece)
        yield event("response.function_call_arguments.done", **ids,
                    arguments=item["arguments"])
    yield event("response.output_item.done", output_index=index, item=item)
