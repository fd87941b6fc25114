"""``Store.write`` has two paths to the same rows: on Postgres with psycopg, ``COPY`` (straight
into the tables, or through temporary tables and ``INSERT ... SELECT ... ON CONFLICT DO
NOTHING`` when a row is stored already; about half the CPU, see ``bench/scale.py``);
elsewhere ``executemany``. What the fast path must get right, and the proof that every path
stores the same thing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import create_async_engine

from shadowroute.records import CandidateOutputRecord, ExchangeRecord
from shadowroute.store import CandidateOutput, Exchange, Store
from shadowroute.store.models import dumps_json
from shadowroute.store.store import WRITE_SLICE_ROWS

pytestmark = pytest.mark.anyio

AWKWARD = "tab\there, line\nbreak, cr\r, back\\slash, \\N, \\., quote \" ' , ünï ✓"
"""Text that ``COPY``'s text format must escape (``\\N`` is its NULL marker)."""


def awkward_exchange(latency_ms: float = 0.1 + 0.2) -> ExchangeRecord:
    x = ExchangeRecord(
        task_type="task\twith tab", primary_model="big",
        request={"messages": [{"role": "user", "content": AWKWARD}], "temperature": 0.5},
        primary_output=AWKWARD, input_tokens=12, output_tokens=0, latency_ms=latency_ms,
        cost_usd=None, metadata={"k\n": [AWKWARD, None, 1.5]}, not_carried=["a\tb"],
        source="import:a b.jsonl", created_at=datetime(2024, 5, 17, 9, 30),  # naive: UTC
    )
    x.outputs.append(CandidateOutputRecord(x.id, "mini", "", latency_ms=3.0, cost_usd=0.0,
                                           finish_reason="length", not_carried=[]))
    x.outputs.append(CandidateOutputRecord(x.id, "tiny", None, error_kind="timeout",
                                           error=AWKWARD, attempts=3))
    return x


def row(obj: Any) -> dict[str, Any]:
    """A stored row's columns, ids left out (NaN made comparable)."""
    out = {}
    for attr in inspect(type(obj)).column_attrs:
        name, value = attr.columns[0].name, getattr(obj, attr.key)
        if name not in ("id", "exchange_id"):
            out[name] = "NaN" if isinstance(value, float) and value != value else value
    return out


async def read_back(store: Store, exchange_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    async with store.session() as s:
        x = await s.scalar(select(Exchange).where(Exchange.id == exchange_id))
        outputs = (await s.scalars(select(CandidateOutput).where(
            CandidateOutput.exchange_id == exchange_id).order_by(CandidateOutput.model))).all()
    assert x is not None
    return row(x), [row(o) for o in outputs]


async def test_awkward_values_come_back_as_written(store: Store) -> None:
    x = awkward_exchange()
    await store.write([x])
    got, (mini, tiny) = await read_back(store, x.id)
    assert (got["task_type"], got["primary_output"], got["source"]) == (
        "task\twith tab", AWKWARD, "import:a b.jsonl")
    assert got["request"] == x.request and got["metadata"] == {"k\n": [AWKWARD, None, 1.5]}
    assert got["created_at"] == datetime(2024, 5, 17, 9, 30, tzinfo=UTC)
    assert (got["latency_ms"], got["cost_usd"], got["not_carried"]) == (0.1 + 0.2, None, ["a\tb"])
    assert (mini["output"], mini["finish_reason"], mini["not_carried"]) == ("", "length", None)
    assert (tiny["output"], tiny["error"], tiny["attempts"]) == (None, AWKWARD, 3)


def copy_of(x: ExchangeRecord, digit: str) -> ExchangeRecord:
    """``x`` with other ids."""
    xid = digit * 32
    return dataclasses.replace(x, id=xid, outputs=[
        dataclasses.replace(o, id=f"{o.model:{digit}>32}", exchange_id=xid) for o in x.outputs])


@pytest.mark.postgres
async def test_copy_and_executemany_store_the_same_rows(postgres_url: str) -> None:
    """The same records through each path read back identical, column by column: COPY
    straight into the tables (a new batch), COPY through the temporary tables (a batch with
    a row stored already), and executemany (the second store is forced onto it). A naive
    timestamp is UTC on all three even when the session's time zone is not (COPY would
    otherwise read it in the session's zone)."""
    engine = create_async_engine(postgres_url, json_serializer=dumps_json,
                                 connect_args={"options": "-c TimeZone=Asia/Tokyo"})
    async with Store(engine) as fast, Store(create_async_engine(
            postgres_url, json_serializer=dumps_json)) as plain:
        assert fast._copy is not None
        plain._copy = None
        x = awkward_exchange(latency_ms=float("nan"))  # NaN: Postgres keeps it, SQLite cannot
        await fast.write([x])  # new rows: straight in
        await fast.write([x, copy_of(x, "e")])  # one row there already: the temporary tables
        await plain.write([copy_of(x, "f")])
        rows = [await read_back(fast, xid) for xid in (x.id, "e" * 32, "f" * 32)]
        assert rows[0] == rows[1] == rows[2]
        assert rows[0][0]["created_at"] == datetime(2024, 5, 17, 9, 30, tzinfo=UTC)


async def test_an_exchange_listed_twice_in_one_batch_is_stored_once(store: Store, exchange) -> None:
    x = exchange()
    await store.write([x, x, exchange()])
    async with store.session() as s:
        assert len((await s.scalars(select(Exchange.id))).all()) == 2
        assert len((await s.scalars(select(CandidateOutput.id))).all()) == 4


class Probe:
    """Not JSON: serialised through ``str()``, so it counts the requests converted so far."""

    converted = 0

    def __str__(self) -> str:
        Probe.converted += 1
        return "probe"


async def test_a_large_batch_gives_the_event_loop_a_turn_per_slice(store: Store, exchange) -> None:
    """The sidecar's production calls share the writer's event loop: a 500-exchange batch
    must not hold it while all its rows are converted and sent, only one slice at a time."""
    batch = [exchange(request={"messages": [], "probe": Probe()}) for _ in range(500)]
    seen: list[int] = []  # requests converted, at each turn another task got
    writing = True

    async def other_task() -> None:
        while writing:
            seen.append(Probe.converted)
            await anyio.lowlevel.checkpoint()

    Probe.converted = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(other_task)
        await anyio.lowlevel.checkpoint()
        await store.write(batch)
        writing = False
    assert Probe.converted == 500
    held = max(b - a for a, b in zip([0, *seen], [*seen, 500], strict=True))
    assert held <= WRITE_SLICE_ROWS
