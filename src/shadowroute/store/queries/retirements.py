"""Candidates retired from shadowing by hand, in the database.

    await record_retirement(store, task="classify", model="small", action="retire",
                            primary="big", actor="alice", reason="HOLD for weeks")
    await retired_models(store)   # {"classify": {"small": {"primary": "big", "by": "alice", ...}}}

Each ``shadowroute retire`` / ``resume`` appends a row; the state of a task type x candidate is
its latest row (by time, then id). Running pipelines read :func:`retired_models`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ..models import Retirement

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["ACTIONS", "record_retirement", "retired_models"]

ACTIONS = ("retire", "resume")
"""The values of ``retirements.action``."""

_T = Retirement.__table__


async def record_retirement(
    store: Store, *, task: str, model: str, action: str, primary: str | None, actor: str,
    reason: str | None, at: datetime | None = None,
) -> None:
    """Append one retire / resume of ``model`` on ``task`` (``at``: now unless given).
    ``primary``: the primary it is retired against (on a resume, that of the retirement it
    ends)."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    row = {"created_at": at or datetime.now(UTC), "task_type": task, "model": model,
           "action": action, "primary_model": primary, "actor": actor, "reason": reason}
    async with store.begin("record the retirement in") as conn:
        await conn.execute(_T.insert(), row)


async def retired_models(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    """Task type -> candidate -> ``{"primary", "by", "at" (ISO 8601), "reason"}`` for every
    pair whose latest row is a ``retire``; one query."""
    rank = func.row_number().over(
        partition_by=(_T.c.task_type, _T.c.model),
        order_by=(_T.c.created_at.desc(), _T.c.id.desc()),
    ).label("rank")
    latest = select(_T.c.task_type, _T.c.model, _T.c.action, _T.c.primary_model, _T.c.actor,
                    _T.c.created_at, _T.c.reason, rank).subquery()
    query = (select(latest).where(latest.c.rank == 1, latest.c.action == "retire")
             .order_by(latest.c.task_type, latest.c.model))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    async with store.connect("read the retirements in") as conn:
        for row in (await conn.execute(query)).mappings():
            out.setdefault(row["task_type"], {})[row["model"]] = {
                "primary": row["primary_model"], "by": row["actor"],
                "at": row["created_at"].isoformat(), "reason": row["reason"]}
    return out
