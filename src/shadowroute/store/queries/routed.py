"""What cascades and partial routes served, read back: the observed side of their promise.

``routed_daily`` holds, per UTC day, task type, the route's model and outcome, how many calls
the Router and the sidecar served that way (``kept``, ``escalated:<check>``, ``primary``,
``bypassed:<why>``; see :class:`~shadowroute.records.RoutedRecord`). The report sets the
observed escalation rate against the one the route promised (``evidence.promise`` in the route
map) from :func:`routed_counts`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..models import RoutedDaily

__all__ = ["routed_counts"]

_R = RoutedDaily.__table__


async def routed_counts(
    conn: AsyncConnection, since: date | datetime | None = None
) -> dict[tuple[str, str], dict[str, int]]:
    """(task type, model) -> outcome -> calls, summed over the days from ``since`` (its UTC
    day, included; ``None``: every day stored)::

        {("extract_order", "small"): {"kept": 812, "escalated:schema": 93, "bypassed:stream": 4}}
    """
    query = select(_R.c.task_type, _R.c.model, _R.c.outcome, func.sum(_R.c.calls)).group_by(
        _R.c.task_type, _R.c.model, _R.c.outcome).order_by(_R.c.task_type, _R.c.model,
                                                            _R.c.outcome)
    if since is not None:
        if isinstance(since, datetime):
            day = (since.astimezone(UTC) if since.tzinfo else since).date()
        else:
            day = since
        query = query.where(_R.c.day >= day)
    out: dict[tuple[str, str], dict[str, int]] = {}
    for task, model, outcome, calls in (await conn.execute(query)).all():
        if calls:
            out.setdefault((task, model), {})[outcome] = int(calls)
    return out
