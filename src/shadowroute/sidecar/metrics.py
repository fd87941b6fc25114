"""``GET /metrics``: the sidecar's and the pipeline's counters in Prometheus text format."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..metrics import StatsCollector
from ..stats import Stats

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

ROUTE_SKIP_REASONS = ("undeclared", "api_mismatch", "no_api_key", "not_shadowable")
"""Why a call of a promoted task type stayed on its primary."""

NOT_CAPTURED_REASONS = ("too_large", "encoded", "unparseable")
"""Why a chat call was relayed without capture (see ``sidecar.body.readable``)."""

_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30)


class Metrics:
    """One registry per sidecar (no process-global state)."""

    def __init__(self, stats: Stats | Callable[[], Stats]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StatsCollector(stats))
        self.requests = Counter(
            "shadowroute_upstream_requests",
            "Requests relayed to the upstream, by API and status.",
            ["api", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shadowroute_upstream_latency_seconds",
            "Upstream latency until the last byte was relayed.",
            ["api"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.routed = Counter(
            "shadowroute_routed_requests",
            "Calls sent to a promoted model instead of the primary (route map), by model.",
            ["model"],
            registry=self.registry,
        )
        self.skipped = Counter(
            "shadowroute_route_skipped",
            "Calls of a promoted task type kept on the primary, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in ROUTE_SKIP_REASONS:
            self.skipped.labels(reason)
        self.fallbacks = Counter(
            "shadowroute_route_fallbacks",
            "Routed calls answered by the primary: the promoted model could not be reached.",
            registry=self.registry,
        )
        self.uncaptured = Counter(
            "shadowroute_not_captured",
            "Chat calls relayed to the upstream unchanged but not captured, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in NOT_CAPTURED_REASONS:
            self.uncaptured.labels(reason)
        self.refused = Counter(
            "shadowroute_not_relayed",
            "Calls the sidecar answered itself instead of relaying, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.refused.labels("websocket")
        self.captures_refused = Counter(
            "shadowroute_captures_refused",
            "Captures POST /v1/captures refused, by reason (unauthorized: a missing or wrong "
            "token, counted per request; rate_limited: per capture).",
            ["reason"],
            registry=self.registry,
        )
        for reason in ("unauthorized", "rate_limited"):
            self.captures_refused.labels(reason)
        self.in_flight = Gauge(
            "shadowroute_upstream_in_flight",
            "Upstream answers being relayed to their clients (upstream connections in use).",
            registry=self.registry,
        )
        self.waiting = Gauge(
            "shadowroute_upstream_pool_waiting",
            "Calls waiting for a connection to the upstream ([sidecar] max_connections).",
            registry=self.registry,
        )
        self.wait = Histogram(
            "shadowroute_upstream_pool_wait_seconds",
            "How long calls waited for a connection to the upstream.",
            buckets=_WAIT_BUCKETS, registry=self.registry,
        )

    def upstream_done(self, api: str | None, status: int, seconds: float) -> None:
        label = api or "other"
        self.requests.labels(label, str(status)).inc()
        self.latency.labels(label).observe(seconds)

    def upstream_failure(self, api: str | None, kind: str) -> None:
        self.requests.labels(api or "other", kind).inc()

    def routed_to(self, model: str) -> None:
        self.routed.labels(model).inc()

    def route_skipped(self, reason: str) -> None:
        self.skipped.labels(reason).inc()

    def route_fallback(self) -> None:
        self.fallbacks.inc()

    def not_captured(self, reason: str) -> None:
        self.uncaptured.labels(reason).inc()

    def refused_capture(self, reason: str, n: int = 1) -> None:
        self.captures_refused.labels(reason).inc(n)

    def not_relayed(self, reason: str) -> None:
        self.refused.labels(reason).inc()

    def pool_wait(self, change: int, seconds: float | None) -> None:
        """A call started (+1) or stopped (-1, after ``seconds``) waiting for a connection."""
        self.waiting.inc(change)
        if seconds is not None:
            self.wait.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
