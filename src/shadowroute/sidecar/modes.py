"""Cascade and partial routes in the sidecar: which model answers a proxied call, by its answer
or by its request (see :mod:`shadowroute.routing.modes`, which the library Router shares).

* A **partial** route reads the request's features before the call: a call its rule picks
  goes to the promoted model exactly as a promoted task type's does (streams included, the
  reverse shadow sampled as usual; an unreachable host falls back to the primary once,
  ``bypassed:unreachable``); the others go to the primary (``primary``).
* A **cascade** route sends a non-streamed call to the promoted model past the capture
  transport and holds its whole answer (up to :data:`MAX_ANSWER_BYTES`); the route's checks
  read it. Kept: the held answer is relayed as the promoted model sent it (headers and
  content-encoding included) and offered to the Shadow for the reverse shadow, sampled as the
  capture transport would. Escalated (a check failed, the call failed, an error status, an
  unreadable or oversized answer): the original call goes to the primary as any other call
  (captured, sampled), and its answer is relayed. A streamed call goes straight to the primary
  (``bypassed:stream``): checks need the whole answer, and holding a stream back would undo it.

Each outcome is counted (``Shadow.count_routed``: Prometheus, ``routed_daily``) and named in
the ``X-Shadowroute-Route`` header (``outcome=...``). Task types without such a route never
reach this module: their calls cost nothing more.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from ..capture.capture import decode_body
from ..capture.transport import REVERSE_HEADER, TASK_HEADER
from ..config import ModelConfig
from ..routing.modes import (
    BYPASSED,
    ESCALATED,
    KEPT,
    PRIMARY,
    answer_of_body,
    canonical_request,
)
from ..routing.routemap import MODE_PARTIAL
from ..routing.routemap import Route as MapRoute

if TYPE_CHECKING:
    from .app import Sidecar
    from .asgi import Reply
    from .upstream import Answer

__all__ = ["MAX_ANSWER_BYTES", "Routed", "serve_by_mode"]

MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""The most a cascade holds of the promoted model's answer; a larger one escalates."""
_Headers = list[tuple[bytes, bytes]]
_OURS = frozenset({TASK_HEADER.encode(), REVERSE_HEADER.encode()})
"""Headers meant for the capture transport, which a cascade's held call goes past."""
_DROP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade",
                   b"content-length"})


class Routed:
    """A call the route map sends to a promoted model instead of the primary."""

    __slots__ = ("body", "headers", "model", "route", "url")

    def __init__(
        self, route: MapRoute, model: ModelConfig, url: str, headers: _Headers, body: bytes
    ) -> None:
        self.route, self.model, self.url, self.headers, self.body = route, model, url, headers, body


async def serve_by_mode(sidecar: Sidecar, routed: Routed, method: str, url: str,
                        headers: _Headers, body: bytes, parsed: dict[str, Any],
                        task: str) -> Reply:
    """Answer a call of a cascade or partial route (see the module docstring); ``url``,
    ``headers`` and ``body``: the call as it goes to the primary."""
    route, api = routed.route, routed.model.api
    client_model = str(parsed.get("model") or "")

    async def primary(outcome: str) -> Reply:
        sidecar.shadow.count_routed(task, route.model, outcome)
        return await sidecar._forward(
            api, method, url, headers, body,
            f"model={client_model}; route=primary; task={task}; outcome={outcome}")

    if route.mode == MODE_PARTIAL:
        metadata = parsed.get("metadata")
        try:
            picked = sidecar.modes.partial_serves(
                route, canonical_request(parsed, api), metadata if isinstance(metadata, dict)
                else None)
        except Exception:  # a request the rule cannot read: the primary serves it
            return await primary(BYPASSED + "unreadable")
        if not picked:
            return await primary(PRIMARY)
        return await sidecar._promoted(
            routed, method, url, headers, body,
            f"model={routed.model.model}; route=partial; task={task}; "
            f"primary={route.primary}; outcome={KEPT}",
            f"model={client_model}; route=primary; task={task}; "
            f"outcome={BYPASSED}unreachable",
            lambda answered: sidecar.shadow.count_routed(
                task, route.model, KEPT if answered else BYPASSED + "unreachable"))
    if parsed.get("stream"):
        return await primary(BYPASSED + "stream")
    if sidecar.modes.checks(route) is None:
        return await primary(BYPASSED + "checks")
    sidecar.metrics.routed_to(route.model)
    began = time.perf_counter()
    held = await _hold(sidecar, routed, method, api)
    if held is None:
        return await primary(ESCALATED + "error")
    response, raw = held
    latency_ms = (time.perf_counter() - began) * 1000
    try:
        answer = answer_of_body(decode_body(raw, response.headers.get("content-encoding")), api)
    except Exception:  # an encoding it cannot undo: unreadable
        answer = None
    try:
        request = canonical_request(parsed, api)
    except Exception:
        request = {}
    why = "error" if not 200 <= response.status_code < 300 else \
        sidecar.modes.escalation(route, answer, request)
    if why is not None:
        return await primary(ESCALATED + why)
    sidecar.shadow.count_routed(task, route.model, KEPT)
    _offer_reverse(sidecar, routed, task, response, raw, latency_ms)
    relayed = Response(raw, status_code=response.status_code)
    route_header = (f"model={routed.model.model}; route=cascade; task={task}; "
                    f"primary={route.primary}; outcome={KEPT}")
    relayed.raw_headers = [
        *((k, v) for k, v in response.raw_headers if k.lower() not in _DROP),
        (b"content-length", str(len(raw)).encode()),
        (b"x-shadowroute-route", route_header.encode("latin-1", "replace")),
    ]
    return relayed


async def _hold(sidecar: Sidecar, routed: Routed, method: str,
                api: str) -> tuple[Answer, bytes] | None:
    """The promoted model's whole answer, as sent (still content-encoded); ``None`` when the
    call failed or the answer is larger than :data:`MAX_ANSWER_BYTES`."""
    headers = [(k, v) for k, v in routed.headers if k not in _OURS]
    began = time.perf_counter()
    try:
        response = await sidecar._send(method, routed.url, headers, routed.body, capture=False)
    except Exception:
        return None
    chunks, size = [], 0
    try:
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                return None
            chunks.append(chunk)
    except Exception:
        return None
    finally:
        await response.aclose()
    sidecar.metrics.upstream_done(api, response.status_code, time.perf_counter() - began)
    return response, b"".join(chunks)


def _offer_reverse(sidecar: Sidecar, routed: Routed, task: str, response: Answer,
                   raw: bytes, latency_ms: float) -> None:
    """Offer a kept answer for the reverse shadow, sampled as the capture transport samples a
    promoted model's calls (and counted in the day's traffic like them). Never raises."""
    shadow, body, model = sidecar.shadow, routed.body, routed.model.model
    try:
        if shadow.sample(task, model, lambda: body, reverse=True):
            shadow.offer_raw(task, api=routed.model.api, request_body=body, response_body=raw,
                             content_encoding=response.headers.get("content-encoding"),
                             streamed=False, latency_ms=latency_ms, model=model,
                             reverse_of=routed.route.primary, source="sidecar")
    except Exception:  # never into production
        shadow.count("capture_errors")
