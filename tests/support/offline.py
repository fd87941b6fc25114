"""Logged traffic for ``shadowroute import``: chat pairs as JSONL lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def chat_request(i: int, model: str = "frontier") -> dict[str, Any]:
    """Request ``i`` of the log: "Where is parcel <i>?"."""
    return {"model": model, "messages": [{"role": "user", "content": f"Where is parcel {i}?"}]}


def chat_response(text: str, model: str = "frontier-2024-08-06") -> dict[str, Any]:
    """The primary's answer ``text`` (12 prompt tokens, 3 completion tokens)."""
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1714560000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


def chat_line(i: int, **extra: Any) -> dict[str, Any]:
    """One line of a chat log: request ``i`` answered "answer <i>"; ``extra`` adds fields."""
    return {"request": chat_request(i), "response": chat_response(f"answer {i}"), **extra}


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    """``lines`` written one per line (strings as they are, anything else as JSON)."""
    with path.open("w") as f:
        for line in lines:
            f.write(line if isinstance(line, str) else json.dumps(line))
            f.write("\n")
    return path
