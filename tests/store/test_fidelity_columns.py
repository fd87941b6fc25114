"""Migration 0005: what a translation could not carry, and the calls that could not be shadowed,
are stored (NULL when nothing was lost); spool files written before it still drain."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from shadowroute.records import CandidateOutputRecord, ExchangeRecord, TrafficRecord
from shadowroute.store import CandidateOutput, Exchange, Spool, Store, TrafficDaily

pytestmark = pytest.mark.anyio


def _exchange(not_carried: list[str] | None, output_not_carried: list[str] | None) -> ExchangeRecord:
    x = ExchangeRecord(task_type="t", primary_model="frontier",
                       request={"messages": [{"role": "user", "content": "hi"}]},
                       primary_output="hello", not_carried=not_carried)
    x.outputs.append(CandidateOutputRecord(exchange_id=x.id, model="small", output="hi",
                                           not_carried=output_not_carried))
    return x


async def test_not_carried_settings_are_stored_and_none_is_null(store: Store) -> None:
    lossy, clean = _exchange(["reasoning.summary"], ["thinking", "n"]), _exchange(None, None)
    day = date(2026, 12, 3)
    await store.write([lossy, clean], [TrafficRecord(day, "t", "frontier", 5, 4, 1),
                                       TrafficRecord(day, "t", "frontier", 2, 2, 2)])
    async with store.session() as session:
        carried = dict((await session.execute(
            select(Exchange.id, Exchange.not_carried))).all())
        outputs = dict((await session.execute(
            select(CandidateOutput.exchange_id, CandidateOutput.not_carried))).all())
        nulls = (await session.scalars(
            select(Exchange.id).where(Exchange.not_carried.is_(None)))).all()
        (traffic,) = (await session.scalars(select(TrafficDaily))).all()
    assert carried == {lossy.id: ["reasoning.summary"], clean.id: None}
    assert outputs == {lossy.id: ["thinking", "n"], clean.id: None}
    assert nulls == [clean.id]  # SQL NULL, so "IS NULL" finds it
    assert (traffic.requests, traffic.sampled, traffic.not_shadowable) == (7, 6, 3)


async def test_a_spool_file_written_before_the_new_fields_still_drains(
    store: Store, tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([_exchange(["x"], None)], [TrafficRecord(date(2026, 12, 1), "t", "m", 3, 1, 1)])
    (path,) = (tmp_path / "spool").glob("*")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines[1:]:  # as an earlier version wrote them: without the new keys
        line.pop("not_carried", None)
        line.pop("not_shadowable", None)
        for output in line.get("outputs", []):
            output.pop("not_carried", None)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert await spool.drain(store) == 1
    async with store.session() as session:
        (exchange,) = (await session.scalars(select(Exchange))).all()
        (traffic,) = (await session.scalars(select(TrafficDaily))).all()
    assert exchange.not_carried is None and traffic.not_shadowable == 0
