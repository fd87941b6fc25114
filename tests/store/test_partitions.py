"""Monthly partitions on Postgres (:mod:`shadowroute.store.partitions`): made by the upgrade for
every stored month and ahead, rows of a month without one kept in the default partition, and a
job that cannot take the lock to make months ahead goes on."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from shadowroute.records import utcnow
from shadowroute.store import Store, migrate
from shadowroute.store import partitions as parts
from shadowroute.store.engine import make_engine
from shadowroute.store.models import CandidateOutput, Exchange
from shadowroute.store.partitions import (
    begins,
    ensure_partitions,
    keep_ahead,
    month_partitions,
    month_start,
    next_month,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def at(month: date, days: int = 0) -> datetime:
    return begins(month) + timedelta(days=days)


async def homes(store: Store, table: str, key: str) -> dict[str, str]:
    """Each row's partition, by id."""
    async with store.connect() as conn:
        rows = await conn.execute(text(f"SELECT {key}, tableoid::regclass::text FROM {table}"))
        return {row[0]: row[1] for row in rows}


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_the_upgrade_moves_every_row_into_its_months_partition(
    empty_db_url: str, exchange: Any,
) -> None:
    """A store of revision 0014 with exchanges of three months: after the upgrade each
    exchange, output and score is in its exchange's month's partition (the months from the
    oldest exchange's to two ahead), nothing lost, and the store reads and writes as before."""
    await migrate(empty_db_url, "0014")
    this = month_start(utcnow())
    oldest = month_start(at(this) - timedelta(days=50))
    times = [at(oldest, 3), at(next_month(oldest), 10), utcnow()]
    engine = make_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            for i, when in enumerate(times):
                await conn.execute(text(
                    "INSERT INTO exchanges (id, created_at, task_type, primary_model, request, "
                    "primary_output, metadata, route) VALUES (:id, :at, 'classify', 'big', "
                    "'{}', 'a', '{}', 'shadow')"), {"id": f"x{i}", "at": when})
                await conn.execute(text(
                    "INSERT INTO candidate_outputs (id, exchange_id, model, output, attempts, "
                    "created_at) VALUES (:id, :x, 'mini', 'a', 1, :at)"),
                    {"id": f"o{i}", "x": f"x{i}", "at": utcnow()})
                await conn.execute(text(
                    "INSERT INTO scores (output_id, scorer, version, value, passed, details, "
                    "cost_usd, created_at) VALUES (:o, 'exact', '1', 1, true, '{}', 0, :at)"),
                    {"o": f"o{i}", "at": utcnow()})
    finally:
        await engine.dispose()
    await migrate(empty_db_url)
    async with await Store.open(empty_db_url) as store:
        async with store.connect() as conn:
            months = await month_partitions(conn)
        expected = [oldest]
        while len(expected) < 5:  # oldest, the next, this month, two ahead
            expected.append(next_month(expected[-1]))
        assert months == expected
        for table, key in (("exchanges", "id"), ("candidate_outputs", "exchange_id"),
                           ("scores", "output_id")):
            placed = await homes(store, table, key)
            assert len(placed) == 3, table
            for i, when in enumerate(times):
                row = f"x{i}" if key != "output_id" else f"o{i}"
                assert placed[row] == f"{table}_y{when.year:04d}m{when.month:02d}", (table, row)
        another = exchange()
        await store.write([another])
        await store.write([another])  # stored once
        async with store.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(Exchange)) == 4
            assert await conn.scalar(select(func.count()).select_from(CandidateOutput)) == (
                3 + len(another.outputs))


async def test_a_month_without_a_partition_is_kept_in_the_default_one(
    postgres_url: str, exchange: Any,
) -> None:
    """An exchange of a month no partition covers is stored (in the default partition); that
    month is then not made (Postgres would refuse it), and the rows stay readable."""
    far = month_start(at(month_start(utcnow())) + timedelta(days=400))
    async with await Store.open(postgres_url) as store:
        x = exchange()
        x.created_at = at(far, 5)
        await store.write([x])
        placed = await homes(store, "exchanges", "id")
        assert placed[x.id] == "exchanges_default"
        assert (await homes(store, "candidate_outputs", "exchange_id"))[x.id] == (
            "candidate_outputs_default")
        async with store.begin() as conn:
            made = await ensure_partitions(conn, now=at(far), ahead=1)
        assert made == [next_month(far)]  # ``far`` itself holds rows in the default
        async with store.connect() as conn:
            assert far not in await month_partitions(conn)
            assert await conn.scalar(select(Exchange.id).where(Exchange.id == x.id)) == x.id
        async with store.begin() as conn:  # leave the session's database as it was
            await parts.drop_month(conn, next_month(far))


async def test_a_job_that_cannot_lock_the_tables_goes_on_without_new_months(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """``keep_ahead`` (every ``score`` and ``prune``) waits :data:`LOCK_TIMEOUT` for the lock a
    new partition needs, then logs why and lets the job go on; the next run makes the month."""
    monkeypatch.setattr(parts, "LOCK_TIMEOUT", "200ms")
    this = month_start(utcnow())
    last = this
    for _ in range(parts.AHEAD):
        last = next_month(last)
    async with await Store.open(postgres_url) as store:
        async with store.begin() as conn:  # the furthest month ahead is missing
            await parts.drop_month(conn, last)
        engine = make_engine(postgres_url)
        try:
            async with engine.begin() as reader:  # a long read of the table
                await reader.execute(text("LOCK TABLE exchanges IN ACCESS SHARE MODE"))
                with caplog.at_level(logging.WARNING, logger="shadowroute"):
                    assert await keep_ahead(store) == []
        finally:
            await engine.dispose()
        assert "lock" in caplog.text and "the next run tries again" in caplog.text
        async with store.connect() as conn:
            assert last not in await month_partitions(conn)
        assert await keep_ahead(store) == [last]
        async with store.connect() as conn:
            assert last in await month_partitions(conn)
