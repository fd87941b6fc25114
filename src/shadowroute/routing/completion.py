"""``ChatCompletion``: the answer :meth:`Router.route_and_shadow` returns when shadowroute made the
call itself (``call=None``), whichever model served it and whichever API that model speaks.

It reads like the OpenAI SDK's ``openai.types.chat.ChatCompletion`` (same field names, same
nesting, pydantic v2 like the SDK's models) without depending on the ``openai`` package::

    reply.choices[0].message.content          # the text (None for a tool call only)
    reply.choices[0].message.tool_calls[0].function.arguments
    reply.usage.prompt_tokens, reply.model, reply.id
    reply.model_dump(), reply.model_dump_json() # as the SDK's: every declared field, None if absent
    reply.to_dict(), reply.to_json()            # as the SDK's: only the keys the answer had

``openai.types.chat.ChatCompletion.model_validate(reply.model_dump())`` gives the SDK's object.
Keys the SDK does not declare (a server's extras, e.g. ``reasoning_content``) are kept and read
as attributes too; a nested JSON object of them reads by attribute as well (:class:`JSONObject`).
Building one never fails on a value of an unexpected type: that field keeps the value as it
came, the rest is read as declared (the answer already reached production; it is not refused).

Reading it like a dict (``reply["model"]``, ``reply.get("usage")``, ``"usage" in reply``) still
works, as the plain dict it replaced did, with a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from typing_extensions import TypeAliasType

__all__ = [
    "ChatCompletion",
    "ChatCompletionMessage",
    "Choice",
    "CompletionUsage",
    "Function",
    "JSONObject",
    "ToolCall",
]


class _Model(BaseModel):
    """Extra keys allowed and kept; a field whose value has an unexpected type keeps it raw."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, JSONValue]

    @model_validator(mode="wrap")
    @classmethod
    def _lenient(cls, data: Any, handler: Any) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            if not isinstance(data, dict):
                raise
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]} & set(cls.model_fields)
            try:
                built = handler({k: v for k, v in data.items() if k not in bad})
            except ValidationError:  # a required field was the odd one: all of it as sent
                return cls.model_construct(**data)
            for name in bad:  # as the server sent it; model_dump warns that it is not the type
                built.__dict__[name] = data[name]
                built.__pydantic_fields_set__.add(name)
            return built

    def to_dict(self) -> dict[str, Any]:
        """The keys the answer had (as the SDK's ``to_dict``: unset fields left out)."""
        return self.model_dump(exclude_unset=True, warnings=False)

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON (as the SDK's ``to_json``)."""
        return self.model_dump_json(exclude_unset=True, indent=indent, warnings=False)

    # The plain dict this replaced, read the old way: kept working, deprecated.

    def __getitem__(self, key: str) -> Any:
        _deprecated(f"[{key!r}]")
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        _deprecated(f".get({key!r})")
        return self.to_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        _deprecated(f"{key!r} in ...")
        return key in self.to_dict()


def _deprecated(how: str) -> None:
    warnings.warn(
        f"reading a shadowroute ChatCompletion like a dict ({how}) is deprecated: read its "
        "attributes as with the OpenAI SDK (reply.choices[0].message.content, reply.model), "
        "or reply.to_dict() for the plain dict",
        DeprecationWarning,
        stacklevel=3,
    )


class JSONObject(_Model):
    """A JSON object the SDK's types declare in more detail (``logprobs``, ``annotations``,
    token details) or a server added: every key read as an attribute, nested objects too."""


JSONValue = TypeAliasType(
    "JSONValue", "JSONObject | list[JSONValue] | str | int | float | bool | None"
)
"""A JSON value as extras hold it: objects as :class:`JSONObject`, the rest as parsed."""


class Function(_Model):
    name: str | None = None
    arguments: str | None = None
    """The arguments as the model wrote them: a JSON string, not always valid JSON."""


class ToolCall(_Model):
    """One tool call (``ChatCompletionMessageFunctionToolCall`` in the SDK); a custom tool's
    call keeps its ``custom`` object (``function`` is then ``None``)."""

    id: str | None = None
    type: str | None = None
    function: Function | None = None


class ChatCompletionMessage(_Model):
    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: Function | None = None
    annotations: list[JSONObject] | None = None
    audio: JSONObject | None = None


class Choice(_Model):
    index: int | None = None
    message: ChatCompletionMessage
    finish_reason: str | None = None
    logprobs: JSONObject | None = None


class CompletionUsage(_Model):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: JSONObject | None = None
    completion_tokens_details: JSONObject | None = None


class ChatCompletion(_Model):
    """An OpenAI chat completion, read like the SDK's ``ChatCompletion`` (see the module)."""

    id: str | None = None
    object: str | None = None
    created: int | None = None
    model: str | None = None
    choices: list[Choice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> ChatCompletion:
        """The canonical chat completion a provider returned (a dict), as this type."""
        return cls.model_validate(response)


for _model in (JSONObject, Function, ToolCall, ChatCompletionMessage, Choice, CompletionUsage,
               ChatCompletion):
    _model.model_rebuild()
