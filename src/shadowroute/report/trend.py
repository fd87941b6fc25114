"""Night by night: each task type x candidate's pass rate, the bound its verdict used and the
verdict itself over the stored report runs (:func:`shadowroute.store.queries.history
.decision_history`), with this report as the newest night.

A night is a UTC day: when several reports ran on one day, the last one stands for it (this
report replaces today's stored ones). A verdict change is marked on the first night of the new
verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Trend", "TrendPoint", "build_trends"]

MAX_NIGHTS = 60


@dataclass
class TrendPoint:
    night: str
    """The UTC date, ``YYYY-MM-DD``."""
    n: int
    pass_rate: float | None
    lower_bound: float | None
    """The lower bound the verdict used (always-valid unless ``[decision] sequential`` is off)."""
    verdict: str
    changed_from: str | None = None
    """The previous night's verdict, when this night's differs."""


@dataclass
class Trend:
    task: str
    model: str
    required_quality: float
    points: list[TrendPoint] = field(default_factory=list)

    @property
    def changes(self) -> list[TrendPoint]:
        return [p for p in self.points if p.changed_from is not None]


def _night(at: datetime) -> str:
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return f"{at.astimezone(UTC):%Y-%m-%d}"


def build_trends(
    history: Iterable[Mapping[str, Any]], tasks: list[Any], now: datetime,
) -> list[Trend]:
    """One :class:`Trend` per task type x candidate of this report (``tasks``: its
    :class:`~.build.TaskResult` list), from the stored ``history`` rows (oldest first) and this
    report's own decisions as of ``now``; at most :data:`MAX_NIGHTS` nights, the newest."""
    nights: dict[tuple[str, str], dict[str, TrendPoint]] = {}
    for row in history:
        if row.get("kind", "shadow") != "shadow":
            continue
        nights.setdefault((row["task_type"], row["model"]), {})[_night(row["created_at"])] = \
            TrendPoint(_night(row["created_at"]), int(row["n"] or 0), row["pass_rate"],
                       row["lower_bound"], row["verdict"])
    out = []
    for t in tasks:
        for c in t.candidates:
            points = nights.get((t.task, c.model), {})
            bound = c.sequential_lower if c.sequential_lower is not None else c.lower_bound
            points[_night(now)] = TrendPoint(_night(now), c.n, c.pass_rate, bound, c.verdict)
            ordered = [points[night] for night in sorted(points)][-MAX_NIGHTS:]
            for before, point in zip(ordered, ordered[1:], strict=False):
                if point.verdict != before.verdict:
                    point.changed_from = before.verdict
            out.append(Trend(t.task, c.model, t.policy["required_quality"], ordered))
    return out
