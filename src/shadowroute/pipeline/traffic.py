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
from typing import Any

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
        traffic, routed = self.take()
        for task, model, requests, sampled, not_shadowable in traffic:
            writer.add_traffic(TrafficRecord(today, task, model, requests, sampled,
                                             not_shadowable))
        for task, model, outcome, calls in routed:
            writer.add_routed(RoutedRecord(today, task, model, outcome, calls))

    def take(self) -> tuple[list[list[Any]], list[list[Any]]]:
        """The counts so far as plain lists (``[task, model, requests, sampled, not
        shadowable]`` and ``[task, model, outcome, calls]``), starting again from zero: what the
        sidecar hands its mirror process (:mod:`.handoff`)."""
        traffic = [[task, model, *counts] for (task, model), counts in self.items()]
        routed = [[*key, calls] for key, calls in self.routed.items()]
        self.clear()
        self.routed.clear()
        return traffic, routed

    def add(self, traffic: list[list[Any]], routed: list[list[Any]]) -> None:
        """Add counts :meth:`take` gave (in another process)."""
        for task, model, *counts in traffic:
            mine = self.setdefault((task, model), [0, 0, 0])
            for i, n in enumerate(counts):
                mine[i] += n
        for task, model, outcome, calls in routed:
            self.routed[(task, model, outcome)] += calls

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
