"""The spool and the batch writer: batching, outages, replay exactly once, corrupt files."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest
from sqlalchemy import select

from shadowroute.errors import StoreError
from shadowroute.records import CandidateOutputRecord, ExchangeRecord, TrafficRecord
from shadowroute.stats import Stats
from shadowroute.store import BatchWriter, Exchange, Spool, Store, TrafficDaily, make_engine

pytestmark = pytest.mark.anyio

DAY = date(2024, 5, 17)


def exchange(n_outputs: int = 2) -> ExchangeRecord:
    x = ExchangeRecord("classify", "big", {"messages": [{"content": "héllo"}]}, "ok")
    for i in range(n_outputs):
        x.outputs.append(CandidateOutputRecord(x.id, f"cand{i}", "fine", latency_ms=1.5))
    return x


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.005)


class RecordingStore:
    """Stands in for a Store: remembers each batch (and its id in ``batch_ids``); fails while
    ``fail`` is set."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[ExchangeRecord], list[TrafficRecord]]] = []
        self.batch_ids: list[str | None] = []
        self.fail: BaseException | None = None

    async def write(
        self, exchanges: Sequence[ExchangeRecord], traffic: Sequence[TrafficRecord] = (),
        *, batch_id: str | None = None,
    ) -> None:
        if self.fail is not None:
            raise self.fail
        self.batches.append((list(exchanges), list(traffic)))
        self.batch_ids.append(batch_id)


@pytest.fixture
def errors() -> list[tuple[str, BaseException]]:
    return []


@pytest.fixture
def make_writer(
    tmp_path: Path, errors: list[tuple[str, BaseException]]
) -> Callable[..., BatchWriter]:
    def make(store: object, **kw: object) -> BatchWriter:
        options: dict = {
            "batch_size": 3,
            "flush_interval_s": 10.0,
            "retry_interval_s": 0.05,
            "stats": Stats(),
            "on_error": lambda where, exc: errors.append((where, exc)),
        }
        options.update(kw)
        spool = options.pop("spool", None) or Spool(tmp_path / "spool")
        return BatchWriter(store, spool, **options)  # type: ignore[arg-type]

    return make


async def running(
    writer: BatchWriter, body: Callable[[anyio.abc.ObjectSendStream[ExchangeRecord]], Awaitable[None]]
) -> None:
    """Run ``writer`` on a fresh stream while ``body`` sends; close the stream after ``body``."""
    send, receive = anyio.create_memory_object_stream[ExchangeRecord](100)
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run, receive)
        async with send:
            await body(send)


@pytest.fixture
def broken_store(tmp_path: Path) -> Store:
    """A Store whose database cannot be opened (its directory is a regular file)."""
    (tmp_path / "file").write_text("")
    return Store(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'file' / 'x.db'}"))


# --------------------------------------------------------------------------- spool


def test_spool_round_trips_records_exactly(tmp_path: Path) -> None:
    from shadowroute.store.spool import _read

    spool = Spool(tmp_path)
    tz = timezone(timedelta(hours=-7))
    x = exchange()
    x.created_at = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=tz)
    x.metadata = {"ünï": ["cödé", 1.25, None]}
    x.latency_ms, x.cost_usd = 0.1 + 0.2, 1e-9
    x.outputs[0].error_kind, x.outputs[0].error, x.outputs[0].attempts = "timeout", "slow", 3
    traffic = [TrafficRecord(DAY, "classify", "big", 9, 1)]
    spool.append([x, exchange()], traffic)
    assert spool.pending() == 2
    assert spool.pending_batches() == 1
    [path] = list(tmp_path.glob("*.jsonl"))
    assert not list(tmp_path.glob(".*"))  # no temp file left behind
    batch = _read(path)
    assert batch.exchanges[0] == x
    assert batch.exchanges[0].created_at.utcoffset() == timedelta(hours=-7)
    assert batch.traffic == traffic
    # A new Spool on the same directory (a restart) finds what is waiting.
    assert Spool(tmp_path).pending() == 2


async def test_drain_writes_oldest_first_and_deletes_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    first, second = [exchange()], [exchange(), exchange()]
    spool.append(first)
    spool.append(second, [TrafficRecord(DAY, "classify", "big", 3, 3)])
    store = RecordingStore()
    assert await spool.drain(store) == 3  # type: ignore[arg-type]
    assert [b[0] for b in store.batches] == [first, second]
    assert spool.pending() == 0
    assert list(tmp_path.iterdir()) == []


async def test_drain_stops_at_first_store_error_and_keeps_the_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for _ in range(3):
        spool.append([exchange()])
    store = RecordingStore()
    store.fail = StoreError("down")
    assert await spool.drain(store) == 0  # type: ignore[arg-type]
    assert isinstance(spool.last_error, StoreError)
    assert spool.pending() == 3
    assert len(list(tmp_path.glob("*.jsonl"))) == 3
    store.fail = None
    assert await spool.drain(store, max_batches=2) == 2  # type: ignore[arg-type]
    assert spool.last_error is None
    assert spool.pending() == 1


async def test_corrupt_spool_file_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    spool.append([exchange()])
    truncated = tmp_path / "00000000000000000001-1-00000000.jsonl"
    truncated.write_text('{"spool": 1, "exchanges": 2, "traffic": 0}\n{"task_type": "x"')
    garbage = tmp_path / "00000000000000000002-1-00000000.jsonl"
    garbage.write_bytes(b"\xff\xfe not json")
    spool = Spool(tmp_path)  # restart: counts what the headers announce
    assert spool.pending() == 3
    store = RecordingStore()
    with caplog.at_level(logging.WARNING, logger="shadowroute.store"):
        assert await spool.drain(store) == 1  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        truncated.name + ".bad",
        garbage.name + ".bad",
    ]
    assert spool.pending() == 0
    assert "spool file moved aside" in caplog.text
    assert await spool.drain(store) == 0  # not retried  # type: ignore[arg-type]
    assert len(store.batches) == 1


async def test_batch_the_database_rejects_is_moved_aside_not_blocking(
    tmp_path: Path, store: Store, stored_counts,
) -> None:
    poison = exchange()
    poison.task_type = None  # type: ignore[assignment]  # NOT NULL: the database refuses it
    good = exchange()
    spool = Spool(tmp_path / "spool")
    spool.append([poison])
    spool.append([good])
    assert await spool.drain(store) == 1  # the good batch behind the poison one gets through
    assert spool.last_error is None and spool.pending() == 0
    assert [p.name.endswith(".bad") for p in (tmp_path / "spool").iterdir()] == [True]
    assert await stored_counts(store) == (1, 2)


# --------------------------------------------------------------------------- writer


async def test_writer_flushes_full_batches(make_writer: Callable[..., BatchWriter]) -> None:
    store = RecordingStore()
    writer = make_writer(store, batch_size=3, flush_interval_s=30.0)

    async def body(send: anyio.abc.ObjectSendStream[ExchangeRecord]) -> None:
        for _ in range(7):
            await send.send(exchange())
        await wait_until(lambda: len(store.batches) == 2)
        await anyio.sleep(0.05)
        assert [len(b[0]) for b in store.batches] == [3, 3]  # the 7th waits for more

    await running(writer, body)
    assert [len(b[0]) for b in store.batches] == [3, 3, 1]  # the rest is flushed on close
    assert len(set(store.batch_ids)) == 3 and None not in store.batch_ids  # an id each
    assert writer.stats.stored_exchanges == 7
    assert writer.stats.stored_outputs == 14


async def test_writer_flushes_a_partial_batch_after_the_interval(
    make_writer: Callable[..., BatchWriter],
) -> None:
    store = RecordingStore()
    writer = make_writer(store, batch_size=100, flush_interval_s=0.05)

    async def body(send: anyio.abc.ObjectSendStream[ExchangeRecord]) -> None:
        await send.send(exchange())
        await send.send(exchange())
        start = anyio.current_time()
        await wait_until(lambda: len(store.batches) == 1, timeout=2)
        assert anyio.current_time() - start < 1.0
        assert len(store.batches[0][0]) == 2

    await running(writer, body)
    assert writer.stats.stored_exchanges == 2


async def test_traffic_is_merged_and_flushed_on_its_own(
    make_writer: Callable[..., BatchWriter],
) -> None:
    store = RecordingStore()
    writer = make_writer(store, flush_interval_s=0.05)

    async def body(send: anyio.abc.ObjectSendStream[ExchangeRecord]) -> None:
        writer.add_traffic(TrafficRecord(DAY, "classify", "big", 10, 1))
        writer.add_traffic(TrafficRecord(DAY, "classify", "big", 5, 0))
        writer.add_traffic(TrafficRecord(DAY, "summarize", "big", 1, 1))
        await wait_until(lambda: len(store.batches) == 1)
        exchanges, traffic = store.batches[0]
        assert exchanges == []
        assert sorted((t.task_type, t.requests, t.sampled) for t in traffic) == [
            ("classify", 15, 1),
            ("summarize", 1, 1),
        ]

    await running(writer, body)


async def test_outage_spools_everything_then_replays_exactly_once(
    store: Store,
    broken_store: Store,
    make_writer: Callable[..., BatchWriter],
    errors: list[tuple[str, BaseException]], stored_counts,
) -> None:
    writer = make_writer(broken_store, batch_size=4, flush_interval_s=0.02, retry_interval_s=0.05)
    sent: list[ExchangeRecord] = []

    async def body(send: anyio.abc.ObjectSendStream[ExchangeRecord]) -> None:
        for _ in range(10):
            x = exchange()
            sent.append(x)
            await send.send(x)
        writer.add_traffic(TrafficRecord(DAY, "classify", "big", 50, 10))
        await wait_until(lambda: writer.stats.spooled_exchanges == 10)
        assert writer.stats.stored_exchanges == 0
        assert writer.spool.pending() == writer.stats.spool_pending == 10
        assert writer.stats.store_errors >= 1
        assert errors and errors[0][0] == "store" and isinstance(errors[0][1], StoreError)
        await anyio.sleep(0.12)  # a couple of failed retries: nothing lost, nothing doubled
        assert writer.spool.pending() == 10

        writer.store = store  # the database is back
        await wait_until(lambda: writer.spool.pending() == 0)
        assert writer.stats.replayed_exchanges == 10
        assert writer.stats.spool_pending == 0
        # New records go straight to the database again.
        for _ in range(4):
            x = exchange()
            sent.append(x)
            await send.send(x)
        await wait_until(lambda: writer.stats.stored_exchanges == 4)

    await running(writer, body)
    await broken_store.close()
    assert await stored_counts(store) == (14, 28)
    async with store.session() as s:
        ids = set((await s.scalars(select(Exchange.id))).all())
        traffic = (await s.scalars(select(TrafficDaily))).all()
    assert ids == {x.id for x in sent}
    assert [(t.requests, t.sampled) for t in traffic] == [(50, 10)]
    assert not list(writer.spool.directory.glob("*.jsonl"))


async def test_unreachable_postgres_spools_and_counts(
    make_writer: Callable[..., BatchWriter], errors: list[tuple[str, BaseException]]
) -> None:
    dead = Store(make_engine("postgresql+psycopg://postgres@127.0.0.1:1/x"))
    writer = make_writer(dead, batch_size=2, flush_interval_s=0.02, retry_interval_s=10.0)

    async def body(send: anyio.abc.ObjectSendStream[ExchangeRecord]) -> None:
        for _ in range(5):
            await send.send(exchange())

    with anyio.fail_after(10):
        await running(writer, body)
    await dead.close()
    assert writer.stats.spooled_exchanges == 5
    assert writer.spool.pending() == writer.stats.spool_pending == 5
    # One failed attempt; later batches went straight to the spool until the next retry.
    assert writer.stats.store_errors == 1
    assert [where for where, _ in errors] == ["store"]


async def test_writer_without_store_spools_then_replays_into_new_store(
    store: Store, make_writer: Callable[..., BatchWriter], errors: list[tuple[str, BaseException]], stored_counts
) -> None:
    writer = make_writer(None, batch_size=2, flush_interval_s=0.02, retry_interval_s=30.0)

    async def body(send: anyio.abc.ObjectSendStream[ExchangeRecord]) -> None:
        for _ in range(3):
            await send.send(exchange())
        await wait_until(lambda: writer.spool.pending() == 3)
        writer.store = store  # replayed on the next turn, not after retry_interval_s
        await wait_until(lambda: writer.spool.pending() == 0, timeout=2)

    await running(writer, body)
    assert await stored_counts(store) == (3, 6)
    assert writer.stats.replayed_exchanges == 3
    assert errors == []


async def test_closing_with_the_database_up_empties_the_spool(
    store: Store, make_writer: Callable[..., BatchWriter], stored_counts
) -> None:
    writer = make_writer(None, batch_size=2, flush_interval_s=0.02, retry_interval_s=30.0)

    async def body(send: anyio.abc.ObjectSendStream[ExchangeRecord]) -> None:
        for _ in range(5):
            await send.send(exchange())
        await wait_until(lambda: writer.spool.pending() == 4)
        writer.store = store  # connected just before shutdown; the stream closes right away

    await running(writer, body)
    assert writer.spool.pending() == 0
    assert await stored_counts(store) == (5, 10)
    assert writer.stats.replayed_exchanges + writer.stats.stored_exchanges == 5


async def test_writer_replays_old_spool_at_start(
    store: Store, tmp_path: Path, make_writer: Callable[..., BatchWriter], stored_counts
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([exchange(), exchange()])
    writer = make_writer(store, spool=spool, retry_interval_s=30.0)

    async def body(send: anyio.abc.ObjectSendStream[ExchangeRecord]) -> None:
        await wait_until(lambda: spool.pending() == 0)

    await running(writer, body)
    assert writer.stats.replayed_exchanges == 2
    assert await stored_counts(store) == (2, 4)


async def test_a_bug_in_the_store_is_reported_and_the_batch_spooled(
    make_writer: Callable[..., BatchWriter], errors: list[tuple[str, BaseException]]
) -> None:
    store = RecordingStore()
    store.fail = RuntimeError("bug")
    writer = make_writer(store, batch_size=2)

    async def body(send: anyio.abc.ObjectSendStream[ExchangeRecord]) -> None:
        for _ in range(2):
            await send.send(exchange())

    await running(writer, body)  # does not raise
    assert errors[0][0] == "writer"
    assert all(exc is store.fail for _, exc in errors)  # later: the replay on close, reported
    assert writer.spool.pending() == 2


async def test_cancelled_writer_spools_the_batch_in_hand(
    make_writer: Callable[..., BatchWriter],
) -> None:
    writer = make_writer(RecordingStore(), batch_size=100, flush_interval_s=30.0)
    send, receive = anyio.create_memory_object_stream[ExchangeRecord](100)
    async with send, anyio.create_task_group() as tg:
        tg.start_soon(writer.run, receive)
        for _ in range(3):
            await send.send(exchange())
        await wait_until(lambda: len(writer._batch) == 3)
        tg.cancel_scope.cancel()
    assert writer.spool.pending() == 3
    assert writer.stats.spooled_exchanges == 3
