"""Counters for everything shadowroute did, skipped or dropped: failures are visible, never silent."""

from __future__ import annotations

import copy
from bisect import bisect_left
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LATENCY_BUCKETS_S", "ModelStats", "Stats"]

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
"""Upper bounds of the per-model latency histogram (seconds; one more bucket: +Inf)."""


@dataclass
class ModelStats:
    """One model's calls, as the mirror made them."""

    calls: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    """Failed calls by kind (``timeout``, ``rate_limited``, ``server_error``, ...)."""
    seconds_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    """Calls per latency bucket (not cumulative; the last is above every bound)."""
    spend_usd: float = 0.0
    """Known cost of its answers (unknown usage adds nothing)."""

    def add(self, error_kind: str | None, seconds: float, cost_usd: float | None) -> None:
        self.calls += 1
        if error_kind is not None:
            self.errors[error_kind] += 1
        self.seconds_sum += seconds
        self.buckets[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        if cost_usd:
            self.spend_usd += cost_usd

    def merge(self, other: ModelStats) -> None:
        """Add ``other``'s calls (the same model, counted in another process)."""
        self.calls += other.calls
        self.errors.update(other.errors)
        self.seconds_sum += other.seconds_sum
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.spend_usd += other.spend_usd


@dataclass
class Stats:
    """Process-wide counters of one :class:`~shadowroute.Shadow`.

    Every capture offered ends in exactly one of: not sampled, primary error, dropped (queue
    full or shutdown), capture error, reverse shadow failed, redaction failed, or stored /
    spooled. From the moment a capture is accepted onto the queue (``enqueued``), :meth:`ledger`
    accounts for it: stored, spooled, forwarded, discarded by policy (``discarded``), or lost.
    ``candidate_errors`` counts failed candidate calls by kind; those are stored too, as part
    of the exchange.
    """

    offered: int = 0
    """Production calls seen."""
    sampled: int = 0
    not_sampled: int = 0
    primary_errors: int = 0
    """The primary call raised; it was re-raised to the caller and not mirrored."""
    enqueued: int = 0
    dropped_queue_full: int = 0
    dropped_shutdown: int = 0
    cut_shutdown: int = 0
    """In-flight captures whose candidate calls were cancelled at the shutdown deadline; their
    exchange is stored without the unfinished answers."""
    capture_errors: int = 0
    """A capture could not be built or mirrored because of an internal error (see ``on_error``)."""
    skipped_settled: int = 0
    """Candidate calls not made: the candidate's verdict is settled and this exchange was not
    drawn for its maintenance rate (``[decision] maintenance_rate``)."""
    skipped_allocated: int = 0
    """Candidate calls not made: the candidate is undecided but unlikely to pass and this
    exchange was not drawn for its share (``[decision] allocation_floor``)."""
    skipped_retired: int = 0
    """Candidate calls not made: the candidate was retired (``shadowroute retire``)."""
    telemetry_errors: int = 0
    """OpenTelemetry span handling failed (swallowed: the call or capture went on; see
    :mod:`shadowroute.telemetry`)."""
    abandoned: int = 0
    """Sampled responses the caller closed before reading to the end; not captured."""
    oversize: int = 0
    """Sampled responses larger than the transport's capture limit; not captured."""
    mirrored: int = 0
    candidate_calls: int = 0
    candidate_errors: Counter[str] = field(default_factory=Counter)
    skipped_budget: int = 0
    skipped_circuit_open: int = 0
    primary_replays: int = 0
    """Exchanges on which the primary was called again for the noise floor (``primary@replay``)."""
    replay_unavailable: int = 0
    """Noise-floor replays not made because the primary model is not declared under [models]."""
    reverse_shadows: int = 0
    """Calls served by a promoted model whose request was also answered by the primary it
    replaced (the reverse shadow), ready to store."""
    reverse_failed: int = 0
    """Reverse shadows not stored: the primary's answer, the reference, could not be had
    (its call failed, its circuit was open, its task's budget was spent, or it is not declared
    under [models])."""
    discarded: Counter[str] = field(default_factory=Counter)
    """Accepted captures (``enqueued``) that will not be stored, by reason: ``shutdown`` (still
    queued, or being forwarded, at the shutdown deadline), ``capture_error`` (the primary's
    response could not be read), ``redaction_error``, ``reverse_failed``, ``not_shadowable``
    (the call depends on state its provider keeps: see ``not_shadowable``)."""
    not_shadowable: Counter[str] = field(default_factory=Counter)
    """Sampled calls not mirrored, by the feature that makes them depend on provider-side
    state (``previous_response_id``, ``conversation``, a server-side tool, ...)."""
    lost_exchanges: int = 0
    """Exchanges neither stored nor spooled: the database and the spool's disk both failed at
    shutdown (logged as an error)."""
    redactions: Counter[str] = field(default_factory=Counter)
    """Strings replaced before storage, by redactor name (``[redaction]``)."""
    redaction_errors: int = 0
    """Captures dropped because redaction failed (a hook raised): never stored unredacted."""
    stored_exchanges: int = 0
    stored_outputs: int = 0
    spooled_exchanges: int = 0
    replayed_exchanges: int = 0
    store_errors: int = 0
    forwarded: int = 0
    """Remote mode: captures accepted by the sidecar."""
    dropped_forward: int = 0
    """Remote mode: captures given up after the sidecar failed twice to take them."""
    mirror_process_exits: int = 0
    """The sidecar's mirror process ended without being asked to (``[sidecar] mirror_process``);
    another was started. Captures it held are counted as lost in the ledger."""
    spool_pending: int = 0
    """Exchanges waiting in the spool for the database to come back (a gauge)."""
    queue_depth: int = 0
    """Captures waiting for a mirror worker (a gauge)."""
    routed: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Calls of cascade and partial routes, by (task type, the route's model, outcome):
    ``kept``, ``escalated:<check>``, ``primary``, ``bypassed:<why>`` (see
    :class:`~shadowroute.records.RoutedRecord`); also stored per day (``routed_daily``)."""
    models: dict[str, ModelStats] = field(default_factory=dict)
    """Per model called by the mirror (candidates, noise-floor replays, reverse shadows): its
    calls, errors by kind, latency and spend."""

    def model_result(self, model: str, error_kind: str | None, seconds: float,
                     cost_usd: float | None) -> None:
        """One finished call of ``model`` (after its retries): counted, timed and priced."""
        stats = self.models.get(model)
        if stats is None:
            stats = self.models[model] = ModelStats()
        stats.add(error_kind, seconds, cost_usd)

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_shutdown + self.dropped_forward

    def ledger(self) -> dict[str, int]:
        """Where every accepted capture went. ``pending`` is still queued, in flight or in the
        writer's hands; once the pipeline has stopped it is 0, else those captures were lost
        without being counted anywhere."""
        done = {
            "stored": self.stored_exchanges,
            "spooled": self.spooled_exchanges,
            "forwarded": self.forwarded,
            "discarded": sum(self.discarded.values()) + self.dropped_forward,
            "lost": self.lost_exchanges,
        }
        return {"accepted": self.enqueued, **done, "pending": self.enqueued - sum(done.values())}

    def ledger_line(self) -> str:
        """The ledger in one line, e.g. for the sidecar's last words."""
        ledger = self.ledger()
        reasons = Counter(self.discarded)
        if self.dropped_forward:
            reasons["forward_failed"] = self.dropped_forward
        why = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()) if n)
        return (
            f"captures accepted {ledger['accepted']}: stored {ledger['stored']}, "
            f"spooled {ledger['spooled']}, forwarded {ledger['forwarded']}, "
            f"discarded {ledger['discarded']}{f' ({why})' if why else ''}, "
            f"lost {ledger['lost'] + ledger['pending']}; "
            f"not accepted: queue full {self.dropped_queue_full}"
        )

    def capture_failed(self) -> None:
        """An accepted capture that could not be read or mirrored: counted, and discarded
        (``capture_error``) in the ledger."""
        self.capture_errors += 1
        self.discarded["capture_error"] += 1

    def plus(self, other: Stats) -> Stats:
        """A new :class:`Stats` adding ``other``'s counts to these (gauges added too)."""
        out = copy.deepcopy(self)
        for name, value in vars(other).items():
            mine = getattr(out, name)
            if name == "models":
                for model, theirs in value.items():
                    mine.setdefault(model, ModelStats()).merge(theirs)
            elif isinstance(mine, Counter):
                mine.update(value)
            else:
                setattr(out, name, mine + value)
        return out

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Stats:
        """The :class:`Stats` a :meth:`snapshot` was taken of (its JSON round trip included)."""
        fields = {name: value for name, value in data.items()
                  if name in cls.__dataclass_fields__}
        for name in ("candidate_errors", "redactions", "discarded", "not_shadowable"):
            fields[name] = Counter(fields.get(name) or {})
        fields["routed"] = Counter({(r["task"], r["model"], r["outcome"]): r["calls"]
                                    for r in fields.get("routed") or ()})
        fields["models"] = {name: ModelStats(calls=m["calls"], errors=Counter(m["errors"]),
                                             seconds_sum=m["seconds_sum"],
                                             buckets=list(m["buckets"]),
                                             spend_usd=m["spend_usd"])
                            for name, m in (fields.get("models") or {}).items()}
        return cls(**fields)

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        data["candidate_errors"] = dict(self.candidate_errors)
        data["redactions"] = dict(self.redactions)
        data["discarded"] = dict(self.discarded)
        data["not_shadowable"] = dict(self.not_shadowable)
        data["routed"] = [{"task": t, "model": m, "outcome": o, "calls": n}
                          for (t, m, o), n in sorted(self.routed.items())]
        data["dropped"] = self.dropped
        data["ledger"] = self.ledger()
        data["models"] = {name: {**asdict(m), "errors": dict(m.errors)}
                          for name, m in self.models.items()}
        return data
