"""Which exchanges a report's aggregate reads: all of them, those created since a moment, or a
:class:`Span` of time ranges (the days the daily rollups do not cover, :mod:`.days`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, true

__all__ = ["Since", "Span", "within"]


@dataclass(frozen=True)
class Span:
    """Exchanges created in any of ``ranges``, each half-open ``[start, end)`` (``None``: no
    bound on that side). No range: no exchange."""

    ranges: tuple[tuple[datetime | None, datetime | None], ...]

    @property
    def empty(self) -> bool:
        return not self.ranges


Since = datetime | Span | None
"""``None``: every exchange; a ``datetime``: those created at or after it; a :class:`Span`."""


def within(column: Any, since: Since) -> list[ColumnElement[bool]]:
    """The conditions on ``column`` (an exchange's ``created_at``) that ``since`` sets."""
    if since is None:
        return []
    if isinstance(since, datetime):
        return [column >= since]
    parts = []
    for start, end in since.ranges:
        bounds = [*([column >= start] if start is not None else []),
                  *([column < end] if end is not None else [])]
        parts.append(and_(*bounds) if bounds else true())
    if not parts:
        return [false()]
    return [parts[0] if len(parts) == 1 else or_(*parts)]
