"""Replayed batches change no count (issue 20). Exchanges and outputs were always skipped when
written again (by their ids); the counts (``traffic_daily``, ``routed_daily``) are increments,
so a batch written twice (a commit whose answer was lost, then the spooled copy replayed; a
crash between the commit and the spool file's deletion) added them twice. Now every batch the
writer forms carries an id, kept in its spool file, recorded in ``applied_batches`` in the
transaction that adds its counts: a second write adds none. SQLite and Postgres."""

from __future__ import annotations

import functools
import json
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from shadowroute.errors import StoreError
from shadowroute.records import ExchangeRecord, RoutedRecord, TrafficRecord
from shadowroute.stats import Stats
from shadowroute.store import BatchWriter, CandidateOutput, Exchange, Spool, Store
from shadowroute.store.models import AppliedBatch, RoutedDaily, TrafficDaily
from shadowroute.store.spool import _Corrupt, _read

pytestmark = pytest.mark.anyio

DAY = date(2026, 12, 4)
COUNTS = [TrafficRecord(DAY, "classify", "big", 10, 2, 1),
          RoutedRecord(DAY, "classify", "mini", "kept", 3)]
ONCE = ({(DAY, "classify", "big"): (10, 2, 1)}, {(DAY, "classify", "mini", "kept"): 3})
"""What ``COUNTS`` written once leaves in (traffic_daily, routed_daily)."""


async def stored(store: Store) -> dict[str, Any]:
    """Everything a batch can add: rows, counts, and the batch ids recorded."""
    async with store.session() as s:
        traffic = {(r.day, r.task_type, r.primary_model): (r.requests, r.sampled,
                                                           r.not_shadowable)
                   for r in (await s.scalars(select(TrafficDaily))).all()}
        routed = {(r.day, r.task_type, r.model, r.outcome): r.calls
                  for r in (await s.scalars(select(RoutedDaily))).all()}
        return {
            "exchanges": await s.scalar(select(func.count()).select_from(Exchange)),
            "outputs": await s.scalar(select(func.count()).select_from(CandidateOutput)),
            "counts": (traffic, routed),
            "batch_ids": set((await s.scalars(select(AppliedBatch.id))).all()),
        }


async def test_a_batch_written_twice_with_its_id_adds_its_counts_once(
    store: Store, exchange,
) -> None:
    batch = [exchange(), exchange()]
    await store.write(batch, COUNTS, batch_id="a" * 32)
    await store.write(batch, COUNTS, batch_id="a" * 32)
    assert await stored(store) == {"exchanges": 2, "outputs": 4, "counts": ONCE,
                                   "batch_ids": {"a" * 32}}
    # Another batch adds its counts; without an id (a direct caller) they are added every time.
    await store.write([], COUNTS, batch_id="b" * 32)
    await store.write([], COUNTS)
    await store.write([], COUNTS)
    assert (await stored(store))["counts"] == (
        {(DAY, "classify", "big"): (40, 8, 4)}, {(DAY, "classify", "mini", "kept"): 12})


async def test_the_same_batch_written_at_once_by_two_connections_adds_its_counts_once(
    db_url: str, exchange,
) -> None:
    batch = [exchange() for _ in range(3)]
    async with await Store.open(db_url) as one, await Store.open(db_url) as two:
        async with anyio.create_task_group() as tg:
            for store in (one, two):
                tg.start_soon(functools.partial(store.write, batch, COUNTS, batch_id="c" * 32))
        assert await stored(one) == {"exchanges": 3, "outputs": 6, "counts": ONCE,
                                     "batch_ids": {"c" * 32}}


async def test_a_spooled_batch_drained_twice_adds_its_counts_once(
    store: Store, tmp_path: Path, exchange,
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([exchange()], COUNTS, "d" * 32)
    (path,) = (tmp_path / "spool").glob("*.jsonl")
    saved = path.read_bytes()
    assert await spool.drain(store) == 1
    path.write_bytes(saved)  # a crash between the commit and the file's deletion: it is back
    assert await Spool(tmp_path / "spool").drain(store) == 1
    assert await stored(store) == {"exchanges": 1, "outputs": 2, "counts": ONCE,
                                   "batch_ids": {"d" * 32}}
    assert not list((tmp_path / "spool").iterdir())


class CommitsThenFails:
    """A store whose first write commits, then fails: the answer to its COMMIT was lost."""

    def __init__(self, store: Store) -> None:
        self.store, self.failures = store, 1

    async def write(self, exchanges: list[ExchangeRecord], traffic: Any = (),
                    *, batch_id: str | None = None) -> None:
        await self.store.write(exchanges, traffic, batch_id=batch_id)
        if self.failures:
            self.failures -= 1
            raise StoreError("cannot write: server closed the connection unexpectedly")


async def test_a_batch_committed_unseen_then_spooled_and_replayed_adds_its_counts_once(
    store: Store, tmp_path: Path, exchange,
) -> None:
    errors: list[tuple[str, BaseException]] = []
    writer = BatchWriter(CommitsThenFails(store), Spool(tmp_path / "spool"),  # type: ignore[arg-type]
                         batch_size=2, flush_interval_s=10.0, retry_interval_s=0.05,
                         stats=Stats(), on_error=lambda where, exc: errors.append((where, exc)))
    send, receive = anyio.create_memory_object_stream[ExchangeRecord](10)
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run, receive)
        writer.add_traffic(COUNTS[0])  # type: ignore[arg-type]
        writer.add_routed(COUNTS[1])  # type: ignore[arg-type]
        await send.send(exchange())
        await send.send(exchange())  # a full batch, with the counts: written, "failed", spooled
        with anyio.fail_after(5):
            while writer.stats.replayed_exchanges < 2:
                await anyio.sleep(0.01)
        await send.aclose()
    assert [where for where, _ in errors] == ["store"]
    assert writer.stats.spooled_exchanges == 2 and writer.spool.pending_batches() == 0
    result = await stored(store)
    assert (result["exchanges"], result["outputs"], result["counts"]) == (2, 4, ONCE)
    assert len(result["batch_ids"]) == 1


async def test_a_spool_file_written_before_batch_ids_still_drains(
    store: Store, tmp_path: Path, exchange,
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([exchange()], COUNTS, "e" * 32)
    (path,) = (tmp_path / "spool").glob("*.jsonl")
    header, *rest = path.read_text().splitlines()
    old = json.loads(header)
    del old["batch"]  # the header as an earlier version wrote it
    path.write_text("\n".join([json.dumps(old), *rest]) + "\n")
    assert _read(path).batch_id is None
    assert await Spool(tmp_path / "spool").drain(store) == 1
    # Stored as before: rows and counts, and no batch id to remember it by.
    assert await stored(store) == {"exchanges": 1, "outputs": 2, "counts": ONCE,
                                   "batch_ids": set()}


def test_the_spool_keeps_the_batch_id_and_sets_aside_a_file_with_a_bad_one(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    spool.append([], COUNTS, "f" * 32)
    (path,) = tmp_path.glob("*.jsonl")
    assert _read(path).batch_id == "f" * 32
    for bad in (5, "", "g" * 33):
        lines = path.read_text().splitlines()
        path.write_text("\n".join([json.dumps({**json.loads(lines[0]), "batch": bad}),
                                   *lines[1:]]) + "\n")
        with pytest.raises(_Corrupt, match="batch id"):
            _read(path)


async def test_a_batch_id_the_column_cannot_hold_is_refused_before_writing(store: Store) -> None:
    for bad in ("", "h" * 33):
        with pytest.raises(ValueError, match="batch_id"):
            await store.write([], COUNTS, batch_id=bad)
    assert (await stored(store))["counts"] == ({}, {})
