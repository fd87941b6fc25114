"""The report's window figures in a form that adds up: what :mod:`.queries.report` counts over
a span of exchanges, kept as sums (costs, counts), mergeable histograms (latency) and ranked
candidates for the worst examples, so the figures of several days add to the figures of the
days together (:mod:`.queries.days` stores one :class:`Figures` per UTC day).

Means and percentiles are worked out from the sums at the end (:meth:`Figures.finish`), the
same way whether the figures came from one query over the window or from daily rollups.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

__all__ = ["BUCKET_RATIO", "Figures", "Histogram", "LatencyKey", "Worst"]

BUCKET_RATIO = 1.01
"""A latency bucket's highest value is at most 1% above its lowest."""

_LOG_RATIO = math.log(BUCKET_RATIO)
_NOT_POSITIVE = -(10**9)
"""The bucket of values <= 0 (first in order)."""

LatencyKey = tuple[str, str | None]
"""(task, model), or (task, ``None``) for the primary."""

_TIMES = ("first", "last")


class Histogram:
    """Values in buckets 1% wide on a log scale, each holding (count, lowest, highest).

    A quantile is the nearest-rank value: exact when its bucket holds a single value (or
    equal values), otherwise interpolated between the bucket's lowest and highest, so within
    1% of the exact one."""

    __slots__ = ("buckets",)

    def __init__(self, buckets: dict[int, list[float]] | None = None) -> None:
        self.buckets: dict[int, list[float]] = buckets if buckets is not None else {}

    @staticmethod
    def bucket(value: float) -> int:
        return _NOT_POSITIVE if value <= 0 else math.floor(math.log(value) / _LOG_RATIO)

    def add(self, value: float, n: int = 1) -> None:
        self._add(self.bucket(value), n, value, value)

    def _add(self, b: int, n: float, lo: float, hi: float) -> None:
        cell = self.buckets.get(b)
        if cell is None:
            self.buckets[b] = [n, lo, hi]
        else:
            cell[0] += n
            cell[1], cell[2] = min(cell[1], lo), max(cell[2], hi)

    def merge(self, other: Histogram) -> None:
        for b, (n, lo, hi) in other.buckets.items():
            self._add(b, n, lo, hi)

    @property
    def count(self) -> int:
        return int(sum(cell[0] for cell in self.buckets.values()))

    def quantile(self, q: float) -> float | None:
        """The nearest-rank ``q`` quantile (the ``ceil(q * n)``-th value); ``None`` when empty."""
        n = self.count
        if not n:
            return None
        rank = max(1, (n * round(q * 1000) + 999) // 1000)
        seen = 0
        for b in sorted(self.buckets):
            c, lo, hi = self.buckets[b]
            if seen + c >= rank:
                k = rank - seen
                return lo if c == 1 else lo + (hi - lo) * (k - 1) / (c - 1)
            seen += int(c)
        return None  # pragma: no cover - rank <= n

    def to_json(self) -> list[list[float]]:
        return [[b, *cell] for b, cell in sorted(self.buckets.items())]

    @classmethod
    def from_json(cls, rows: Iterable[list[float]]) -> Histogram:
        return cls({int(b): [int(n), float(lo), float(hi)] for b, n, lo, hi in rows})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Histogram) and self.buckets == other.buckets

    def __repr__(self) -> str:
        return f"Histogram({self.buckets!r})"


class Worst(NamedTuple):
    """One of a candidate's worst outputs, with what ranks it: failed (``ok`` 0) before
    passed, then the lowest score ``value`` (``None`` last), then the output id."""

    task: str
    model: str
    output_id: str
    ok: int
    value: float | None

    def rank(self) -> tuple[Any, ...]:
        """The order :func:`~.queries.report.outcomes` ranks by, in SQL and here alike."""
        return (self.ok, self.value is None, self.value or 0.0, self.output_id)


@dataclass
class Figures:
    """What the report counts over a span of exchanges (shadow pairs unless said otherwise),
    keyed as :mod:`.queries.report` keys it. Add two with :meth:`add`; call :meth:`finish`
    once for the means, then read :meth:`percentiles`."""

    primaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Task -> exchanges, ``models`` (primary -> exchanges), cost_sum, costed, first, last."""
    outputs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(task, model) -> outputs, errors, cost_sum, costed, spend, first, last."""
    counts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    """(task, model) -> complete, counted, passed (current scores)."""
    worst: list[Worst] = field(default_factory=list)
    summaries: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    """(task, model, scorer) -> n, passed, failed, ignored, valued, value_sum, cost_usd,
    better, same, worse."""
    latency: dict[LatencyKey, Histogram] = field(default_factory=dict)
    similarity: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    schema: dict[str, dict[str, int]] = field(default_factory=dict)
    judging: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Task -> spend, calls, skipped (every route)."""
    not_carried: dict[tuple[str, str | None], dict[str, int]] = field(default_factory=dict)
    failures: dict[tuple[str, str], dict[str, dict[str, int]]] = field(default_factory=dict)
    sources: dict[str, dict[str, int]] = field(default_factory=dict)

    def tasks(self) -> list[str]:
        """The task types with candidate outputs (the ones whose scorers the figures use)."""
        return sorted({task for task, _ in self.outputs})

    @property
    def empty(self) -> bool:
        return not (self.primaries or self.outputs or self.judging)

    def add(self, other: Figures) -> None:
        """Add ``other`` (figures of other exchanges) to these."""
        for name in _SUMMED:
            mine, theirs = getattr(self, name), getattr(other, name)
            for key, value in theirs.items():
                mine[key] = _sum(mine[key], value) if key in mine else _copy(value)
        for key, hist in other.latency.items():
            self.latency.setdefault(key, Histogram()).merge(hist)
        self.worst.extend(other.worst)

    def finish(self, examples: int) -> None:
        """Means from the sums (``mean_cost``; a scorer's ``mean``, ``None`` without values) and
        the ``examples`` worst outputs per candidate."""
        for row in [*self.primaries.values(), *self.outputs.values()]:
            row["mean_cost"] = row["cost_sum"] / row["costed"] if row["costed"] else None
        for row in self.summaries.values():
            row["mean"] = row["value_sum"] / row["valued"] if row["valued"] else None
        kept: dict[tuple[str, str], int] = {}
        worst = []
        for item in sorted(self.worst, key=lambda w: (w.task, w.model, w.rank())):
            if kept.get((item.task, item.model), 0) < examples:
                kept[(item.task, item.model)] = kept.get((item.task, item.model), 0) + 1
                worst.append(item)
        self.worst = worst

    def percentiles(self, quantiles: Iterable[float]) -> dict[LatencyKey, dict[float, float]]:
        out: dict[LatencyKey, dict[float, float]] = {}
        for key, hist in self.latency.items():
            values = {q: hist.quantile(q) for q in quantiles}
            out[key] = {q: v for q, v in values.items() if v is not None}
        return out

    def summary_rows(self) -> list[dict[str, Any]]:
        """The per-scorer rows, as :func:`~.queries.scores.score_summary` returns them."""
        return [{"task": t, "model": m, "scorer": s, **row}
                for (t, m, s), row in sorted(self.summaries.items())]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: [[*_key(key), _plain(value)] for key, value in getattr(self, name).items()]
            for name in _SUMMED
        }
        out["latency"] = [[*key, hist.to_json()] for key, hist in self.latency.items()]
        out["worst"] = [list(w) for w in self.worst]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figures:
        out = cls()
        for name in _SUMMED:
            target = getattr(out, name)
            for *key, value in data.get(name, []):
                target[key[0] if len(key) == 1 else tuple(key)] = _times(value)
        out.latency = {(task, model): Histogram.from_json(rows)
                       for task, model, rows in data.get("latency", [])}
        out.worst = [Worst(*w) for w in data.get("worst", [])]
        return out


_SUMMED = ("primaries", "outputs", "counts", "summaries", "similarity", "schema", "judging",
           "not_carried", "failures", "sources")
"""The fields whose values add up key by key (see :func:`_sum`)."""


def _key(key: Any) -> list[Any]:
    return list(key) if isinstance(key, tuple) else [key]


def _sum(a: Any, b: Any, name: str = "") -> Any:
    """``a + b`` for counts and sums, element-wise for lists, key-wise for dicts; the earlier
    of two ``first`` times and the later of two ``last``."""
    if isinstance(a, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _sum(out[key], value, key) if key in out else _copy(value)
        return out
    if isinstance(a, list):
        return [x + y for x, y in zip(a, b, strict=True)]
    if name in _TIMES:
        if a is None or b is None:
            return a if b is None else b
        return min(a, b) if name == "first" else max(a, b)
    return a + b


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return list(value) if isinstance(value, list) else value


def _plain(value: Any) -> Any:
    """JSON-ready: times as ISO text."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value.isoformat() if isinstance(value, datetime) else value


def _times(value: Any) -> Any:
    """:func:`_plain` undone: ``first``/``last`` back to datetimes."""
    if isinstance(value, dict):
        return {k: (datetime.fromisoformat(v) if k in _TIMES and isinstance(v, str) else _times(v))
                for k, v in value.items()}
    return value
