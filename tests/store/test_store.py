"""The store: migrations, batched idempotent writes, traffic increments, errors (SQLite and Postgres)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest
from sqlalchemy import MetaData, Table, inspect, select

import shadowroute.store
from shadowroute.errors import StoreError
from shadowroute.records import CandidateOutputRecord, ExchangeRecord, TrafficRecord
from shadowroute.store import (
    Base,
    CandidateOutput,
    Exchange,
    Store,
    TrafficDaily,
    make_engine,
    migrate,
    migrations_dir,
)
from shadowroute.store.migrations import _head

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- migrations


async def test_migrate_creates_schema_on_empty_db_and_rerun_is_noop(empty_db_url: str) -> None:
    await migrate(empty_db_url)
    await migrate(empty_db_url)  # already at head: nothing to do, no error
    engine = make_engine(empty_db_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert {"exchanges", "candidate_outputs", "scores", "traffic_daily", "alembic_version"} <= tables
    store = await Store.open(empty_db_url, auto_migrate=False)
    try:
        assert await store.revision() == _head() == "0015"
    finally:
        await store.close()


async def test_upgrade_from_the_first_revision_keeps_stored_pairs(
    empty_db_url: str, exchange, stored_counts,
) -> None:
    """A database created by the first release gains the later tables and columns; nothing
    is lost, and its exchanges read as shadow pairs."""
    await migrate(empty_db_url, "0001")
    old = Store(make_engine(empty_db_url))
    try:
        first = [exchange(), exchange()]
        async with old.engine.begin() as conn:  # the first release's columns only
            later = {"route", "not_carried", "source"}  # columns added by later revisions
            columns = [c._copy() for c in Exchange.__table__.columns if c.name not in later]
            first_release = Table("exchanges", MetaData(), *columns)
            await conn.execute(first_release.insert(), [
                {c.name: getattr(x, c.name) for c in columns} for x in first])
            first_outputs = Table("candidate_outputs", MetaData(), *[
                c._copy() for c in CandidateOutput.__table__.columns
                if c.name not in {"exchange_created_at", "not_carried", "finish_reason"}])
            await conn.execute(first_outputs.insert(), [
                {"id": o.id, "exchange_id": x.id, "model": o.model, "output": o.output,
                 "attempts": 1, "created_at": o.created_at} for x in first for o in x.outputs])
        assert await old.revision() == "0001"
    finally:
        await old.close()
    await migrate(empty_db_url)
    async with await Store.open(empty_db_url, auto_migrate=False) as store:
        assert await store.revision() == _head()
        assert await stored_counts(store) == (2, 4)
        engine = store.engine
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            routes = (await conn.execute(select(Exchange.route))).scalars().all()
        assert {"scores", "reports", "decisions", "route_changes"} <= tables
        assert routes == ["shadow", "shadow"]


async def test_migrations_match_models(db_url: str) -> None:
    """The migration scripts and the ORM models describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from shadowroute.store.partitions import compared

    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={
                        "compare_type": True, "include_object": compared}),
                    Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


def test_offline_migration_renders_sql() -> None:
    """`alembic upgrade head --sql` works without a database (for DBAs who apply SQL by hand)."""
    import io

    from alembic import command

    from shadowroute.store.engine import parse_url
    from shadowroute.store.migrations import _alembic_config

    cfg = _alembic_config(parse_url("postgresql+psycopg://u:pw@db.invalid/x"))
    cfg.output_buffer = io.StringIO()
    command.upgrade(cfg, "head", sql=True)
    sql = cfg.output_buffer.getvalue()
    assert "CREATE TABLE exchanges" in sql
    assert "JSONB" in sql
    assert "ON DELETE CASCADE" in sql


def test_migrations_dir_is_found() -> None:
    assert (migrations_dir() / "env.py").is_file()
    assert (migrations_dir() / "versions" / "0001_initial.py").is_file()


async def test_open_without_schema_tells_user_to_upgrade(empty_db_url: str) -> None:
    with pytest.raises(StoreError, match="shadowroute db upgrade"):
        await Store.open(empty_db_url, auto_migrate=False)


async def test_open_refuses_a_schema_from_a_newer_shadowroute(db_url: str) -> None:
    from sqlalchemy import text

    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'fromfuture'"))
        with pytest.raises(StoreError, match="newer shadowroute"):
            await Store.open(db_url, auto_migrate=True)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"UPDATE alembic_version SET version_num = '{_head()}'"))
        await engine.dispose()


async def test_sqlite_opens_with_auto_migrate_by_default(sqlite_url: str) -> None:
    store = await Store.open(sqlite_url)
    try:
        assert await store.revision() == _head()
    finally:
        await store.close()


# --------------------------------------------------------------------------- writes


async def test_write_and_read_back(store: Store, exchange) -> None:
    paris = timezone(timedelta(hours=2))
    created = datetime(2024, 5, 17, 13, 45, 12, 123456, tzinfo=paris)
    request = {
        "model": "big",
        "messages": [{"role": "user", "content": "Grüße, 世界 🌍 — «quote» \\ \"x\""}],
        "temperature": 0.2,
        "nested": {"list": [1, 2.5, None, True, {"k": "v"}]},
    }
    x = exchange(
        request=request,
        primary_output="réponse ✓",
        metadata={"user": "ü", "tags": ["a", "b"]},
        created_at=created,
    )
    x.outputs[1].output = None
    x.outputs[1].error_kind = "timeout"
    x.outputs[1].error = "no answer in 30 s"
    x.outputs[1].attempts = 3
    await store.write([x])

    async with store.session() as s:
        got = await s.scalar(select(Exchange).where(Exchange.id == x.id))
        outputs = (await s.scalars(select(CandidateOutput).where(
            CandidateOutput.exchange_id == x.id,
            CandidateOutput.exchange_created_at == created))).all()
    assert got is not None
    assert got.created_at == created
    assert got.created_at.tzinfo is not None
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.created_at.hour == 11  # 13:45 at +02:00 is 11:45 UTC
    assert got.request == request
    assert got.meta == {"user": "ü", "tags": ["a", "b"]}
    assert got.primary_output == "réponse ✓"
    assert (got.task_type, got.primary_model, got.latency_ms, got.cost_usd) == (
        "classify",
        "big",
        800.0,
        0.01,
    )
    by_model = {o.model: o for o in outputs}
    assert by_model["mini"].output == "mini says hi"
    assert by_model["mini"].created_at.tzinfo is not None
    assert by_model["mini"].created_at == x.outputs[0].created_at
    assert (by_model["tiny"].error_kind, by_model["tiny"].attempts) == ("timeout", 3)
    assert by_model["tiny"].output is None


async def test_same_batch_twice_is_stored_once(store: Store, exchange, stored_counts) -> None:
    batch = [exchange() for _ in range(5)]
    await store.write(batch)
    await store.write(batch)
    assert await stored_counts(store) == (5, 10)
    # A batch overlapping what is stored adds only the new rows.
    extra = exchange()
    await store.write([*batch[:2], extra])
    assert await stored_counts(store) == (6, 12)


async def test_duplicate_candidate_for_same_exchange_is_skipped(store: Store, exchange) -> None:
    x = exchange(candidates=("mini",))
    await store.write([x])
    again = ExchangeRecord(**{**_fields(x), "outputs": [CandidateOutputRecord(x.id, "mini", "2nd")]})
    await store.write([again])
    async with store.session() as s:
        outputs = (await s.scalars(select(CandidateOutput))).all()
    assert [o.output for o in outputs] == ["mini says hi"]


def _fields(x: ExchangeRecord) -> dict[str, object]:
    return {name: getattr(x, name) for name in ExchangeRecord.__slots__}


async def test_traffic_is_added_up(store: Store, exchange) -> None:
    day = date(2024, 5, 17)
    await store.write(
        [],
        [
            TrafficRecord(day, "classify", "big", requests=10, sampled=1),
            TrafficRecord(day, "classify", "big", requests=5, sampled=2),  # same key, same batch
            TrafficRecord(day, "summarize", "big", requests=7, sampled=0),
        ],
    )
    await store.write([exchange()], [TrafficRecord(day, "classify", "big", 100, 10)])
    await store.write([], [TrafficRecord(day + timedelta(days=1), "classify", "big", 1, 1)])
    async with store.session() as s:
        rows = (await s.scalars(select(TrafficDaily).order_by(TrafficDaily.day))).all()
    got = {(r.day, r.task_type): (r.requests, r.sampled) for r in rows}
    assert got == {
        (day, "classify"): (115, 13),
        (day, "summarize"): (7, 0),
        (day + timedelta(days=1), "classify"): (1, 1),
    }


async def test_values_databases_refuse_are_made_storable(store: Store, exchange) -> None:
    x = exchange(
        request={"content": "nul\x00byte", "score": float("nan"), "when": datetime(2024, 1, 1)},
        primary_output="a\x00b",
    )
    x.outputs[0].output = "lone \ud800 surrogate"
    await store.write([x])
    async with store.session() as s:
        got = await s.get(Exchange, (x.id, x.created_at))
        out = await s.get(CandidateOutput, (x.outputs[0].id, x.created_at))
    assert got is not None and out is not None
    assert got.request == {"content": "nul\ufffdbyte", "score": None, "when": "2024-01-01T00:00:00"}
    assert got.primary_output == "a\ufffdb"
    assert out.output == "lone \ufffd surrogate"


async def test_counts_summarise_per_task_and_model(store: Store, exchange) -> None:
    a, b = exchange(latency_ms=900.0), exchange(latency_ms=700.0, cost_usd=0.03)
    b.outputs[1].error_kind, b.outputs[1].output = "rate_limited", None
    c = exchange("summarize", candidates=("mini",))
    await store.write([a, b, c], [TrafficRecord(date(2024, 5, 17), "classify", "big", 40, 2)])
    counts = await store.counts()
    assert (counts["exchanges"], counts["outputs"], counts["errors"]) == (3, 5, 1)
    classify = counts["tasks"]["classify"]
    assert (classify["exchanges"], classify["outputs"]) == (2, 4)
    assert classify["errors"] == {"rate_limited": 1}
    assert (classify["requests"], classify["sampled"]) == (40, 2)
    assert classify["primary"]["big"]["mean_latency_ms"] == pytest.approx(800.0)
    assert classify["primary"]["big"]["cost_usd"] == pytest.approx(0.04)
    assert classify["candidates"]["tiny"] == {
        "outputs": 2,
        "errors": 1,
        "mean_latency_ms": pytest.approx(200.0),
        "cost_usd": pytest.approx(0.002),
    }
    assert counts["tasks"]["summarize"]["candidates"].keys() == {"mini"}
    assert counts["traffic"] == {"classify": {"requests": 40, "sampled": 2}}


async def test_spend_since_sums_candidate_cost_per_task(store: Store, exchange) -> None:
    old = exchange()
    for o in old.outputs:
        o.created_at = datetime.now(UTC) - timedelta(days=2)
    await store.write([old, exchange(), exchange("summarize", candidates=("mini",))])
    spent = await store.spend_since(datetime.now(UTC) - timedelta(days=1))
    assert spent == {"classify": pytest.approx(0.002), "summarize": pytest.approx(0.001)}


# --------------------------------------------------------------------------- errors


async def test_unreachable_postgres_raises_store_error_without_password(exchange) -> None:
    store = Store(make_engine("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/x"))
    try:
        with pytest.raises(StoreError) as info:
            await store.write([exchange()])
    finally:
        await store.close()
    assert "s3cret" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("url", [
    "postgresql://bob:s3cret@db.invalid:port/x",  # a port that is not a number
    "post gres://bob:s3cret@db.invalid/x",  # not a URL SQLAlchemy can parse
])
async def test_unparsable_url_error_hides_the_password(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        await Store.open(url)
    assert "s3cret" not in str(caught.value)
    assert "bob:***@db.invalid" in str(caught.value)


async def test_unopenable_sqlite_file_raises_store_error(tmp_path: Path, exchange) -> None:
    (tmp_path / "not-a-dir").write_text("")
    url = f"sqlite+aiosqlite:///{tmp_path / 'not-a-dir' / 'x.db'}"
    with pytest.raises(StoreError, match="cannot connect.*unable to open database file"):
        await Store.open(url)
    store = Store(make_engine(url))
    try:
        with pytest.raises(StoreError, match="cannot write 1 exchanges"):
            await store.write([exchange()])
    finally:
        await store.close()
    # aiosqlite stops a connection that failed to open without waiting for its worker thread;
    # give the thread a moment to finish before this test's event loop is closed.
    await anyio.sleep(0.05)


async def test_open_unreachable_postgres_raises_store_error() -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        await Store.open("postgresql+psycopg://postgres@127.0.0.1:1/x")


def test_public_api() -> None:
    assert sorted(shadowroute.store.__all__) == [
        "Base",
        "BatchWriter",
        "CandidateOutput",
        "Exchange",
        "Spool",
        "Store",
        "TrafficDaily",
        "make_engine",
        "migrate",
        "migrations_dir",
    ]
    for name in shadowroute.store.__all__:
        assert getattr(shadowroute.store, name) is not None
