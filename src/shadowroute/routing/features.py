"""Request features: what a per-request rule may look at before the call is made.

The same function describes a request twice: on the stored pairs, where a rule is learned and
proven (:mod:`shadowroute.policies.partial`), and on the request path, where the
:class:`~shadowroute.Router` and the sidecar apply it. Only the request (the canonical chat
request) and the metadata fields the task declares (``[tasks.X] route_features``) are used:
nothing that exists only after the call.

Features (numbers; yes/no as 1/0):

* ``chars``: characters of text in the messages (system and tools' texts included);
* ``messages``: how many messages;
* ``has_code``: a fenced code block, or a line that reads like code;
* ``has_numbers``: a digit in the last user message;
* ``has_tools``: the request offers tools;
* ``non_ascii``: share of letters outside ASCII in the text (a language hint);
* ``meta.<field>``: a declared metadata field: a number as it is, yes/no as 1/0; a text value
  ``v`` becomes the feature ``meta.<field>=v`` (1 when equal; absent values are 0).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["BASE_FEATURES", "request_features"]

BASE_FEATURES = ("chars", "messages", "has_code", "has_numbers", "has_tools", "non_ascii")
_CODE = re.compile(
    r"```|^\s*(?:def |class |import |from \S+ import |function |const |let |var |public |"
    r"#include|SELECT |<\w+[^>]*>|\w+\s*=\s*\w+\(.*\);?\s*$)", re.MULTILINE)
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[^\W\d_]")


def _non_ascii(text: str) -> float:
    """Share of the letters that are not ASCII (0 for ASCII text, without a pass per letter)."""
    if text.isascii():
        return 0.0
    letters = _LETTER.findall(text)
    return sum(not c.isascii() for c in letters) / len(letters) if letters else 0.0


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part["text"] for part in content
                if isinstance(part, Mapping) and isinstance(part.get("text"), str)]
    return []


def request_features(request: Mapping[str, Any], metadata: Mapping[str, Any] | None = None,
                     fields: Sequence[str] = ()) -> dict[str, float]:
    """The features of one canonical chat request (see the module docstring)."""
    messages = [m for m in request.get("messages") or () if isinstance(m, Mapping)]
    texts = [t for m in messages for t in _texts(m.get("content"))]
    text = "\n".join(texts)
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    user_text = "\n".join(_texts(last_user.get("content"))) if last_user else ""
    out = {
        "chars": float(len(text)),
        "messages": float(len(messages)),
        "has_code": 1.0 if _CODE.search(text) else 0.0,
        "has_numbers": 1.0 if _DIGIT.search(user_text) else 0.0,
        "has_tools": 1.0 if request.get("tools") else 0.0,
        "non_ascii": _non_ascii(text),
    }
    meta = metadata or {}
    for name in fields:
        value = meta.get(name)
        if isinstance(value, bool):
            out[f"meta.{name}"] = 1.0 if value else 0.0
        elif isinstance(value, int | float):
            out[f"meta.{name}"] = float(value)
        elif isinstance(value, str):
            out[f"meta.{name}={value}"] = 1.0
    return out
