"""Structured outputs: make an answer JSON that fits the schema the request asked for.

Real structured-output modes (OpenAI ``response_format`` / Responses ``text.format`` json_schema,
Anthropic ``output_config.format``) decode under the schema, so the answer always parses and
fits -- it can still be wrong. :func:`fit_schema` keeps an answer that already fits and otherwise
builds the closest instance it can from the answer's content (fields kept by name, the text put
in the first string field, an enum value matched by name, defaults for the rest).
:func:`instance_for` builds arguments for a forced tool call the same way. ``schema=None`` means
JSON mode (``json_object``): any JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema

__all__ = ["fit_schema", "instance_for"]

_MISSING = object()


def fit_schema(text: str, schema: Mapping[str, Any] | None) -> str:
    """``text`` if it is JSON that fits ``schema``; otherwise a fitting JSON built from it."""
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = _MISSING
    if schema is None:
        if isinstance(value, dict):
            return text
        return json.dumps({"answer": text if value is _MISSING else value})
    if value is not _MISSING and _fits(value, schema):
        return text
    hint = text if value is _MISSING else value
    return json.dumps(instance_for(schema, hint))


def instance_for(schema: Mapping[str, Any], hint: Any = None) -> Any:
    """An instance of ``schema`` (best effort) filled from ``hint`` (a JSON value or text)."""
    return _build(schema, hint, schema, [True])


def _fits(value: Any, schema: Mapping[str, Any]) -> bool:
    try:
        jsonschema.validate(value, dict(schema))
    except (jsonschema.ValidationError, jsonschema.SchemaError):
        return False
    return True


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        return node if isinstance(node, Mapping) else {}
    return schema


def _build(schema: Mapping[str, Any], hint: Any, root: Mapping[str, Any],
           text_left: list[bool]) -> Any:
    """``text_left[0]``: the hint text has not been put into a string field yet."""
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _pick_enum(schema["enum"], hint)
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            usable = [o for o in options if isinstance(o, Mapping)
                      and _resolve(o, root).get("type") != "null"] or options
            return _build(usable[0], hint, root, text_left)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        return _build_object(schema, hint, root, text_left)
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
        hints = hint if isinstance(hint, list) else [hint]
        count = max(1, int(schema.get("minItems", 1)))
        return [_build(items, hints[i % len(hints)], root, text_left) for i in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, hint, integer=kind == "integer")
    if kind == "boolean":
        return hint if isinstance(hint, bool) else False
    if kind == "null":
        return None
    return _string(schema, hint, text_left)


def _build_object(schema: Mapping[str, Any], hint: Any, root: Mapping[str, Any],
                  text_left: list[bool]) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
    required = schema.get("required") if isinstance(schema.get("required"), list) else list(props)
    given = hint if isinstance(hint, Mapping) else {}
    out: dict[str, Any] = {}
    for name, sub in props.items():
        if name not in required and name not in given:
            continue
        sub_hint = given.get(name) if given else (hint if text_left[0] else None)
        out[name] = _build(sub if isinstance(sub, Mapping) else {}, sub_hint, root, text_left)
    return out


def _pick_enum(options: list[Any], hint: Any) -> Any:
    if hint in options:
        return hint
    text = str(hint if hint is not None else "").casefold()
    for option in options:
        if isinstance(option, str) and option.casefold() == text.strip():
            return option
    for option in options:
        if isinstance(option, str) and option.casefold() in text:
            return option
    return options[0]


def _number(schema: Mapping[str, Any], hint: Any, *, integer: bool) -> int | float:
    value: Any = hint
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, int | float) or isinstance(value, bool):
        value = schema.get("minimum", 0)
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    return int(value) if integer else value


def _string(schema: Mapping[str, Any], hint: Any, text_left: list[bool]) -> str:
    if isinstance(hint, str) and hint:
        value = hint
        text_left[0] = False
    elif hint is not None and not isinstance(hint, Mapping | list):
        value = str(hint)
    else:
        value = ""
    limit = schema.get("maxLength")
    return value[:limit] if isinstance(limit, int) else value
