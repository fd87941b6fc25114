"""Plain dataclasses that flow between the pipeline stages.

capture -> queue -> mirror -> store: a :class:`Capture` (what production did) becomes an
:class:`ExchangeRecord` with one :class:`CandidateOutputRecord` per candidate, which the store
writes in batches. :class:`Completion` is what a provider call returns, in canonical form.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "NOISE_FLOOR_MODEL",
    "ROUTE_REVERSE",
    "ROUTE_SHADOW",
    "CandidateOutputRecord",
    "Completion",
    "ExchangeRecord",
    "RoutedRecord",
    "TrafficRecord",
    "new_id",
    "utcnow",
]


NOISE_FLOOR_MODEL = "primary@replay"
"""The candidate name under which a second answer of the primary itself is stored (the
*noise-floor replay*): scoring it like any candidate measures the noise floor (how much the
primary disagrees with itself). The stored string keeps its historical spelling; in code it is
the noise-floor model, not to be confused with ``shadowroute replay`` (candidates over stored
exchanges) or draining the spool."""


ROUTE_SHADOW = "shadow"
"""An exchange of the primary serving production, mirrored to the task's candidates."""
ROUTE_REVERSE = "reverse"
"""An exchange of a promoted model serving production, mirrored back to the primary it replaced
(the reverse shadow). It is stored the other way round so that it is scored like any pair: the
primary's answer is the reference (``primary_output``), the promoted model's production answer
is the candidate output. The report reads these for drift, never for promotion evidence."""


def new_id(at: datetime | None = None) -> str:
    """A 32-hex-digit id generated client-side (so spool replays are idempotent): a UUIDv7,
    the time ``at`` (default now) in milliseconds then 74 random bits. Time first, so what is
    written together sits together in the store's indexes: an insert lands on the index's
    newest pages instead of a random page of an index larger than memory, and ids sort by
    the time they were made."""
    ms = (time.time_ns() // 1_000_000 if at is None else int(at.timestamp() * 1000)) & _MS_MASK
    rand = int.from_bytes(os.urandom(10), "big")
    value = ((ms << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62)
             | (rand & _RAND_B_MASK))
    return f"{value:032x}"


_MS_MASK = (1 << 48) - 1
_RAND_B_MASK = (1 << 62) - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Completion:
    """One model answer in the canonical (OpenAI chat-completion) shape."""

    model: str
    text: str | None
    response: dict[str, Any]
    input_tokens: int | None = None
    output_tokens: int | None = None
    """``None`` when the response carried no usage: unknown, and so is the cost."""
    latency_ms: float = 0.0
    cost_usd: float | None = None
    finish_reason: str | None = None
    not_carried: list[str] | None = None
    """Settings of the canonical request this model's API could not be given."""


@dataclass(slots=True)
class CandidateOutputRecord:
    """A candidate's answer (or its failure) for one exchange."""

    exchange_id: str
    model: str
    output: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    error_kind: str | None = None
    """``timeout``, ``rate_limited``, ``server_error``, ``client_error``, ``connection``,
    ``bad_response`` or ``internal``; ``None`` when the call succeeded."""
    error: str | None = None
    attempts: int = 1
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)
    not_carried: list[str] | None = None
    """Settings of the request this candidate's API could not be given."""
    finish_reason: str | None = None
    """Why the answer ended (``stop``, ``length``, ...; ``None``: unknown)."""


@dataclass(slots=True)
class ExchangeRecord:
    """A sampled production call and the candidates' answers to the same request."""

    task_type: str
    primary_model: str
    request: dict[str, Any]
    primary_output: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    outputs: list[CandidateOutputRecord] = field(default_factory=list)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)
    route: str = ROUTE_SHADOW
    """:data:`ROUTE_SHADOW` or :data:`ROUTE_REVERSE`."""
    not_carried: list[str] | None = None
    """Settings of the primary's request the canonical form could not hold."""
    source: str | None = None
    """Who captured it: ``transport``, ``shadow()``, ``sidecar``, ``remote:<name>``,
    ``import:<file>`` (``None``: stored before sources were recorded)."""


@dataclass(slots=True)
class TrafficRecord:
    """How many production calls a task type saw on a UTC day, sampled or not.

    Written as increments: the store adds ``requests`` and ``sampled`` to the row for
    (day, task_type, primary_model), so the report knows volume without storing every call.
    """

    day: date
    task_type: str
    primary_model: str
    requests: int = 0
    sampled: int = 0
    not_shadowable: int = 0
    """Sampled calls not mirrored because they depend on state their provider keeps."""


@dataclass(slots=True)
class RoutedRecord:
    """How many calls a cascade or partial route served one way on a UTC day.

    Written as increments, like :class:`TrafficRecord`: the store adds ``calls`` to the row for
    (day, task_type, model, outcome). ``model`` is the route's candidate (a ``[models]`` key);
    ``outcome`` is ``kept`` (the candidate's answer served), ``escalated:<check>`` (the check
    failed, the primary's answer served), ``primary`` (a partial rule sent the call to the
    primary) or ``bypassed:<why>`` (the route could not apply, e.g. ``stream``).
    """

    day: date
    task_type: str
    model: str
    outcome: str
    calls: int = 0
