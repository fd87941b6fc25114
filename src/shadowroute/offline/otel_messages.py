"""The messages of a GenAI span, from whichever shape its instrumentation wrote them in, as the
canonical (OpenAI chat) request messages and answer (see :mod:`.otel`, docs/otel-import.md).

Input and output each come from the first source that has them: the GenAI conventions'
``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions`` (structured
or JSON text; on the span, then on a ``gen_ai.client.inference.operation.details`` event); the
per-message events of conventions up to 1.36 (``gen_ai.user.message``, ..., ``gen_ai.choice``) and
1.26's ``gen_ai.content.prompt`` / ``gen_ai.content.completion``; ``gen_ai.prompt`` /
``gen_ai.completion``, whole or indexed (OpenLLMetry); OpenInference's ``llm.input_messages.N.*``
/ ``llm.output_messages.N.*``; Langfuse's ``langfuse.observation.input`` / ``.output``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .lines import LineError, json_type

__all__ = ["Answer", "Message", "array", "conversation", "indexed", "loose", "mapping"]

Message = dict[str, Any]
Answer = tuple[Message, Any]
"""The answer as an assistant message, and its finish reason."""
Found = tuple[list[Message] | None, Answer | None]
"""What one source of messages on a span has: (request messages, answer), each ``None`` if not."""

_ROLE_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}


def conversation(attrs: dict[str, Any], events: list[tuple[Any, dict[str, Any]]],
                  not_carried: list[str]) -> tuple[list[Message], Answer]:
    """(request messages, answer), each from the first source of the span that has it."""
    sources: list[Callable[[], Found]] = [lambda: _semconv(attrs, not_carried)]
    sources += [lambda a=a: _semconv(a, not_carried)  # type: ignore[misc]
                for name, a in events if name == "gen_ai.client.inference.operation.details"]
    sources += [lambda: _events(events), lambda: _legacy(attrs), lambda: _openinference(attrs),
                lambda: _langfuse(attrs)]
    messages: list[Message] | None = None
    answer: Answer | None = None
    for source in sources:
        found_in, found_out = source()
        messages, answer = messages or found_in, answer or found_out
        if messages and answer:
            return messages, answer
    raise LineError(f"no {'output' if messages else 'input'} messages on the span (was capturing "
                    "message content off? e.g. OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)")


def _semconv(attrs: dict[str, Any], not_carried: list[str]) -> Found:
    """``gen_ai.input.messages``, ``gen_ai.system_instructions``, ``gen_ai.output.messages``."""
    messages, answer = None, None
    if attrs.get("gen_ai.input.messages") is not None:
        messages = []
        for i, item in enumerate(array(loose(attrs["gen_ai.input.messages"]),
                                        "gen_ai.input.messages")):
            where = f"gen_ai.input.messages[{i}]"
            item = mapping(item, where)
            content, calls, results = _parts(item.get("parts"), where, not_carried)
            messages.extend(results)  # a tool result is a message of its own
            if content is not None or calls or not results:
                messages.append(_message(_role(item, where), content, calls))
        if attrs.get("gen_ai.system_instructions") is not None:
            content, _, _ = _parts(attrs["gen_ai.system_instructions"],
                                   "gen_ai.system_instructions", not_carried)
            messages.insert(0, {"role": "system", "content": content})
    answers = loose(attrs.get("gen_ai.output.messages"))
    if answers:  # one message per choice: the first is the answer
        first = mapping(array(answers, "gen_ai.output.messages")[0], "gen_ai.output.messages")
        content, calls, _ = _parts(first.get("parts"), "gen_ai.output.messages[0]", [])
        if isinstance(content, list):
            content = "\n".join(p["text"] for p in content if p.get("type") == "text") or None
        finish = first.get("finish_reason")
        answer = _message("assistant", content, calls), (
            "tool_calls" if finish == "tool_call" else finish)
    return messages, answer


def _parts(parts: Any, where: str, not_carried: list[str]) -> tuple[Any, list[Message],
                                                                     list[Message]]:
    """(content, tool calls, tool results) of a message's ``parts`` (GenAI conventions)."""
    content: list[Message] = []
    calls: list[Message] = []
    results: list[Message] = []
    for part in array(loose(parts), f"{where}.parts"):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            content.append({"type": "text", "text": _text(part.get("content"))})
        elif kind == "tool_call":
            calls.append(_call(part.get("id"), part.get("name"), part.get("arguments"), where))
        elif kind == "tool_call_response":
            results.append({"role": "tool", "tool_call_id": part.get("id"),
                            "content": _text(part.get("response", part.get("result")))})
        elif kind in ("uri", "blob") and part.get("modality") == "image":
            url = part.get("uri") if kind == "uri" else \
                f"data:{part.get('mime_type') or 'image/png'};base64,{part.get('content')}"
            content.append({"type": "image_url", "image_url": {"url": url}})
        elif kind != "reasoning":  # the model's own thinking: not part of a request or answer
            not_carried.append(f"{kind} message parts")
    if len(content) == 1 and content[0]["type"] == "text":
        return content[0]["text"], calls, results
    return content or None, calls, results


def _events(events: list[tuple[Any, dict[str, Any]]]) -> Found:
    """The per-message events (conventions up to 1.36) and the 1.26 prompt/completion events."""
    messages: list[Message] = []
    choices: list[dict[str, Any]] = []
    legacy: dict[str, Any] = {}
    for name, attrs in events:
        if name in _ROLE_EVENTS:
            messages.append(_message(_ROLE_EVENTS[name], _content(attrs.get("content")),
                                     _calls(attrs.get("tool_calls"), name)))
            if name == "gen_ai.tool.message":
                messages[-1]["tool_call_id"] = attrs.get("id")
        elif name == "gen_ai.choice":
            choices.append(attrs)
        elif name in ("gen_ai.content.prompt", "gen_ai.content.completion"):
            legacy.update({k: v for k, v in attrs.items() if k.startswith("gen_ai.")})
    answer = None
    if choices:
        first = min(choices, key=lambda c: c["index"] if isinstance(c.get("index"), int) else 0)
        message = mapping(first.get("message") or {}, "gen_ai.choice message")
        answer = (_message("assistant", _content(message.get("content")),
                           _calls(message.get("tool_calls"), "gen_ai.choice")),
                  first.get("finish_reason"))
    old_messages, old_answer = _legacy(legacy) if legacy else (None, None)
    return messages or old_messages, answer or old_answer


def _legacy(attrs: dict[str, Any]) -> Found:
    """``gen_ai.prompt`` / ``gen_ai.completion``, whole (JSON or text) or indexed (OpenLLMetry)."""
    prompt, completion = loose(attrs.get("gen_ai.prompt")), loose(attrs.get("gen_ai.completion"))
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    messages = None if prompt is None else [
        _openai(m, "gen_ai.prompt") for m in array(prompt, "gen_ai.prompt")]
    if isinstance(completion, list):
        completion = completion[0] if completion else None
    calls = ("tool_calls.", "id", "name", "arguments")
    answers = [_flat(m, *calls) for m in indexed(attrs, "gen_ai.completion.")]
    if completion is not None:
        answers.insert(0, (_answer(completion, "gen_ai.completion"), None))
    flat = [_flat(m, *calls)[0] for m in indexed(attrs, "gen_ai.prompt.")]
    return messages or flat or None, answers[0] if answers else None


def _openinference(attrs: dict[str, Any]) -> Found:
    def messages(prefix: str) -> list[Answer]:
        return [_flat({k.removeprefix("message."): v for k, v in m.items()}, "tool_calls.",
                      "tool_call.id", "tool_call.function.name", "tool_call.function.arguments")
                for m in indexed(attrs, prefix)]

    answers = [(m, finish or attrs.get("llm.finish_reason"))
               for m, finish in messages("llm.output_messages.")]
    return [m for m, _ in messages("llm.input_messages.")] or None, \
        answers[0] if answers else None


def _langfuse(attrs: dict[str, Any]) -> Found:
    given = loose(attrs.get("langfuse.observation.input"))
    given = given.get("messages") if isinstance(given, dict) and "messages" in given else given
    if isinstance(given, str):
        given = [{"role": "user", "content": given}]
    messages = None if given is None else [_openai(m, "langfuse.observation.input")
                                           for m in array(given, "langfuse.observation.input")]
    answer = loose(attrs.get("langfuse.observation.output"))
    if isinstance(answer, dict) and isinstance(answer.get("choices"), list) and answer["choices"]:
        answer = mapping(answer["choices"][0], "langfuse.observation.output").get("message")
    if isinstance(answer, list):  # the messages the model added: the first is the answer
        answer = next((m for m in answer if isinstance(m, dict)), None)
    return messages, None if answer is None else (
        _answer(answer, "langfuse.observation.output"), None)


def _flat(item: dict[str, Any], calls_prefix: str, *call_keys: str) -> Answer:
    """A flattened message (``role``, ``content`` or ``contents.N.*``, ``tool_calls.N.*``,
    ``tool_call_id``, ``finish_reason``) as (message, finish reason)."""
    content = _content(item.get("content"))
    if content is None:  # OpenInference's message.contents: the texts
        texts = [p.get("message_content.text") for p in indexed(item, "contents.")
                 if p.get("message_content.type") == "text"]
        content = "\n".join(t for t in texts if isinstance(t, str)) or None
    id_key, name_key, args_key = call_keys
    calls = [_call(c.get(id_key), c.get(name_key), c.get(args_key), calls_prefix)
             for c in indexed(item, calls_prefix)]
    message = _message(str(item.get("role") or "assistant"), content, calls)
    if item.get("tool_call_id") is not None:
        message["tool_call_id"] = item["tool_call_id"]
    return message, item.get("finish_reason")


def _answer(answer: Any, where: str) -> Message:
    """The answer as logged (its text, or an OpenAI assistant message) as an assistant message."""
    answer = {"content": answer} if isinstance(answer, str) else mapping(answer, where)
    return _openai({**answer, "role": "assistant"}, where)


def _openai(message: Any, where: str) -> Message:
    """An OpenAI chat message as logged, with only the fields of the canonical request."""
    message = mapping(message, where)
    out = _message(_role(message, where), _content(message.get("content")),
                   _calls(message.get("tool_calls"), where))
    out.update({k: message[k] for k in ("name", "tool_call_id") if message.get(k) is not None})
    return out


def _role(message: dict[str, Any], where: str) -> str:
    if not isinstance(message.get("role"), str) or not message["role"]:
        raise LineError(f"{where}: a message without a role")
    return str(message["role"])


def _message(role: str, content: Any, calls: list[Message]) -> Message:
    return {"role": role, "content": content, **({"tool_calls": calls} if calls else {})}


def _calls(calls: Any, where: str) -> list[Message]:
    """OpenAI-shaped tool calls (``{"id", "type", "function": {"name", "arguments"}}``)."""
    out = []
    for call in array(loose(calls), f"{where}.tool_calls") if calls is not None else ():
        function = mapping(mapping(call, f"{where}.tool_calls").get("function") or {}, where)
        out.append(_call(call.get("id"), function.get("name"), function.get("arguments"), where))
    return out


def _call(id_: Any, name: Any, arguments: Any, where: str) -> Message:
    if not isinstance(name, str) or not name:
        raise LineError(f"{where}: a tool call without a name")
    if not isinstance(arguments, str):  # structured (GenAI conventions), or not captured
        arguments = "{}" if arguments is None else json.dumps(arguments, ensure_ascii=False)
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


def _content(value: Any) -> Any:
    """Message content as logged: text, OpenAI content parts (also as JSON text), or ``None``."""
    parsed = loose(value)
    if isinstance(parsed, list) and parsed and all(isinstance(p, dict) and "type" in p
                                                   for p in parsed):
        return parsed
    return value if value is None or isinstance(value, str) else _text(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else json.dumps(
        value, ensure_ascii=False)


def array(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise LineError(f"{key}: expected an array, got {json_type(value)}")
    return value


def mapping(value: Any, key: str) -> dict[str, Any]:
    value = loose(value)
    if not isinstance(value, dict):
        raise LineError(f"{key}: expected an object, got {json_type(value)}")
    return value


def indexed(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Flattened lists (``prefix.0.role``, ``prefix.0.content``, ...) as dicts, by index."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if key.startswith(prefix):
            head, _, rest = key[len(prefix):].partition(".")
            if head.isdigit() and rest:
                found.setdefault(int(head), {})[rest] = value
    return [found[i] for i in sorted(found)]


def loose(value: Any) -> Any:
    """A structured value, or one written as JSON text; any other text stays the text."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value
