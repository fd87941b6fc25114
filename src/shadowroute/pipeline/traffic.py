"""Daily production traffic per task type x primary model: calls seen and calls sampled; and
what cascades and partial routes served, per task type x route model x outcome.

What it promises: every production call the request path counts (sampled or not), and every
sampled call a worker found not shadowable, reaches the writer as a :class:`~shadowroute.records.TrafficRecord` for its UTC day, the report's base for
"share of traffic" and savings. Every outcome of a cascade or partial route the request path
counts (``Shadow.count_routed``: kept, escalated, sent to the primary, bypassed) reaches it as a
:class:`~shadowroute.records.RoutedRecord`, the report's base for the observed escalation rate.
Counts build up in memory, a dict update per call on the request path, and
:meth:`DailyTraffic.flush` hands them to the writer (which adds them up per day) every
``[store] flush_interval_s`` and once more when the workers stop, so the last counts go out
with the final batch.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import anyio

from ..records import RoutedRecord, TrafficRecord
from ..store import BatchWriter

__all__ = ["DailyTraffic"]


class DailyTraffic(dict[tuple[str, str], list[int]]):
    """(task, primary model) -> [requests, sampled, not shadowable] since the last flush, and
    :attr:`routed`: (task, route model, outcome) -> calls since the last flush.

    The request path (``Shadow.count_offer``, ``Shadow.count_routed``) adds to them in place,
    as plain dicts: no call beyond the lookup. Only the event loop's thread touches them.
    """

    __slots__ = ("routed",)

    def __init__(self) -> None:
        super().__init__()
        self.routed: Counter[tuple[str, str, str]] = Counter()

    def flush(self, writer: BatchWriter) -> None:
        """Hand the counts so far to ``writer`` (dated today, UTC) and start again from zero."""
        if not self and not self.routed:
            return
        today = datetime.now(UTC).date()
        for (task, model), (requests, sampled, not_shadowable) in self.items():
            writer.add_traffic(TrafficRecord(today, task, model, requests, sampled,
                                             not_shadowable))
        self.clear()
        for (task, model, outcome), calls in self.routed.items():
            writer.add_routed(RoutedRecord(today, task, model, outcome, calls))
        self.routed.clear()

    def count_not_shadowable(self, task: str, model: str) -> None:
        """A sampled call of ``task`` that depends on provider-side state (not mirrored)."""
        counts = self.get((task, model))
        if counts is None:
            counts = self[(task, model)] = [0, 0, 0]
        counts[2] += 1

    async def tick(self, writer: BatchWriter, interval_s: float) -> None:
        """Flush every ``interval_s`` until cancelled."""
        while True:
            await anyio.sleep(interval_s)
            self.flush(writer)
