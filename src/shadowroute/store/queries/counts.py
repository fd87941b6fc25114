"""What is stored, summed up: :meth:`Store.counts <shadowroute.store.Store.counts>` (the
``summary`` command and the demo) and :meth:`Store.spend_since
<shadowroute.store.Store.spend_since>` (the daily budgets)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select

from ..models import CandidateOutput, Exchange, TrafficDaily, exchange_of

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["candidate_spend_since", "stored_counts"]

_EXCHANGES = Exchange.__table__
_OUTPUTS = CandidateOutput.__table__
_TRAFFIC = TrafficDaily.__table__


async def stored_counts(store: Store) -> dict[str, Any]:
    """What is stored, per task type, for the summary command and the demo::

        {"exchanges": 120, "outputs": 240, "errors": 3,
         "tasks": {"classify_intent": {
             "exchanges": 120, "outputs": 240, "errors": {"timeout": 3},
             "requests": 1200, "sampled": 120,
             "primary": {"gpt-4o": {"exchanges": 120, "mean_latency_ms": 812.0,
                                    "cost_usd": 1.2}},
             "candidates": {"gpt-4o-mini": {"outputs": 120, "errors": 3,
                                            "mean_latency_ms": 301.5, "cost_usd": 0.04}}}},
         "traffic": {"classify_intent": {"requests": 1200, "sampled": 120}}}

    A candidate's mean latency counts successful calls only; ``None`` when there are none.
    """
    x, o, t = _EXCHANGES, _OUTPUTS, _TRAFFIC
    primary = select(
        x.c.task_type,
        x.c.primary_model,
        func.count(),
        func.avg(x.c.latency_ms),
        func.coalesce(func.sum(x.c.cost_usd), 0.0),
    ).group_by(x.c.task_type, x.c.primary_model).order_by(x.c.task_type, x.c.primary_model)
    candidates = (
        select(
            x.c.task_type,
            o.c.model,
            func.count(),
            func.count(o.c.error_kind),
            func.avg(case((o.c.error_kind.is_(None), o.c.latency_ms))),
            func.coalesce(func.sum(o.c.cost_usd), 0.0),
        )
        .join(x, exchange_of(o, x))
        .group_by(x.c.task_type, o.c.model)
        .order_by(x.c.task_type, o.c.model)
    )
    errors = (
        select(x.c.task_type, o.c.error_kind, func.count())
        .join(x, exchange_of(o, x))
        .where(o.c.error_kind.is_not(None))
        .group_by(x.c.task_type, o.c.error_kind)
        .order_by(x.c.task_type, o.c.error_kind)
    )
    traffic = select(t.c.task_type, func.sum(t.c.requests), func.sum(t.c.sampled)).group_by(
        t.c.task_type
    )
    async with store.connect() as conn:
        primary_rows = (await conn.execute(primary)).all()
        candidate_rows = (await conn.execute(candidates)).all()
        error_rows = (await conn.execute(errors)).all()
        traffic_rows = (await conn.execute(traffic)).all()

    tasks: dict[str, dict[str, Any]] = {}

    def task(name: str) -> dict[str, Any]:
        if name not in tasks:
            tasks[name] = {
                "exchanges": 0,
                "outputs": 0,
                "errors": {},
                "requests": 0,
                "sampled": 0,
                "primary": {},
                "candidates": {},
            }
        return tasks[name]

    for name, model, n, latency, cost in primary_rows:
        entry = task(name)
        entry["exchanges"] += n
        entry["primary"][model] = {
            "exchanges": n,
            "mean_latency_ms": _float(latency),
            "cost_usd": float(cost),
        }
    for name, model, n, failed, latency, cost in candidate_rows:
        entry = task(name)
        entry["outputs"] += n
        entry["candidates"][model] = {
            "outputs": n,
            "errors": failed,
            "mean_latency_ms": _float(latency),
            "cost_usd": float(cost),
        }
    for name, kind, n in error_rows:
        task(name)["errors"][kind] = n
    for name, requests, sampled in traffic_rows:
        entry = task(name)
        entry["requests"] = int(requests or 0)
        entry["sampled"] = int(sampled or 0)
    ordered = {name: tasks[name] for name in sorted(tasks)}
    return {
        "exchanges": sum(v["exchanges"] for v in ordered.values()),
        "outputs": sum(v["outputs"] for v in ordered.values()),
        "errors": sum(sum(v["errors"].values()) for v in ordered.values()),
        "tasks": ordered,
        "traffic": {
            name: {"requests": v["requests"], "sampled": v["sampled"]}
            for name, v in ordered.items()
            if v["requests"] or v["sampled"]
        },
    }

async def candidate_spend_since(store: Store, since: datetime) -> dict[str, float]:
    """Candidate spend (USD) per task type for outputs created at or after ``since``."""
    x, o = _EXCHANGES, _OUTPUTS
    query = (
        select(x.c.task_type, func.coalesce(func.sum(o.c.cost_usd), 0.0))
        .join(x, exchange_of(o, x))
        .where(o.c.created_at >= since)
        .group_by(x.c.task_type)
    )
    async with store.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {name: float(total) for name, total in rows}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
