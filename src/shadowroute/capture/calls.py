"""Recognising a production chat call and deciding, in microseconds, whether to capture it.

Everything here runs on the request path: which API a call is (:func:`api_for`), its model read
from raw bytes without parsing (:func:`model_from_body`), a snapshot of the request that the
caller cannot change afterwards (:func:`snapshot_request`), and the sampling draw
(:func:`is_sampled`, deterministic per request with a seed, keyed by :func:`request_key`).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from typing import Any, Literal

__all__ = [
    "Api", "api_for", "is_sampled", "model_from_body", "request_key", "snapshot_request",
]

Api = Literal["openai", "anthropic", "responses"]
"""The API a production call speaks: OpenAI chat completions, Anthropic Messages, or the OpenAI
Responses API."""


_MODEL_RE = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')


def api_for(method: str, path: str) -> Api | None:
    """Which chat API a request is a call of (``None``: not one shadowroute captures)."""
    if method != "POST":
        return None
    if path.endswith("/chat/completions"):
        return "openai"
    if path.endswith("/v1/messages"):
        return "anthropic"
    if path.endswith("/responses"):
        return "responses"
    return None


def snapshot_request(request: dict[str, Any]) -> dict[str, Any]:
    """Copy a chat request deep enough that the caller appending to ``messages`` (as chat
    loops do right after a call) cannot change what was captured; ~1 µs, unlike deepcopy."""
    snap = dict(request)
    messages = snap.get("messages")
    if isinstance(messages, list):
        snap["messages"] = [dict(m) if isinstance(m, dict) else m for m in messages]
    return snap


def model_from_body(body: bytes) -> str:
    """The ``model`` of a raw JSON request body without parsing it (first match; "" if none)."""
    match = _MODEL_RE.search(body)
    return match.group(1).decode("utf-8", "replace") if match else ""


def is_sampled(rate: float, seed: int | None, key: Callable[[], bytes]) -> bool:
    """Sample with probability ``rate``; with a seed, deterministically by a hash of ``key()``."""
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    if seed is None:
        return random.random() < rate
    digest = hashlib.blake2b(key(), digest_size=8, key=str(seed).encode()).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def request_key(request: dict[str, Any]) -> bytes:
    """A stable byte key of a chat request, for seeded sampling draws."""
    return json.dumps(request, sort_keys=True, separators=(",", ":"), default=str).encode()
