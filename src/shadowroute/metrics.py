"""Prometheus families of a :class:`~shadowroute.stats.Stats`: the same in the sidecar's
``/metrics`` and in an app that runs :class:`~shadowroute.Shadow` in-process.

    from prometheus_client import REGISTRY
    from shadowroute.metrics import collector

    REGISTRY.register(collector(shadow))   # the app's /metrics now has shadowroute_*

Captures (offered, sampled, accepted, dropped and discarded by reason, stored, spooled), the
mirror's candidate errors by kind, redactions, the queue and spool gauges, per model the
calls, errors by kind, latency histogram and spend, and what cascades and partial routes
served: ``shadowroute_routed_total{task,model,outcome}`` and, of those, the escalations to the
primary ``shadowroute_escalations_total{task,reason}`` (reason: the failed check, or
``error``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .stats import LATENCY_BUCKETS_S, Stats

__all__ = ["DISCARD_REASONS", "StatsCollector", "collector"]

_COUNTERS = {
    "captured": ("offered", "Production calls seen on the chat endpoints."),
    "accepted": ("enqueued", "Captures accepted onto the shadow queue."),
    "lost_exchanges": (
        "lost_exchanges", "Exchanges neither stored nor spooled (database and disk failed)."
    ),
    "sampled": ("sampled", "Calls chosen for shadowing."),
    "mirrored": ("mirrored", "Captures whose candidates were called."),
    "stored_exchanges": ("stored_exchanges", "Exchanges written to the database."),
    "spooled_exchanges": ("spooled_exchanges", "Exchanges written to the disk spool."),
    "replayed_exchanges": ("replayed_exchanges", "Spooled exchanges later written."),
    "primary_errors": ("primary_errors", "Primary calls that failed (relayed as they came)."),
    "capture_errors": ("capture_errors", "Captures that could not be parsed or mirrored."),
    "store_errors": ("store_errors", "Failed database operations."),
    "telemetry_errors": (
        "telemetry_errors", "OpenTelemetry span handling failures (swallowed; the call went on)."
    ),
    "skipped_budget": ("skipped_budget", "Candidate calls skipped: daily budget spent."),
    "skipped_circuit_open": ("skipped_circuit_open", "Candidate calls skipped: circuit open."),
    "skipped_settled": (
        "skipped_settled", "Candidate calls skipped: verdict settled, maintenance rate."
    ),
    "skipped_allocated": (
        "skipped_allocated", "Candidate calls skipped: unlikely to pass, allocated share."
    ),
    "skipped_retired": ("skipped_retired", "Candidate calls skipped: candidate retired."),
    "primary_replays": ("primary_replays", "Primary calls repeated for the noise floor."),
    "replay_unavailable": (
        "replay_unavailable", "Noise-floor replays not made: primary not declared in [models]."
    ),
    "reverse_shadows": (
        "reverse_shadows",
        "Calls served by a promoted model also answered by the primary it replaced.",
    ),
    "redaction_errors": (
        "redaction_errors", "Captures dropped: redaction failed (never stored unredacted)."
    ),
    "mirror_process_exits": (
        "mirror_process_exits", "Mirror processes that ended unasked and were started again."
    ),
    "reverse_failed": (
        "reverse_failed", "Reverse shadows not stored: no answer from the replaced primary."
    ),
}

DISCARD_REASONS = (
    "shutdown", "capture_error", "redaction_error", "reverse_failed", "not_shadowable",
)
"""Why an accepted capture is not stored (``Stats.discarded``), all exported even at 0."""

class StatsCollector(Collector):
    """The counters of one :class:`~shadowroute.stats.Stats` as Prometheus families."""

    def __init__(self, stats: Stats | Callable[[], Stats]) -> None:
        """``stats``, or a function giving them at each collection."""
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats if isinstance(self._stats, Stats) else self._stats()
        for name, (field, doc) in _COUNTERS.items():
            metric = CounterMetricFamily(f"shadowroute_{name}", doc)
            metric.add_metric([], getattr(stats, field))
            yield metric
        dropped = CounterMetricFamily(
            "shadowroute_dropped", "Captures dropped, by reason.", labels=["reason"]
        )
        for reason, value in (
            ("queue_full", stats.dropped_queue_full),
            ("shutdown", stats.dropped_shutdown),
            ("abandoned", stats.abandoned),
            ("oversize", stats.oversize),
        ):
            dropped.add_metric([reason], value)
        yield dropped
        discarded = CounterMetricFamily(
            "shadowroute_discarded",
            "Accepted captures that will not be stored, by reason (see Stats.ledger).",
            labels=["reason"],
        )
        for reason in DISCARD_REASONS:
            discarded.add_metric([reason], stats.discarded[reason])
        yield discarded
        errors = CounterMetricFamily(
            "shadowroute_candidate_errors", "Failed candidate calls, by kind.", labels=["kind"]
        )
        for kind, value in sorted(stats.candidate_errors.items()):
            errors.add_metric([kind], value)
        yield errors
        redactions = CounterMetricFamily(
            "shadowroute_redactions", "Strings replaced before storage, by redactor.",
            labels=["redactor"],
        )
        for name, value in sorted(stats.redactions.items()):
            redactions.add_metric([name], value)
        yield redactions
        yield from _routed(stats)
        for name, value, doc in (
            ("queue_depth", stats.queue_depth, "Captures waiting for a mirror worker."),
            ("spool_pending", stats.spool_pending, "Exchanges waiting in the disk spool."),
        ):
            gauge = GaugeMetricFamily(f"shadowroute_{name}", doc)
            gauge.add_metric([], value)
            yield gauge
        yield from _per_model(stats)


def _routed(stats: Stats) -> Iterator[Metric]:
    routed = CounterMetricFamily(
        "shadowroute_routed", "Calls of cascade and partial routes, by task type, the route's "
        "model and outcome (kept, escalated:<check>, primary, bypassed:<why>).",
        labels=["task", "model", "outcome"])
    escalations = CounterMetricFamily(
        "shadowroute_escalations", "Cascade calls answered by the primary because a check "
        "failed on the candidate's answer, by task type and check (error: the call failed).",
        labels=["task", "reason"])
    by_reason: Counter[tuple[str, str]] = Counter()
    for (task, model, outcome), n in sorted(dict(stats.routed).items()):  # a copy: atomic
        routed.add_metric([task, model, outcome], n)
        if outcome.startswith("escalated:"):
            by_reason[(task, outcome.removeprefix("escalated:"))] += n
    for (task, reason), n in sorted(by_reason.items()):
        escalations.add_metric([task, reason], n)
    yield from (routed, escalations)


def _per_model(stats: Stats) -> Iterator[Metric]:
    calls = CounterMetricFamily("shadowroute_model_calls",
                                "Finished calls by the mirror, per model (after retries).",
                                labels=["model"])
    errors = CounterMetricFamily("shadowroute_model_errors",
                                 "Failed calls per model, by kind.", labels=["model", "kind"])
    spend = CounterMetricFamily("shadowroute_model_spend_usd",
                                "Known cost of the answers, per model (unknown usage adds 0).",
                                labels=["model"])
    latency = HistogramMetricFamily("shadowroute_model_latency_seconds",
                                    "Latency of the mirror's calls, per model (retries included).",
                                    labels=["model"])
    for name, m in sorted(stats.models.items()):
        calls.add_metric([name], m.calls)
        for kind, n in sorted(m.errors.items()):
            errors.add_metric([name, kind], n)
        spend.add_metric([name], m.spend_usd)
        running, buckets = 0, []
        for bound, n in zip((*LATENCY_BUCKETS_S, float("inf")), m.buckets, strict=True):
            running += n
            buckets.append(("+Inf" if bound == float("inf") else str(bound), running))
        latency.add_metric([name], buckets, m.seconds_sum)
    yield from (calls, errors, spend, latency)


def collector(shadow: Any) -> StatsCollector:
    """A Prometheus collector for an in-process :class:`~shadowroute.Shadow` (or anything with
    ``.stats``): ``prometheus_client.REGISTRY.register(collector(shadow))`` and the app's own
    ``/metrics`` shows what the sidecar's does about its captures and model calls."""
    totals = getattr(shadow, "totals", None)
    return StatsCollector(totals if callable(totals) else shadow.stats)
