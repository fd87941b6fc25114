"""The scoring job's queue (``score_queue``, ``score_plans``): a run with nothing new reads
only the queue, whatever the store holds; what a write adds late is scored; a change of
scorers queues a task again and a run to the old scorers cannot undo that; prune and the
upgrade of an older store keep the queue in step with the outputs (SQLite and Postgres)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, func, select, text

from shadowroute.records import CandidateOutputRecord, utcnow
from shadowroute.scoring import ScoreOptions, score
from shadowroute.scoring.plan import plan_for
from shadowroute.store import Store, make_engine, migrate
from shadowroute.store.queries.plans import hold_plan, plan_text, sync_plan
from shadowroute.store.queries.scores import dequeue
from shadowroute.store.retention import prune
from shadowroute.store.scoring_tables import ReportDay, ReportStale, ScorePlan, ScoreQueue

pytestmark = pytest.mark.anyio

EXACT = {"classify": {"candidates": ["mini", "tiny"], "scorers": ["exact"]}}


async def queued(store: Store) -> int:
    async with store.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(ScoreQueue)) or 0)


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """The SQL the store's engine runs inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        seen.append(" ".join(statement.split()))

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)


async def test_a_run_with_nothing_new_costs_the_same_whatever_the_store_holds(
    store: Store, make_config, scoring_preset, scoring_exchange,
) -> None:
    config = make_config(store.url, scoring_preset, tasks=EXACT)
    runs = []
    for size in (5, 300):
        await store.write([scoring_exchange("classify", "a", {"mini": "a", "tiny": "b"})
                           for _ in range(size)])
        first = await score(config, store)
        assert first.outputs == 2 * size and first.left_unscored == 0
        assert await queued(store) == 0
        with statements(store) as seen:
            again = await score(config, store)
        assert again.outputs == 0 and again.left_unscored == 0 and again.stored
        assert again.summary == []  # what this run wrote: nothing
        runs.append(seen)
    small, large = runs
    assert len(small) == len(large)  # 305 stored exchanges or 5: the same statements
    # Neither the scores nor the exchanges are read; the one look at the outputs is a LIMIT 1.
    assert not [s for s in large if " scores" in s or "FROM exchanges" in s]
    assert all("LIMIT" in s for s in large if "candidate_outputs" in s)


async def test_outputs_written_late_and_batches_written_again_are_handled(
    store: Store, make_config, scoring_preset, scoring_exchange,
) -> None:
    config = make_config(store.url, scoring_preset, tasks=EXACT)
    exchange = scoring_exchange("classify", "a", {"mini": "a"})
    await store.write([exchange])
    assert (await score(config, store)).outputs == 1

    await store.write([exchange])  # the same batch again (a spool replay): queued, complete
    assert await queued(store) == 1
    replayed = await score(config, store)
    assert replayed.outputs == 0 and await queued(store) == 0

    # A candidate answer for the stored exchange arrives later (a replay, a late spool file).
    exchange.outputs = [CandidateOutputRecord(exchange.id, "tiny", output="b")]
    await store.write([exchange])
    late = await score(config, store)
    assert late.outputs == 1 and late.summary[0]["model"] == "tiny"
    assert late.summary[0]["failed"] == 1 and await queued(store) == 0


async def test_a_run_to_the_old_scorers_cannot_drop_what_the_new_ones_queued(
    store: Store, make_config, scoring_preset, scoring_exchange,
) -> None:
    config = make_config(store.url, scoring_preset, tasks=EXACT)
    await store.write([scoring_exchange("classify", "a", {"mini": "a", "tiny": "a"})])
    await score(config, store)
    old, new = [("exact", "1")], [("exact", "1"), ("similarity", "2")]
    async with store.begin() as conn:
        await sync_plan(conn, "classify", old, utcnow())  # what the finished run recorded
    async with store.begin() as conn:
        assert await sync_plan(conn, "classify", new, utcnow()) == 2  # both queued again
    async with store.begin() as conn:
        assert await hold_plan(conn, "classify", old) is False  # a batch of the old run
    assert await queued(store) == 2
    async with store.connect() as conn:
        ids = list((await conn.scalars(select(ScoreQueue.output_id))).all())
    async with store.begin() as conn:
        assert await hold_plan(conn, "classify", new) is True
        await dequeue(conn, ids)
    assert await queued(store) == 0


async def test_prune_takes_pruned_outputs_off_the_queue(
    store: Store, scoring_exchange,
) -> None:
    await store.write([scoring_exchange("classify", "a", {"mini": "a"}, age_days=40),
                       scoring_exchange("classify", "a", {"mini": "a"})])
    assert await queued(store) == 2
    report = await prune(store, utcnow() - timedelta(days=30))
    assert report.outputs == 1 and await queued(store) == 1


async def test_upgrading_an_older_store_queues_every_output_once(
    empty_db_url: str, make_config, scoring_preset,
) -> None:
    await migrate(empty_db_url, "0011")
    engine = make_engine(empty_db_url)

    def stored_time(at: datetime) -> str:  # as shadowroute's writes store it on each backend
        if empty_db_url.startswith("sqlite"):
            return at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        return at.isoformat()

    now = utcnow()
    times = [now, now - timedelta(days=2), now - timedelta(days=2)]
    try:
        async with engine.begin() as conn:
            for i in range(3):
                await conn.execute(text(
                    "INSERT INTO exchanges (id, created_at, task_type, primary_model, request, "
                    "primary_output, metadata, route) VALUES (:id, :at, 'classify', 'big', "
                    "'{}', 'a', '{}', 'shadow')"),
                    {"id": f"x{i}", "at": stored_time(times[i])})
                await conn.execute(text(
                    "INSERT INTO candidate_outputs (id, exchange_id, model, output, attempts, "
                    "created_at) VALUES (:id, :x, 'mini', 'a', 1, :at)"),
                    {"id": f"o{i}", "x": f"x{i}", "at": stored_time(now)})
    finally:
        await engine.dispose()
    await migrate(empty_db_url)
    store = await Store.open(empty_db_url)
    try:
        assert await queued(store) == 3
        async with store.connect() as conn:  # every day with exchanges: counted by the next run
            stale = set((await conn.scalars(select(ReportStale.day))).all())
        assert stale == {t.date() for t in times}
        config = make_config(store.url, scoring_preset, tasks=EXACT)
        report = await score(config, store)
        assert report.outputs == 3 and await queued(store) == 0
        async with store.connect() as conn:
            recorded = await conn.scalar(select(ScorePlan.plan))
        assert recorded == plan_text(plan_for(config, "classify").keys())
        assert recorded.startswith('[["exact", ')
        async with store.connect() as conn:
            assert set((await conn.scalars(select(ReportDay.day))).all()) == stale
            assert not (await conn.scalars(select(ReportStale.day))).all()
    finally:
        await store.close()


async def test_rescan_finds_scores_deleted_by_hand(
    store: Store, make_config, scoring_preset, scoring_exchange,
) -> None:
    config = make_config(store.url, scoring_preset, tasks=EXACT)
    await store.write([scoring_exchange("classify", "a", {"mini": "a"}, age_days=2),
                       scoring_exchange("classify", "a", {"mini": "b"})])
    await score(config, store)
    async with store.begin() as conn:
        await conn.execute(text("DELETE FROM scores"))
    assert (await score(config, store)).outputs == 0  # nothing queued: nothing looked at
    recent = await score(config, store, ScoreOptions(rescan=True, since=utcnow() - timedelta(days=1)))
    assert recent.rescanned == 1 and recent.outputs == 1
    assert any("rescan: 1 stored outputs" in line for line in recent.lines())
    everything = await score(config, store, ScoreOptions(rescan=True))
    assert everything.rescanned == 2 and everything.outputs == 1 and await queued(store) == 0


async def test_a_second_answer_for_a_stored_exchange_and_model_is_neither_stored_nor_queued(
    store: Store, make_config, scoring_preset, scoring_exchange,
) -> None:
    """An output under another id for the same (exchange, model) is skipped by the write; the
    queue takes only outputs the store holds (no foreign-key failure, batch not rejected)."""
    config = make_config(store.url, scoring_preset, tasks=EXACT)
    exchange = scoring_exchange("classify", "a", {"mini": "a"})
    await store.write([exchange])
    await score(config, store)
    twin = CandidateOutputRecord(exchange.id, "mini", output="b")
    exchange.outputs = [twin, CandidateOutputRecord(exchange.id, "tiny", output="a")]
    await store.write([exchange])
    async with store.connect() as conn:
        ids = set((await conn.scalars(select(ScoreQueue.output_id))).all())
    assert twin.id not in ids and len(ids) == 1
    assert (await score(config, store)).outputs == 1


async def vacuums_of_the_queue(store: Store) -> int:
    async with store.connect() as conn:
        return int(await conn.scalar(text(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'score_queue'")))


@pytest.mark.postgres
async def test_a_run_that_took_outputs_off_the_queue_vacuums_it_on_postgres(
    postgres_url: str, make_config, scoring_preset, scoring_exchange,
) -> None:
    # Dequeued rows stay dead tuples until vacuumed; where autovacuum lags (or is off) the next
    # run with nothing new would read every one of them: the run that made them reclaims them.
    config = make_config(postgres_url, scoring_preset, tasks=EXACT)
    async with await Store.open(postgres_url) as store:
        await store.write([scoring_exchange("classify", "a", {"mini": "a", "tiny": "b"})
                           for _ in range(30)])
        before = await vacuums_of_the_queue(store)
        first = await score(config, store)
        assert first.outputs == 60 and await queued(store) == 0
        assert await vacuums_of_the_queue(store) == before + 1
        again = await score(config, store)  # took nothing off: nothing to reclaim
        assert again.outputs == 0
        assert await vacuums_of_the_queue(store) == before + 1
