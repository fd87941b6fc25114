"""Stored exchanges: a builder of records, and readers of what a test's database holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from shadowroute.records import CandidateOutputRecord, ExchangeRecord
from shadowroute.store import CandidateOutput, Exchange, Store


def exchange(task: str = "classify", *, candidates: tuple[str, ...] = ("mini", "tiny"),
             **kw: Any) -> ExchangeRecord:
    """An exchange of primary ``big`` (10 + 2 tokens, 800 ms, $0.01) with one answer per
    candidate ("<model> says hi", 200 ms, $0.001); ``kw`` sets any other field."""
    x = ExchangeRecord(
        task_type=task,
        primary_model=kw.pop("primary_model", "big"),
        request=kw.pop("request", {"messages": [{"role": "user", "content": "hi"}]}),
        primary_output=kw.pop("primary_output", "hello"),
        input_tokens=10,
        output_tokens=2,
        latency_ms=kw.pop("latency_ms", 800.0),
        cost_usd=kw.pop("cost_usd", 0.01),
        **kw,
    )
    for model in candidates:
        x.outputs.append(
            CandidateOutputRecord(
                x.id, model, output=f"{model} says hi", latency_ms=200.0, cost_usd=0.001
            )
        )
    return x


async def stored(url: str) -> tuple[list[Exchange], list[CandidateOutput]]:
    """(every exchange, oldest first; every candidate output) in the database at ``url``."""
    async with await Store.open(url) as store, store.session() as session:
        exchanges = list((await session.scalars(select(Exchange).order_by(Exchange.created_at))).all())
        outputs = list((await session.scalars(select(CandidateOutput))).all())
    return exchanges, outputs


async def stored_counts(store: Store) -> tuple[int, int]:
    """(exchanges, candidate outputs) in an open store."""
    async with store.session() as s:
        n_x = await s.scalar(select(func.count()).select_from(Exchange))
        n_o = await s.scalar(select(func.count()).select_from(CandidateOutput))
    return n_x, n_o


async def stored_text(url: str) -> str:
    """Every row of every table, as text (to look for secrets)."""
    async with await Store.open(url) as store, store.session() as session:
        parts = []
        for table in ("exchanges", "candidate_outputs", "traffic_daily"):
            parts.append(repr((await session.execute(text(f"SELECT * FROM {table}"))).all()))
    return "\n".join(parts)
