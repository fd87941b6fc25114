"""The decision counts the scoring job keeps (``evidence_rollup``) equal the counts taken from
every stored score, and the report's verdicts from them equal its verdicts from the scores:
after batches that split an exchange's candidate from its replay, several runs at once,
answers stored late, a batch written twice, a change of scorer versions and a prune, which
counts each exchange once for the rollup and the archive (SQLite and Postgres)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import delete, func, select

from shadowroute.records import NOISE_FLOOR_MODEL, ROUTE_REVERSE, CandidateOutputRecord, utcnow
from shadowroute.report import build_report
from shadowroute.scoring import ScoreOptions, score
from shadowroute.scoring.plan import plan_for
from shadowroute.store import Store
from shadowroute.store.models import CandidateOutput
from shadowroute.store.partitions import (
    AHEAD,
    begins,
    ensure_partitions,
    month_partitions,
    month_start,
    next_month,
)
from shadowroute.store.queries import plans
from shadowroute.store.queries.evidence import (
    COUNTS,
    ROUTES,
    add_counts,
    archived_counts,
    evidence_counts,
    keys_digest,
)
from shadowroute.store.retention import prune
from shadowroute.store.scoring_tables import EvidenceRollup, ScorePlan

pytestmark = pytest.mark.anyio

TASKS = {
    "classify": {"candidates": ["mini", "tiny"], "scorers": ["exact", "judge"]},
}


def ahead_of(month: date) -> list[date]:
    out = [next_month(month)]
    while len(out) < AHEAD:
        out.append(next_month(out[-1]))
    return out


def keys_of(config: Any) -> dict[str, list[tuple[str, str]]]:
    return {task: plan_for(config, task).keys() for task in config.tasks}


async def rolled_up(store: Store, route: str) -> dict[tuple[str, str], dict[str, int]]:
    """The rollup's rows as stored (not through live_counts, which could fall back)."""
    async with store.connect() as conn:
        rows = (await conn.execute(select(EvidenceRollup.__table__).where(
            EvidenceRollup.route == route))).mappings().all()
        plans = dict((await conn.execute(select(ScorePlan.task_type, ScorePlan.plan))).all())
    out = {}
    for row in rows:
        counts = {name: row[name] for name in COUNTS}
        if any(counts.values()) and plans.get(row["task_type"]) is not None:
            out[(row["task_type"], row["model"], row["keys_digest"])] = counts
    return out


async def assert_rollup_is_the_store(store: Store, config: Any) -> None:
    keys = keys_of(config)
    for route in ROUTES:
        async with store.connect() as conn:
            raw = await evidence_counts(conn, keys, route=route)
        expected = {(task, model, keys_digest(keys[task])): {n: counts.get(n, 0) for n in COUNTS}
                    for (task, model), counts in raw.items()}
        stored = {k: v for k, v in (await rolled_up(store, route)).items()
                  if k[2] == keys_digest(keys[k[0]])}
        diff = {k: {n: (stored.get(k, {}).get(n), expected.get(k, {}).get(n)) for n in COUNTS
                    if stored.get(k, {}).get(n) != expected.get(k, {}).get(n)}
                for k in stored.keys() | expected.keys()}
        assert not any(diff.values()), (route, diff)


def norm(counts: dict[Any, dict[str, int]]) -> dict[Any, dict[str, int]]:
    return {key: {n: c.get(n, 0) for n in COUNTS} for key, c in counts.items()}


def judge_by_hash(first: str, second: str) -> str:
    """A judge with an order bias on some pairs (flipped verdicts) and real preferences."""
    import json
    h = hash((first, second)) % 4
    return json.dumps({"verdict": ["A", "B", "same", "A"][h], "reason": "r"})


def traffic(scoring_exchange, n: int, seed: int, *, age_days: int = 0) -> list[Any]:
    rng = random.Random(seed)
    labels = ["refund", "billing", "cancel"]
    out = []
    for _ in range(n):
        truth = rng.choice(labels)
        answers = {m: truth if rng.random() < p else rng.choice(labels)
                   for m, p in (("mini", 0.9), ("tiny", 0.6), (NOISE_FLOOR_MODEL, 0.95))}
        if rng.random() < 0.3:
            del answers[NOISE_FLOOR_MODEL]  # not every exchange is replayed
        out.append(scoring_exchange("classify", truth, answers, age_days=age_days))
    return out


async def verdicts(config: Any, store: Store) -> list[tuple[Any, ...]]:
    report = await build_report(config, store, since=None, now=utcnow())
    return [(t.task, c.model, c.verdict, c.n, c.passed, c.lower_bound, c.noise_floor)
            for t in report.tasks for c in t.candidates]


async def test_the_rollup_is_the_store_through_splits_concurrency_late_answers_and_replays(
    db_url: str, make_config, scoring_preset, scoring_exchange, scripted_judge,
) -> None:
    config = make_config(db_url, scoring_preset, tasks=TASKS)
    batch = traffic(scoring_exchange, 60, seed=1)
    async with await Store.open(db_url) as one, await Store.open(db_url) as two:
        await one.write(batch)
        # Batches of 1 output: an exchange's candidate and its replay are folded apart, by
        # two runs (two connection pools) at once.
        options = ScoreOptions(workers=2, batch_size=1)
        async with anyio.create_task_group() as tg:
            for store in (one, two):
                tg.start_soon(lambda s=store: score(config, s, options,
                                                   judge_provider=scripted_judge(judge_by_hash)))
        await assert_rollup_is_the_store(one, config)

        # Replays that come late: the pair cells of those exchanges appear now.
        late = [x for x in batch if all(o.model != NOISE_FLOOR_MODEL for o in x.outputs)][:10]
        for x in late:
            x.outputs = [CandidateOutputRecord(x.id, NOISE_FLOOR_MODEL, output=x.primary_output)]
        await one.write(late)
        await one.write(batch)  # the first batch again (a spool replayed twice)
        await score(config, one, ScoreOptions(batch_size=7),
                    judge_provider=scripted_judge(judge_by_hash))
        await assert_rollup_is_the_store(one, config)
        assert (await rolled_up(one, "shadow"))  # the rollup is there, not a fallback

        from_rollup = await verdicts(config, one)
        async with one.begin() as conn:  # the report counts from the scores instead
            await conn.execute(delete(ScorePlan))
        assert await verdicts(config, one) == from_rollup
        assert any(v[3] > 0 for v in from_rollup)


async def test_the_rollup_follows_a_change_of_scorers_and_a_prune(
    store: Store, make_config, scoring_preset, scoring_exchange, scripted_judge,
) -> None:
    config = make_config(store.url, scoring_preset, tasks=TASKS)
    await store.write(traffic(scoring_exchange, 30, seed=2, age_days=40)
                      + traffic(scoring_exchange, 30, seed=3))
    await score(config, store, judge_provider=scripted_judge(judge_by_hash))
    await assert_rollup_is_the_store(store, config)

    # New scorer versions: the rollup starts again under their digest and follows the re-score.
    stricter = make_config(store.url, scoring_preset, tasks={
        "classify": {**TASKS["classify"], "scorers": ["exact", "judge", "similarity"]}})
    again = await score(stricter, store, ScoreOptions(batch_size=11),
                        judge_provider=scripted_judge(judge_by_hash))
    async with store.connect() as conn:
        outputs = await conn.scalar(select(func.count()).select_from(CandidateOutput))
    assert again.requeued == {"classify": outputs} and again.outputs == outputs
    await assert_rollup_is_the_store(store, stricter)

    # Prune: the rollup keeps the live counts, the archive the deleted ones; their sum is
    # what was counted before.
    keys = keys_of(stricter)
    async with store.connect() as conn:
        before = await evidence_counts(conn, keys)
    await prune(store, utcnow() - timedelta(days=30), keys_by_task=keys)
    await assert_rollup_is_the_store(store, stricter)
    async with store.connect() as conn:
        after = add_counts(await evidence_counts(conn, keys), await archived_counts(conn, keys))
    assert norm(after) == norm(before)
    from_rollup = await verdicts(stricter, store)
    async with store.begin() as conn:
        await conn.execute(delete(ScorePlan))
    assert await verdicts(stricter, store) == from_rollup


@pytest.mark.parametrize("archive", ["the plan's scorers", "older scorers"])
async def test_prune_counts_each_exchange_once_per_scorer_set(
    store: Store, make_config, scoring_preset, scoring_exchange, scripted_judge,
    monkeypatch: pytest.MonkeyPatch, archive: str,
) -> None:
    """A prune batch counts its exchanges once for the rollup and the archive when both are
    kept under the same scorers (a second time only for another set), per route: the rollup
    still equals the store, and rollup plus archive hold what was counted before."""
    config = make_config(store.url, scoring_preset, tasks=TASKS)
    old = traffic(scoring_exchange, 30, seed=4, age_days=40)
    for x in old[::3]:
        x.route = ROUTE_REVERSE
    await store.write(old + traffic(scoring_exchange, 20, seed=5))
    await score(config, store, judge_provider=scripted_judge(judge_by_hash))
    kept = config if archive == "the plan's scorers" else make_config(
        store.url, scoring_preset, tasks={"classify": {**TASKS["classify"], "scorers": ["exact"]}})
    keys = keys_of(kept)
    before = {}
    async with store.connect() as conn:
        for route in ROUTES:
            before[route] = await evidence_counts(conn, keys, route=route)

    counted: Counter[tuple[str, str, str]] = Counter()
    real = plans.evidence_counts

    async def counting(conn: Any, keys_by_task: Any, **kw: Any) -> Any:
        for i in kw["ids"]:
            counted[(i, kw["route"], keys_digest(keys_by_task["classify"]))] += 1
        return await real(conn, keys_by_task, **kw)

    monkeypatch.setattr(plans, "evidence_counts", counting)
    result = await prune(store, utcnow() - timedelta(days=30), batch=7, keys_by_task=keys)
    monkeypatch.undo()

    assert result.exchanges == 30 and result.batches == 5 and result.archived > 0
    sets = 1 if archive == "the plan's scorers" else 2
    assert len(counted) == 30 * sets and set(counted.values()) == {1}
    assert {(route, digest) for _i, route, digest in counted} == {
        (route, keys_digest(k)) for route in ROUTES for k in (keys["classify"],
                                                                  keys_of(config)["classify"])}
    await assert_rollup_is_the_store(store, config)
    async with store.connect() as conn:
        for route in ROUTES:
            after = add_counts(await evidence_counts(conn, keys, route=route),
                               await archived_counts(conn, keys, route=route))
            assert norm(after) == norm(before[route]) and after, route


@pytest.mark.postgres
async def test_prune_drops_whole_months_and_keeps_their_evidence(
    postgres_url: str, make_config, scoring_preset, scoring_exchange, scripted_judge,
) -> None:
    """On Postgres a month wholly before the cutoff goes by dropping its partitions: its
    exchanges, outputs and scores are counted in the prune's figures, its decision counts move
    from the rollup to the archive (rollup + archive unchanged, the rollup still the store), and
    what is younger than the month but older than the cutoff goes row by row."""
    this = month_start(utcnow())
    old = month_start(this - timedelta(days=40))  # two months back
    middle = next_month(old)
    async with await Store.open(postgres_url) as store:
        async with store.begin() as conn:
            assert await ensure_partitions(conn, now=begins(old), ahead=1) == [old, middle]
        config = make_config(store.url, scoring_preset, tasks=TASKS)
        batch = traffic(scoring_exchange, 24, seed=6)
        for i, x in enumerate(batch):  # 12 in the old month, 6 in the middle one, 6 now
            x.created_at = (begins(old) + timedelta(days=2, hours=i) if i < 12
                            else begins(middle) + timedelta(hours=i) if i < 18 else x.created_at)
            if i % 4 == 0:
                x.route = ROUTE_REVERSE
        await store.write(batch)
        await score(config, store, judge_provider=scripted_judge(judge_by_hash))
        keys = keys_of(config)
        async with store.connect() as conn:
            before = {route: await evidence_counts(conn, keys, route=route) for route in ROUTES}
            in_old = await conn.scalar(select(func.count()).select_from(CandidateOutput).where(
                CandidateOutput.exchange_created_at < begins(middle)))
            rows = await conn.scalar(select(func.count()).select_from(CandidateOutput))

        result = await prune(store, begins(middle) + timedelta(days=1), keys_by_task=keys)

        assert result.months == 1 and result.exchanges == 18 and result.archived > 0
        assert result.summary().endswith("; 1 month dropped whole (partitions)")
        async with store.connect() as conn:
            assert await month_partitions(conn) == [middle, this, *ahead_of(this)]
            assert await conn.scalar(select(func.count()).select_from(CandidateOutput)) == (
                rows - result.outputs)
            for route in ROUTES:
                after = add_counts(await evidence_counts(conn, keys, route=route),
                                   await archived_counts(conn, keys, route=route))
                assert norm(after) == norm(before[route]) and after, route
        assert result.outputs > in_old > 0 and result.scores > result.outputs
        await assert_rollup_is_the_store(store, config)
