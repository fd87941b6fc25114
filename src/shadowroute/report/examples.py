"""The worst examples of a candidate, ready to show side by side: the request as text, both
answers (cut to a readable length), the scorers' details, and a word-level diff.

Everything here is plain text; the template escapes it (model output is hostile input).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Example", "build_example", "request_text", "word_diff"]

MAX_CHARS = 4000
MAX_DIFF_TOKENS = 2000
_TOKENS = re.compile(r"\s+|[^\s]+")


@dataclass
class Example:
    output_id: str
    exchange_id: str
    created_at: str | None
    request: str
    primary: str
    candidate: str
    error: str | None
    scores: list[dict[str, Any]]
    diff: list[tuple[str, str]]
    """(``equal`` | ``delete`` | ``insert``, text) from the primary's answer to the candidate's."""


def _cut(text: str | None, limit: int = MAX_CHARS) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit:,} more characters)"


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text, name the rest
        return "\n".join(
            part.get("text", "") if isinstance(part, dict) and part.get("type") == "text"
            else f"[{part.get('type', 'part') if isinstance(part, dict) else 'part'}]"
            for part in content
        )
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def request_text(request: dict[str, Any] | None) -> str:
    """A chat request as ``role: content`` lines."""
    if not isinstance(request, dict):
        return ""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return _cut(json.dumps(request, ensure_ascii=False, indent=1))
    lines = [f"{m.get('role', '?')}: {_content(m.get('content'))}" for m in messages
             if isinstance(m, dict)]
    return _cut("\n\n".join(lines))


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """Word-level diff of two texts as (op, text) segments; ``replace`` becomes a delete and an
    insert. Long texts are compared on their first :data:`MAX_DIFF_TOKENS` tokens."""
    a = _TOKENS.findall(before)[:MAX_DIFF_TOKENS]
    b = _TOKENS.findall(after)[:MAX_DIFF_TOKENS]
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("equal", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("delete", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("insert", "".join(b[j1:j2])))
    return out


def build_example(row: dict[str, Any]) -> Example:
    primary = row.get("primary_output") or ""
    candidate = row.get("output") or ""
    error = None
    if row.get("error_kind"):
        error = f"{row['error_kind']}: {row.get('error') or ''}".strip()
    created = row.get("created_at")
    return Example(
        output_id=row["output_id"],
        exchange_id=row["exchange_id"],
        created_at=f"{created:%Y-%m-%d %H:%M:%S} UTC" if created is not None else None,
        request=request_text(row.get("request")),
        primary=_cut(primary),
        candidate=_cut(candidate),
        error=error,
        scores=row.get("scores", []),
        diff=[] if error else word_diff(_cut(primary), _cut(candidate)),
    )
