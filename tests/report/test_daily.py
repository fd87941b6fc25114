"""The report read from the daily rollups (``report_days``) is the report counted from the
stored pairs: every figure, verdict and example, over the whole store and over windows that
start mid-day, after late replays, scores written by hand, a change of scorers and a prune
(SQLite and Postgres). And the rollups are really read where they are fresh."""

from __future__ import annotations

import json
import math
import random
import zlib
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, text

from shadowroute.records import NOISE_FLOOR_MODEL, CandidateOutputRecord, utcnow
from shadowroute.report import build_report, render_html
from shadowroute.scoring import score
from shadowroute.store import Store
from shadowroute.store.figures import Histogram
from shadowroute.store.queries.report import PAGE_COST, reading
from shadowroute.store.queries.scores import ScoreRow, insert_scores
from shadowroute.store.retention import prune
from shadowroute.store.scoring_tables import ReportDay, ReportStale
from support.report import Out, xchg

pytestmark = pytest.mark.anyio

NOW = utcnow()


def judge(first: str, second: str) -> str:
    pick = ["A", "B", "same", "A"][zlib.crc32(f"{first}|{second}".encode()) % 4]
    return json.dumps({"verdict": pick, "reason": "r"})


def traffic(n: int, seed: int, *, days: float = 6.0) -> list[Any]:
    """``n`` exchanges spread over the last ``days`` days: classify (exact + judge) and extract
    (schema + similarity + judge), failed calls, unknown costs, replays of the primary."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        age = rng.uniform(0.01, days)
        if i % 2:
            truth = rng.choice(["refund", "billing", "cancel"])
            outs = [Out(m, truth if rng.random() < p else rng.choice(["refund", "billing"]),
                        cost=None if rng.random() < 0.1 else rng.uniform(1e-4, 1e-3),
                        latency=rng.uniform(50, 3000))
                    for m, p in (("mini", 0.9), ("tiny", 0.6))]
            if rng.random() < 0.1:
                outs[1] = Out("tiny", None, cost=2e-4, latency=30_000.0)
            if rng.random() < 0.6:
                outs.append(Out(NOISE_FLOOR_MODEL, truth, cost=0.002, latency=rng.uniform(100, 900)))
            out.append(xchg("classify", truth, *outs, cost=rng.uniform(0.001, 0.01),
                            latency=rng.uniform(100, 4000), age_days=age))
        else:
            qty = rng.randint(1, 9)
            primary = json.dumps({"sku": "A-1", "qty": qty})
            answer = rng.choice([primary, json.dumps({"sku": "A-1", "qty": qty + 1}),
                                 json.dumps({"sku": "A-1"}), "not json"])
            out.append(xchg("extract", primary, Out("mini", answer, cost=3e-4,
                                                      latency=rng.uniform(80, 900)),
                            cost=None if rng.random() < 0.2 else 0.004,
                            latency=rng.uniform(100, 2000), age_days=age))
    return out


def comparable(report: Any) -> dict[str, Any]:
    data = report.to_dict()
    for key in ("id", "generated_at"):
        data.pop(key)
    data["overview"].pop("days_from_rollups")
    return data


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal, floats up to the order of their sums."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (where, a, b)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), (where, a.keys() ^ b.keys())
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


async def from_pairs(config: Any, store: Store, since: datetime | None) -> Any:
    """The report with every day marked stale: counted from the pairs alone."""
    async with store.begin() as conn:
        last = await conn.scalar(select(func.max(ReportStale.id))) or 0
        days = (await conn.scalars(select(ReportDay.day))).all()
        if days:
            await conn.execute(insert(ReportStale), [{"day": d} for d in days])
    report = await build_report(config, store, since=since, now=NOW)
    async with store.begin() as conn:
        await conn.execute(delete(ReportStale).where(ReportStale.id > last))
    assert report.overview["days_from_rollups"] == 0
    return report


async def assert_rollups_are_the_pairs(config: Any, store: Store,
                                       windows: list[datetime | None]) -> list[int]:
    """The report from the rollups equals the one from the pairs in each window; returns how
    many days each read from rollups."""
    used = []
    for since in windows:
        rolled = await build_report(config, store, since=since, now=NOW)
        used.append(rolled.overview["days_from_rollups"])
        assert_same(comparable(rolled), comparable(await from_pairs(config, store, since)),
                    f"since={since}")
    return used


async def test_the_report_from_daily_rollups_is_the_report_from_the_pairs(
    store: Store, make_config, scoring_preset, scripted_judge,
) -> None:
    config = make_config(store.url, scoring_preset)
    batch = traffic(160, seed=5)
    await store.write(batch)
    run = await score(config, store, judge_provider=scripted_judge(judge))
    assert run.report_days >= 6 and run.report_days_raced == 0
    midday = NOW - timedelta(days=3.5)
    midnight = datetime.combine((NOW - timedelta(days=3)).date(), datetime.min.time(),
                                tzinfo=NOW.tzinfo)
    used = await assert_rollups_are_the_pairs(config, store, [None, midday, midnight])
    assert used[0] >= 6 and used[1] >= 2 and used[2] >= 3  # rollups, not the fallback
    report = await build_report(config, store, since=None, now=NOW)
    assert f"{used[0]} UTC days of this window were read from the daily" in " ".join(
        render_html(report).split())  # the method section says where the figures came from
    classify = next(t for t in report.tasks if t.task == "classify")
    assert any(c.examples for c in classify.candidates)
    assert any(c.latency_p50 for c in classify.candidates)

    # Replays that come late, onto exchanges of older days: those days are stale until the
    # next run, and the report counts them from the pairs meanwhile.
    late = [x for x in batch if x.task_type == "classify"
            and all(o.model != NOISE_FLOOR_MODEL for o in x.outputs)][:8]
    for x in late:
        x.outputs = [CandidateOutputRecord(x.id, NOISE_FLOOR_MODEL, output=x.primary_output,
                                           latency_ms=120.0, cost_usd=0.002)]
    await store.write(late)
    await assert_rollups_are_the_pairs(config, store, [None, midday])
    await score(config, store, judge_provider=scripted_judge(judge))
    await assert_rollups_are_the_pairs(config, store, [None])

    # A score written outside a run (an older judge version): its day is stale at once.
    first = batch[1].outputs[0].id
    async with store.begin() as conn:
        await insert_scores(conn, [ScoreRow(first, "judge", "0-old", 0.5, True, {}, 0.25, NOW)])
    await assert_rollups_are_the_pairs(config, store, [None])


async def test_rollups_follow_a_change_of_scorers_and_a_prune(
    store: Store, make_config, scoring_preset, scripted_judge,
) -> None:
    config = make_config(store.url, scoring_preset)
    batch = traffic(120, seed=6, days=9)
    await store.write(batch)
    await score(config, store, judge_provider=scripted_judge(judge))
    assert (await assert_rollups_are_the_pairs(config, store, [None]))[0] >= 9

    # New scorers for classify: every day holds classify outputs counted under the old ones,
    # so none is read until a run counts them again (under the new ones).
    stricter = make_config(store.url, scoring_preset, tasks={
        **scoring_preset["tasks"],
        "classify": {"candidates": ["mini", "tiny"], "scorers": ["exact", "similarity", "judge"]}})
    days = {x.created_at.date() for x in batch}
    without = days - {x.created_at.date() for x in batch if x.task_type == "classify"}
    assert (await assert_rollups_are_the_pairs(stricter, store, [None])) == [len(without)]
    run = await score(stricter, store, judge_provider=scripted_judge(judge))
    assert run.report_days >= 9
    assert (await assert_rollups_are_the_pairs(stricter, store, [None]))[0] >= 9

    # Prune the oldest days: their rows go with their exchanges.
    await prune(store, NOW - timedelta(days=5))
    await assert_rollups_are_the_pairs(stricter, store, [None])
    await score(stricter, store, judge_provider=scripted_judge(judge))
    async with store.connect() as conn:
        days = (await conn.scalars(select(ReportDay.day))).all()
    assert days and min(days) >= (NOW - timedelta(days=5)).date()
    await assert_rollups_are_the_pairs(stricter, store, [None])


async def test_a_refresh_that_read_an_older_row_stores_nothing(
    store: Store, make_config, scoring_preset, scripted_judge,
) -> None:
    from shadowroute.scoring import Plans
    from shadowroute.store.figures import Figures
    from shadowroute.store.queries.days import _save

    config = make_config(store.url, scoring_preset)
    await store.write(traffic(20, seed=7, days=1))
    await score(config, store, judge_provider=scripted_judge(judge))
    async with store.connect() as conn:
        day, version = (await conn.execute(select(ReportDay.day, ReportDay.version))).first()
    keys_of = Plans(config).keys_of
    stale = Figures(judging={"classify": {"spend": 1.0, "calls": 1, "skipped": 0}})
    async with store.begin() as conn:
        assert not await _save(conn, day, version - 1, stale, keys_of, NOW)  # lost the race
        assert not await _save(conn, day, None, stale, keys_of, NOW)  # the row exists
        assert await _save(conn, day, version, stale, keys_of, NOW)
    async with store.connect() as conn:
        assert await conn.scalar(select(ReportDay.version).where(ReportDay.day == day)) == version + 1


def test_latency_quantiles_are_exact_in_single_value_buckets_and_within_one_percent() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(6, 1) for _ in range(5000)] + [100.0] * 50
    hist, halves = Histogram(), (Histogram(), Histogram())
    for i, v in enumerate(values):
        hist.add(v)
        halves[i % 2].add(v)
    halves[0].merge(halves[1])
    assert halves[0] == hist  # adding up days is the same as counting them together
    ordered = sorted(values)
    for q in (0.01, 0.5, 0.95, 0.99):
        exact = ordered[math.ceil(q * len(values)) - 1]
        assert hist.quantile(q) == pytest.approx(exact, rel=0.01)
    few = Histogram()
    for v in (120.0, 5000.0, 87.5):
        few.add(v)
    assert (few.quantile(0.5), few.quantile(0.95)) == (120.0, 5000.0)
    assert Histogram.from_json(json.loads(json.dumps(hist.to_json()))) == hist
    assert Histogram().quantile(0.5) is None



@pytest.mark.postgres
async def test_the_reports_reads_price_index_reads_as_on_an_ssd_for_their_transaction_only(
    postgres_url: str,
) -> None:
    """At the server's default ``random_page_cost`` (4) Postgres reads a day's pairs by
    scanning every score; the report's connection lowers it to ``PAGE_COST`` for its own
    transaction (never raises it), and the pool's next connection has the server's again."""
    async with await Store.open(postgres_url) as store:
        async with store.connect() as conn:
            server = float(await conn.scalar(text("SHOW random_page_cost")))
        async with reading(store) as conn:
            assert float(await conn.scalar(text("SHOW random_page_cost"))) == min(server,
                                                                                 PAGE_COST)
            assert await conn.scalar(text("SHOW work_mem")) == "64MB"
        for _ in range(3):  # whichever pooled connection comes next
            async with store.connect() as conn:
                assert float(await conn.scalar(text("SHOW random_page_cost"))) == server
