"""The stored pairs a cascade or a per-request rule is proven on: one row per output.

:func:`stored_pairs` returns, for one task type and candidate, every shadow output that holds
every current score (as the decision counts them, :mod:`.evidence`), oldest first, with what a
what-if needs: the request and its metadata (features), the candidate's stored answer, its
``finish_reason`` and whether the call failed (checks), its pass or failure, cost and
latency, the primary's cost and latency, and the noise-floor replay's pass or failure on the
same exchange.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ...records import NOISE_FLOOR_MODEL, ROUTE_SHADOW
from ..models import CandidateOutput, Exchange
from .evidence import _per_output
from .scores import Keys

__all__ = ["MAX_PAIRS", "StoredPair", "stored_pairs"]

MAX_PAIRS = 5_000
"""The most recent pairs a what-if reads per candidate: enough for bounds within a point or so
and a report that does not grow with the store (the requests are read whole)."""

_X = Exchange.__table__
_O = CandidateOutput.__table__


@dataclass(frozen=True, slots=True)
class StoredPair:
    exchange_id: str
    created_at: datetime
    request: dict[str, Any]
    """The canonical chat request."""
    metadata: dict[str, Any]
    output: str | None
    """The candidate's answer as stored (:func:`~shadowroute.formats.chat.parse_answer`)."""
    finish_reason: str | None
    error: bool
    """The candidate call failed."""
    ok: int | None
    """1 passed, 0 failed (a flipped judge verdict fails), ``None``: no scorer applied."""
    cost_usd: float | None
    latency_ms: float | None
    primary_cost_usd: float | None
    primary_latency_ms: float | None
    replay_ok: int | None
    """The same exchange's counted noise-floor replay: 1 passed, 0 failed, ``None``: none."""


def _ok(ok: Any, flipped: Any) -> int | None:
    if ok is None:
        return None
    return 0 if int(ok) == 0 or int(flipped or 0) == 1 else 1


async def stored_pairs(conn: AsyncConnection, task: str, keys: Keys, model: str,
                       since: datetime | None = None,
                       limit: int = MAX_PAIRS) -> list[StoredPair]:
    """``model``'s shadow outputs of ``task`` holding every key in ``keys`` (created since
    ``since``, or all; the ``limit`` most recent), oldest first (see the module docstring)."""
    if not keys:
        return []
    # Only the task's most recent exchanges are grouped (index ix_exchanges_task_type_created_at):
    # the per-output counts of a large store would cost far more than the rows kept.
    cut = await conn.scalar(
        select(_X.c.created_at).where(_X.c.task_type == task, _X.c.route == ROUTE_SHADOW)
        .order_by(_X.c.created_at.desc()).offset(limit).limit(1))
    if cut is not None:
        since = cut if since is None else max(since, cut)
    per = _per_output(task, keys, since, None, ROUTE_SHADOW)
    rep = per.alias("rep")
    query = (
        select(_X.c.id, _X.c.created_at, _X.c.request, _X.c["metadata"], _O.c.output,
               _O.c.finish_reason, _O.c.error_kind, per.c.ok, per.c.flipped, _O.c.cost_usd,
               _O.c.latency_ms, _X.c.cost_usd, _X.c.latency_ms, rep.c.ok, rep.c.flipped)
        .select_from(
            per.join(_X, (_X.c.id == per.c.exchange_id) & (_X.c.created_at == per.c.created_at))
            .join(_O, (_O.c.exchange_id == per.c.exchange_id)
                  & (_O.c.exchange_created_at == per.c.created_at) & (_O.c.model == per.c.model))
            .outerjoin(rep, (rep.c.exchange_id == per.c.exchange_id)
                       & (rep.c.model == NOISE_FLOOR_MODEL)))
        .where(per.c.model == model)
        .order_by(_X.c.created_at.desc(), _X.c.id.desc())
        .limit(limit)
    )
    out = []
    for row in reversed((await conn.execute(query)).all()):
        (xid, created, request, metadata, output, finish, error_kind, ok, flipped, cost,
         latency, p_cost, p_latency, r_ok, r_flipped) = row
        out.append(StoredPair(
            exchange_id=xid, created_at=created, request=request or {}, metadata=metadata or {},
            output=output, finish_reason=finish, error=error_kind is not None,
            ok=_ok(ok, flipped), cost_usd=cost, latency_ms=latency, primary_cost_usd=p_cost,
            primary_latency_ms=p_latency, replay_ok=_ok(r_ok, r_flipped)))
    return out
