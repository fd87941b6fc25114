"""Retention: `shadowroute prune` deletes old pairs, traffic and reports (SQLite and Postgres)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from shadowroute.errors import StoreError
from shadowroute.records import TrafficRecord
from shadowroute.store import Store, make_engine
from shadowroute.store.models import (
    AppliedBatch,
    CandidateOutput,
    Exchange,
    JudgeCalibration,
    ReportRun,
    RouteChange,
    Score,
    StoredDecision,
    TrafficDaily,
)
from shadowroute.store.queries.scores import enqueue_stored
from shadowroute.store.retention import prune
from shadowroute.store.scoring_tables import ScoreQueue

pytestmark = pytest.mark.anyio

NOW = datetime.now(UTC)
CUTOFF = NOW - timedelta(days=30)
TABLES = (Exchange, CandidateOutput, Score, TrafficDaily, ReportRun, StoredDecision, RouteChange,
          JudgeCalibration)


async def counts(store: Store) -> dict[str, int]:
    async with store.session() as s:
        return {
            t.__tablename__: await s.scalar(select(func.count()).select_from(t)) or 0
            for t in TABLES
        }


@pytest.fixture
def seed(exchange: Callable[..., Any]) -> Callable[..., Awaitable[dict[str, set[str]]]]:
    async def seed(store: Store, *, old: int = 7, new: int = 3) -> dict[str, set[str]]:
        """``old`` exchanges 40-46 days ago and ``new`` ones 1-3 days ago, each with two outputs
        scored twice; traffic on old and new days; three reports (60 and 35 days old, and 1 day
        old unless there are no new exchanges) with decisions; a route change and a calibration."""
        olds = [exchange(created_at=NOW - timedelta(days=40 + i)) for i in range(old)]
        news = [exchange(created_at=NOW - timedelta(days=1 + i)) for i in range(new)]
        traffic = [
            TrafficRecord(day=(NOW - timedelta(days=d)).date(), task_type="classify",
                          primary_model="big", requests=10, sampled=1)
            for d in (45, 31, 1, 0)
        ]
        await store.write(olds + news, traffic)
        async with store.session() as s:
            for x in olds + news:
                for o in x.outputs:
                    for scorer in ("exact", "similarity"):
                        s.add(Score(output_id=o.id, scorer=scorer, version="1", value=1.0,
                                    passed=True, details={}, created_at=x.created_at,
                                    exchange_created_at=x.created_at))
            reports = [("r-60", 60), ("r-35", 35)] + ([("r-1", 1)] if new else [])
            for report_id, age in reports:
                at = NOW - timedelta(days=age)
                s.add(ReportRun(id=report_id, created_at=at, since=None, overview={}))
                await s.flush()
                for model in ("mini", "tiny"):
                    s.add(StoredDecision(report_id=report_id, task_type="classify", model=model,
                                         kind="shadow", created_at=at, verdict="HOLD", reason="",
                                         primary_model="big", n=10, passed=9))
            s.add(RouteChange(created_at=NOW - timedelta(days=90), task_type="classify",
                              action="promote", model="mini", primary_model="big", actor="t",
                              evidence={}))
            s.add(JudgeCalibration(id="cal-1", created_at=NOW - timedelta(days=90), judge_model="j",
                                   judge_version="1", dataset="d", n=1, ties=0, per_category={},
                                   details={}))
            await s.commit()
        return {"old": {x.id for x in olds}, "new": {x.id for x in news}}

    return seed


async def test_prune_deletes_old_pairs_traffic_and_reports_keeps_the_rest(
    store: Store, seed,
) -> None:
    ids = await seed(store)
    before = await counts(store)
    assert before["exchanges"] == 10 and before["candidate_outputs"] == 20
    assert before["scores"] == 40 and before["traffic_daily"] == 4 and before["decisions"] == 6

    report = await prune(store, CUTOFF)

    assert (report.exchanges, report.outputs, report.scores) == (7, 14, 28)
    assert (report.traffic_days, report.reports, report.decisions) == (2, 2, 4)
    assert report.kept_report is None  # the newest report is newer than the cutoff
    after = await counts(store)
    assert after == {
        "exchanges": 3, "candidate_outputs": 6, "scores": 12, "traffic_daily": 2,
        "reports": 1, "decisions": 2, "route_changes": 1, "judge_calibrations": 1,
    }
    async with store.session() as s:
        assert set(await s.scalars(select(Exchange.id))) == ids["new"]
        # No orphans: every remaining output and score belongs to a new exchange.
        assert set(await s.scalars(select(CandidateOutput.exchange_id))) == ids["new"]
        assert await s.scalar(
            select(func.count()).select_from(Score).join(
                CandidateOutput, CandidateOutput.id == Score.output_id)
        ) == 12
        assert set(await s.scalars(select(TrafficDaily.day))) == {
            (NOW - timedelta(days=1)).date(), NOW.date()}
        assert set(await s.scalars(select(ReportRun.id))) == {"r-1"}
    assert "deleted 7 exchanges, 14 candidate outputs, 28 scores, 2 traffic rows, 2 reports" \
        in report.summary()

    again = await prune(store, CUTOFF)  # idempotent
    assert not again.deleted_anything and await counts(store) == after


async def test_newest_report_survives_even_when_older_than_the_cutoff(store: Store, seed) -> None:
    await seed(store, new=0)  # reports 60 and 35 days old only
    report = await prune(store, CUTOFF)
    assert (report.reports, report.decisions, report.kept_report) == (1, 2, "r-35")
    async with store.session() as s:
        assert set(await s.scalars(select(ReportRun.id))) == {"r-35"}
        assert await s.scalar(select(func.count()).select_from(StoredDecision)) == 2
    assert "kept the newest report r-35" in report.summary()


async def test_dry_run_deletes_nothing_and_counts_the_same(store: Store, seed) -> None:
    await seed(store)
    before = await counts(store)
    dry = await prune(store, CUTOFF, dry_run=True)
    assert await counts(store) == before
    assert dry.summary().startswith("would delete 7 exchanges")
    assert dry.hint() is None
    real = await prune(store, CUTOFF)
    fields = ("exchanges", "outputs", "scores", "traffic_days", "reports", "decisions")
    assert [getattr(dry, f) for f in fields] == [getattr(real, f) for f in fields]


async def test_batches_give_the_same_result(store: Store, seed) -> None:
    await seed(store)
    calls: list[tuple[int, int]] = []
    report = await prune(store, CUTOFF, batch=2, progress=lambda d, t: calls.append((d, t)))
    assert report.batches == 4  # 2 + 2 + 2 + 1
    assert calls == [(2, 7), (4, 7), (6, 7), (7, 7)]
    assert (report.exchanges, report.outputs, report.scores) == (7, 14, 28)
    after = await counts(store)
    assert (after["exchanges"], after["candidate_outputs"], after["scores"]) == (3, 6, 12)


async def test_batches_split_exchanges_of_the_same_instant(
    store: Store, exchange: Callable[..., Any],
) -> None:
    """Each batch starts after the last one's (created_at, id): exchanges stored in the same
    instant are split across batches and every one is deleted, once."""
    at = NOW - timedelta(days=40)
    same = [exchange(created_at=at) for _ in range(5)]
    await store.write([*same, exchange(created_at=NOW)], [])
    report = await prune(store, CUTOFF, batch=2)
    assert (report.batches, report.exchanges, report.outputs) == (3, 5, 10)
    assert (await counts(store))["exchanges"] == 1


async def test_prune_leaves_no_row_of_what_it_deleted(store: Store, seed) -> None:
    """The tables have no foreign keys between them (each key check of a partitioned table
    costs a query on Postgres): prune itself deletes the outputs, scores and queue rows of the
    exchanges it deletes, and nothing of them is left anywhere."""
    await seed(store, old=2, new=1)
    async with store.begin() as conn:  # every output waiting for scores
        await conn.execute(enqueue_stored(conn.dialect.name))
    report = await prune(store, CUTOFF, batch=1)
    assert (report.exchanges, report.outputs, report.scores) == (2, 4, 8)
    async with store.connect() as conn:
        kept = set((await conn.scalars(select(Exchange.id))).all())
        outputs = (await conn.execute(select(CandidateOutput.id, CandidateOutput.exchange_id)))
        owners = dict(outputs.all())
        scored = set((await conn.scalars(select(Score.output_id))).all())
        queued = set((await conn.scalars(select(ScoreQueue.output_id))).all())
    assert len(kept) == 1 and set(owners.values()) == kept
    assert scored == set(owners) and queued == set(owners)


async def test_batch_ids_go_with_the_cutoff_but_are_kept_30_days_at_least(store: Store) -> None:
    """``applied_batches`` (what stops a replayed spool file from adding its counts twice):
    ids older than the cutoff go, except those younger than ``KEEP_BATCH_IDS`` (30 days), as
    a spool file may wait out a long outage; ``--source`` leaves them alone."""
    ages = {"a" * 32: 50, "b" * 32: 20, "c" * 32: 1}  # days since the batch was applied
    async with store.session() as s:
        s.add_all(AppliedBatch(id=i, applied_at=NOW - timedelta(days=d)) for i, d in ages.items())
        await s.commit()

    async def left() -> set[str]:
        async with store.session() as s:
            return set(await s.scalars(select(AppliedBatch.id)))

    assert (await prune(store, NOW - timedelta(days=60))).batch_ids == 0  # all younger
    assert (await prune(store, NOW, source="remote:x")).batch_ids == 0
    assert (await prune(store, NOW - timedelta(days=5), dry_run=True)).batch_ids == 1
    assert await left() == set(ages)
    assert (await prune(store, NOW - timedelta(days=5))).batch_ids == 1
    assert await left() == {"b" * 32, "c" * 32}  # 20 days: older than the cutoff, kept


async def test_database_errors_become_store_errors(store: Store, tmp_path: Path) -> None:
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        (tmp_path / "file").write_text("not a directory")
        bad = url.set(database=str(tmp_path / "file" / "nope.db"))
    else:
        bad = url.set(port=1)
    broken = Store(make_engine(bad))
    try:
        with pytest.raises(StoreError, match="cannot prune"):
            await prune(broken, CUTOFF)
    finally:
        await broken.close()


def test_cli_prune_prints_the_summary(tmp_path: Path, cli, seed) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shadowroute.db'}"

    async def fill() -> None:
        store = await Store.open(url)
        try:
            await seed(store)
        finally:
            await store.close()

    anyio.run(fill)
    env = {"SHADOWROUTE_CONFIG": ""}
    dry = cli("prune", "--older-than", "30d", "--dry-run", "--database-url", url, cwd=tmp_path,
              env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would delete 7 exchanges, 14 candidate outputs, 28 scores, 2 traffic rows, " \
           "2 reports (4 decisions) from before " in dry.stdout
    assert "VACUUM" not in dry.stdout

    real = cli("prune", "--older-than", "30d", "--batch", "3", "--database-url", url,
               cwd=tmp_path, env=env)
    assert real.returncode == 0, real.stderr
    assert "deleted 7 exchanges, 14 candidate outputs, 28 scores" in real.stdout
    assert "VACUUM" in real.stdout


def test_cli_prune_bad_duration_is_one_line(tmp_path: Path, cli) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shadowroute.db'}"
    result = cli("prune", "--older-than", "thirty days", "--database-url", url, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --older-than: 'thirty days' is not a duration; use e.g. 90m, 24h, 7d")
    assert not (tmp_path / "shadowroute.db").exists()


def test_cli_prune_source_needs_no_age_and_nothing_means_an_error(
    tmp_path: Path, cli, exchange,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shadowroute.db'}"

    async def fill() -> None:
        store = await Store.open(url)
        try:
            records = [exchange(created_at=NOW - timedelta(days=1)) for _ in range(3)]
            records[0].source = "remote:evil"
            await store.write(records)
        finally:
            await store.close()

    anyio.run(fill)
    env = {"SHADOWROUTE_CONFIG": ""}
    neither = cli("prune", "--database-url", url, cwd=tmp_path, env=env)
    assert neither.returncode == 2
    assert "say what to delete: --older-than 30d, --source NAME, or both" in neither.stderr
    result = cli("prune", "--source", "remote:evil", "--database-url", url, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "deleted 1 exchanges of source 'remote:evil' with 2 candidate outputs" in result.stdout
