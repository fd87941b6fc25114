"""Who may use the sidecar's own endpoints: bearer tokens and a per-client capture rate.

``POST /v1/captures`` makes the sidecar call candidates (and later the judge) with the team's
keys and writes evidence the report decides on, so it takes a bearer token when
``[sidecar] ingest_token_env`` names one (``serve`` refuses to expose it on a non-loopback
address without one); ``GET /metrics`` takes one when ``metrics_token_env`` does. Tokens are
compared in constant time, as bytes (a header that is not ASCII simply does not match). Each
client address may send ``captures_per_minute`` captures a minute (a token bucket), so one
misbehaving app cannot spend the day's budget for every other.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

__all__ = ["BearerToken", "RateLimiter", "is_loopback"]

_MAX_CLIENTS = 10_000
"""Buckets kept at most (the oldest go first): a flood of addresses cannot grow memory."""


@dataclass(frozen=True, slots=True)
class BearerToken:
    """A required ``Authorization: Bearer <token>``; ``token=None`` lets every request in."""

    token: bytes | None

    @classmethod
    def from_env(cls, name: str | None) -> BearerToken:
        """The token in the environment variable ``name`` (``None``: no token required). A
        named variable that is unset or empty is a configuration error, never "open"."""
        if name is None:
            return cls(None)
        value = os.environ.get(name, "")
        if not value:
            raise ValueError(f"the environment variable {name} (a sidecar token) is not set")
        return cls(value.encode())

    @property
    def required(self) -> bool:
        return self.token is not None

    def allows(self, request: Request) -> bool:
        if self.token is None:
            return True
        given = b""
        for key, value in request.headers.raw:
            if key.lower() == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    given = credentials.strip()
                break
        return hmac.compare_digest(given, self.token)


@dataclass
class RateLimiter:
    """A token bucket per client: ``per_minute`` captures, refilled continuously."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, client: str, n: int) -> float:
        """Take ``n`` captures from ``client``'s bucket: 0.0 if allowed, else the seconds to
        wait before they would be (nothing is taken then)."""
        now = self.clock()
        rate = self.per_minute / 60.0
        tokens, at = self._buckets.pop(client, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * rate)
        wait = 0.0
        if n > tokens:
            wait = (n - tokens) / rate if n <= self.per_minute else 60.0
        else:
            tokens -= n
        self._buckets[client] = (tokens, now)  # re-inserted: the dict stays oldest-first
        while len(self._buckets) > _MAX_CLIENTS:
            del self._buckets[next(iter(self._buckets))]
        return wait


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
