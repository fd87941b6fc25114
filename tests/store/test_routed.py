"""What cascades and partial routes served, on its way to ``routed_daily``: merged in the
writer, stored as increments (SQLite and Postgres), spooled while the database is down and
drained later, and read back per (task type, model) by :func:`routed_counts`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest

from shadowroute.records import RoutedRecord, TrafficRecord
from shadowroute.stats import Stats
from shadowroute.store import BatchWriter, Spool, Store, make_engine
from shadowroute.store.queries.routed import routed_counts
from shadowroute.store.spool import _read

pytestmark = pytest.mark.anyio

DAY = date(2026, 12, 3)


async def counts(store: Store, since: date | datetime | None = None):
    async with store.connect() as conn:
        return await routed_counts(conn, since)


async def test_routed_counts_are_stored_as_increments_and_read_per_task_and_model(
    store: Store,
) -> None:
    await store.write([], [RoutedRecord(DAY, "extract", "small", "kept", 10),
                           RoutedRecord(DAY, "extract", "small", "escalated:schema", 2),
                           TrafficRecord(DAY, "extract", "frontier", 12, 0)])
    await store.write([], [RoutedRecord(DAY, "extract", "small", "kept", 5),
                           RoutedRecord(DAY, "extract", "small", "kept", 1),
                           RoutedRecord(DAY + timedelta(days=1), "extract", "small", "kept", 4),
                           RoutedRecord(DAY, "summarize", "tiny", "primary", 7),
                           RoutedRecord(DAY, "summarize", "tiny", "bypassed:stream", 0)])
    assert await counts(store) == {
        ("extract", "small"): {"kept": 20, "escalated:schema": 2},
        ("summarize", "tiny"): {"primary": 7}}
    later = {("extract", "small"): {"kept": 4}}
    assert await counts(store, DAY + timedelta(days=1)) == later
    # A datetime counts from its UTC day (23:30 at UTC-2 is the next day in UTC).
    evening = datetime(2026, 12, 3, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    assert await counts(store, evening) == later
    assert await counts(store, datetime(2026, 12, 3, 23, 30, tzinfo=UTC)) == await counts(store)
    assert (await store.counts())["tasks"]["extract"]["requests"] == 12  # traffic as before


def test_the_spool_keeps_routed_counts_apart_from_traffic(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    counts_ = [TrafficRecord(DAY, "extract", "frontier", 3, 1),
               RoutedRecord(DAY, "extract", "small", "escalated:error", 2)]
    spool.append([], counts_)
    [path] = list(tmp_path.glob("*.jsonl"))
    assert _read(path).traffic == counts_
    # A file spooled before routed counts existed reads as it did.
    old = tmp_path / "00000000000000000001-1-00000000.jsonl"
    old.write_text('{"spool": 1, "exchanges": 0, "traffic": 1}\n'
                   '{"day": "2026-12-03", "task_type": "t", "primary_model": "m", '
                   '"requests": 4, "sampled": 1, "not_shadowable": 0}\n')
    assert _read(old).traffic == [TrafficRecord(DAY, "t", "m", 4, 1, 0)]


async def test_the_writer_merges_routed_counts_and_spools_them_while_the_database_is_down(
    tmp_path: Path, db_url: str,
) -> None:
    errors: list[tuple[str, BaseException]] = []
    (tmp_path / "file").write_text("")
    broken = Store(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'file' / 'x.db'}"))
    spool = Spool(tmp_path / "spool")
    writer = BatchWriter(broken, spool, batch_size=10, flush_interval_s=0.02,
                         retry_interval_s=0.05, stats=Stats(),
                         on_error=lambda where, exc: errors.append((where, exc)))
    send, receive = anyio.create_memory_object_stream(10)
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run, receive)
        writer.add_routed(RoutedRecord(DAY, "extract", "small", "kept", 1))
        writer.add_routed(RoutedRecord(DAY, "extract", "small", "kept", 1))
        writer.add_routed(RoutedRecord(DAY, "extract", "small", "escalated:schema", 1))
        with anyio.fail_after(5):
            while not spool.pending_batches():
                await anyio.sleep(0.01)
        async with await Store.open(db_url) as working:
            writer.store = working
            with anyio.fail_after(5):
                while spool.pending_batches():
                    await anyio.sleep(0.01)
            await send.aclose()
            assert await counts(working) == {
                ("extract", "small"): {"kept": 2, "escalated:schema": 1}}
    await broken.close()
    assert errors and errors[0][0] == "store"
