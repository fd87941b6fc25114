"""What the three wire APIs share: the parsed request, the answer, and canonical messages.

Each API module (``_openai.py``, ``_anthropic.py``, ``_responses.py``) validates its request
body into an :class:`Ask` -- canonical messages plus the settings the simulation needs -- and
renders a :class:`Completion` in its own shape. Canonical messages are OpenAI-style with string
contents (the input of the simulators); a plain request gives exactly ``{"role", "content"}``
per message, so its answer does not depend on the API it came through. Tool traffic adds keys
without ids (ids differ per API and per call): an assistant message may carry ``tool_calls``
(``[{"name", "arguments"}]``) and a ``tool`` message the ``name`` and ``arguments`` of the call
it answers (:class:`CallIndex` resolves ids to calls).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "Api",
    "Ask",
    "Body",
    "CallIndex",
    "Choice",
    "Completion",
    "Effort",
    "ThinkingSpec",
    "ToolCallOut",
    "ToolSpec",
    "arguments_value",
    "describe_validation_error",
    "flatten",
    "json_pieces",
    "split_words",
    "tool_messages_text",
]

Api = Literal["openai", "anthropic", "responses"]
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
"""The reasoning efforts the OpenAI APIs accept (Anthropic's ``output_config.effort`` also has
``max``; an OpenAI endpoint answers it with a 400, and so does this server)."""


class Body(BaseModel):
    """Base of the request models: unknown fields are accepted (and ignored), like the APIs'."""

    model_config = ConfigDict(extra="allow")


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


_TEXT_PARTS = ("text", "input_text", "output_text")


def flatten(content: Any) -> str:
    """The text of a message content: a string, or the text parts of a list joined by newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content
                         if isinstance(part, dict) and part.get("type") in _TEXT_PARTS)
    return str(content)


def arguments_value(arguments: Any) -> Any:
    """Tool-call arguments as a value: JSON text parsed (kept as text when it is not JSON)."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


class CallIndex:
    """Tool calls seen so far in a conversation, by id, to resolve the results that answer them."""

    def __init__(self, known: Mapping[str, tuple[str, Any]] | None = None) -> None:
        self.calls: dict[str, tuple[str, Any]] = dict(known or {})

    def call(self, call_id: Any, name: str, arguments: Any) -> dict[str, Any]:
        """Record a call; returns its canonical form ``{"name", "arguments"}``."""
        value = arguments_value(arguments)
        if call_id:
            self.calls[str(call_id)] = (name, value)
        return {"name": name, "arguments": value}

    def result(self, call_id: Any, content: str) -> dict[str, Any]:
        """The canonical ``tool`` message of a result (with its call's name and arguments)."""
        message: dict[str, Any] = {"role": "tool", "content": content}
        if call_id and str(call_id) in self.calls:
            name, arguments = self.calls[str(call_id)]
            message |= {"name": name, "arguments": arguments}
        return message


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A declared function tool."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ThinkingSpec:
    """Anthropic ``thinking``: ``budget`` None for ``adaptive``; ``display`` as sent."""

    budget: int | None = None
    display: str | None = None


@dataclass(slots=True)
class Ask:
    """One request, API independent: what the simulation and the renderers need from it."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    limit: int | None = None
    n: int = 1
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str = "auto"
    """``"auto"``, ``"none"``, ``"required"`` or the name of the function the call must use."""
    parallel_tool_calls: bool = True
    effort: str | None = None
    """OpenAI reasoning effort (chat ``reasoning_effort``, Responses ``reasoning.effort``)."""
    reasoning_summary: str | None = None
    """Responses ``reasoning.summary`` (``auto``, ``concise``, ``detailed``)."""
    thinking: ThinkingSpec | None = None
    json_mode: bool = False
    """Structured output asked for: the answer must be JSON (fitting ``schema`` if given)."""
    schema: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """API-specific settings a renderer echoes (the Responses API's request fields)."""


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    id: str
    name: str
    arguments: str
    """JSON text; cut short (not valid JSON) when the answer ran out of tokens inside it."""


@dataclass(slots=True)
class Choice:
    """One answer: text and/or tool calls, with hidden or visible thinking."""

    text: str
    tool_calls: list[ToolCallOut] = field(default_factory=list)
    truncated: bool = False
    output_tokens: int = 0
    """Every token produced: reasoning or thinking, text and tool calls."""
    reasoning_tokens: int = 0
    thinking: str | None = None
    """Visible thinking (Anthropic block); None when the model did not think visibly."""
    signature: str = ""
    summary: str | None = None
    """Reasoning summary (Responses ``reasoning.summary``)."""
    reasoned: bool = False
    """The model reasoned (an OpenAI reasoning item / hidden tokens, or a thinking block)."""

    @property
    def finish(self) -> Literal["length", "tool_calls", "stop"]:
        if self.truncated:
            return "length"
        return "tool_calls" if self.tool_calls else "stop"


@dataclass(slots=True)
class Completion:
    """What the simulated model produced for one call, API independent."""

    id: str
    model: str
    created: int
    prompt_tokens: int
    choices: list[Choice]

    @property
    def completion_tokens(self) -> int:
        return sum(c.output_tokens for c in self.choices)

    @property
    def reasoning_tokens(self) -> int:
        return sum(c.reasoning_tokens for c in self.choices)

    @property
    def first(self) -> Choice:
        return self.choices[0]


def split_words(text: str) -> list[str]:
    """Stream pieces: each word with its trailing whitespace (joined, they give ``text``)."""
    pieces = re.findall(r"\S+\s*", text)
    lead = text[: len(text) - len(text.lstrip())]
    if pieces and lead:
        pieces[0] = lead + pieces[0]
    return pieces or ([text] if text else [])


def json_pieces(text: str) -> list[str]:
    """Stream pieces of JSON arguments, token-like (``{"``, ``order_id``, ``":"``, ...)."""
    return re.findall(r"\w+|\W+", text)


def tool_messages_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text a prompt's tool traffic adds (for the token count)."""
    parts = []
    for m in messages:
        for call in m.get("tool_calls") or ():
            parts.append(str(call.get("name", "")) + json.dumps(call.get("arguments")))
    return "".join(parts)
