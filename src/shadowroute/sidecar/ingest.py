"""``POST /v1/captures``: captures sent in batches by app processes running shadow() remotely.

    {"captures": [{"task": "classify_intent", "request": {...}, "response": {...},
                   "latency_ms": 412.0, "metadata": {...}, "api": "openai", "sampled": true}]}

``response`` is the primary's completion (OpenAI chat, Responses or Anthropic shape) or its
output text. ``not_carried`` (optional) lists settings the sender's translation could not carry.
``sampled: true`` means the sender already sampled it; otherwise the sidecar's rates decide.
``reverse_of`` (optional) names the primary a promoted model replaced for this call.
A bad batch is refused whole with 400 and a JSON body naming each bad item; nothing is queued.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..pipeline.core import Shadow
from .body import BodyTooLarge, read_body
from .metrics import Metrics
from .trust import RateLimiter

__all__ = ["SOURCE_HEADER", "CaptureIn", "CapturesIn", "ingest_captures", "source_of"]

MAX_BATCH = 1000


class CaptureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=200)
    request: dict[str, Any]
    response: dict[str, Any] | str
    api: Literal["openai", "anthropic", "responses"] = "openai"
    latency_ms: float | None = Field(None, ge=0)
    metadata: dict[str, Any] = {}
    sampled: bool = False
    reverse_of: str | None = Field(None, min_length=1, max_length=200)
    """A promoted model served this call in place of this primary (a ``[models]`` key)."""
    not_carried: list[str] | None = Field(None, max_length=100)
    """Settings of the app's original request its canonical ``request`` could not carry."""


class CapturesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    captures: list[CaptureIn] = Field(max_length=MAX_BATCH)


def _bad(status: int, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": "invalid_request_error"}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status)


SOURCE_HEADER = "x-shadowroute-source"
"""The sending app's name (remote mode's ``remote_name``): its captures are stored as
``remote:<name>``; the client's address when absent."""


def source_of(request: Request) -> str:
    """``remote:<name>`` for a capture batch: printable ASCII, at most 64 characters."""
    name = request.headers.get(SOURCE_HEADER) or (request.client.host if request.client else "")
    name = "".join(c for c in name if c.isascii() and c.isprintable())[:64] or "unknown"
    return f"remote:{name}"


async def ingest_captures(shadow: Shadow, request: Request, max_body_bytes: int, *,
                          limiter: RateLimiter | None = None,
                          metrics: Metrics | None = None) -> Response:
    try:
        body = await read_body(request, max_body_bytes)
    except BodyTooLarge:
        return _bad(413, f"body larger than {max_body_bytes} bytes ([sidecar] max_body_bytes)")
    try:
        batch = CapturesIn.model_validate(json.loads(body))
    except RecursionError:
        return _bad(400, "body is not valid JSON: nested too deeply")
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            details = [
                {"loc": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
                for err in exc.errors()[:20]
            ]
            return _bad(400, f"{exc.error_count()} invalid field(s)", details)
        return _bad(400, f"body is not valid JSON: {exc}")
    if limiter is not None:
        client = request.client.host if request.client else "unknown"
        wait = limiter.take(client, len(batch.captures))
        if wait:
            if metrics is not None:
                metrics.refused_capture("rate_limited", len(batch.captures))
            response = _bad(429, f"more than {limiter.per_minute:,} captures a minute from "
                            f"{client} ([sidecar] captures_per_minute): retry later")
            response.headers["retry-after"] = str(max(1, round(wait)))
            return response
    source = source_of(request)
    queued = 0
    for item in batch.captures:
        queued += shadow.offer(
            item.task,
            item.request,
            item.response,
            item.latency_ms,
            metadata=item.metadata,
            api=item.api,
            presampled=item.sampled,
            reverse_of=item.reverse_of,
            not_carried=item.not_carried,
            source=source,
        )
    return JSONResponse(
        {"received": len(batch.captures), "queued": queued, "not_queued": len(batch.captures) - queued},
        status_code=202,
    )
