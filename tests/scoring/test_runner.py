"""The scoring job: idempotency, versions, hard failures, narrowing a run, and concurrent workers
(SQLite and Postgres). The judge's side (orders, injections, verdicts, budget) is test_judge.py."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from shadowroute.records import NOISE_FLOOR_MODEL, utcnow
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from shadowroute.store.models import Score

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- the job


async def test_scores_every_output_once_and_rerun_scores_nothing(
    store: Store, tmp_path: Path, make_config, scoring_preset, scripted_judge, prefers,
    scoring_exchange, score_rows, scores_by_model,
) -> None:
    config = make_config(store.url, scoring_preset)
    await store.write([
        scoring_exchange("classify", "refund", {"mini": "Refund.", "tiny": "cancel"}),
        scoring_exchange("classify", "billing", {"mini": "billing", "tiny": "billing"}),
        scoring_exchange("extract", '{"sku": "A1", "qty": 2}', {"mini": '{"qty": 2, "sku": "A1"}'}),
    ])
    judge = scripted_judge(prefers("zzz"))  # never finds it: "same" every time
    report = await score(config, store, judge_provider=judge)
    assert report.outputs == 5
    assert report.scores == Counter({"exact": 4, "judge": 5, "schema": 1, "similarity": 1})
    assert report.left_unscored == 0
    assert len(judge.calls) == 10  # 5 outputs x 2 orders
    exact = {(s.value, s.passed) for s in (await scores_by_model(store, "exact"))["tiny"]}
    assert exact == {(0.0, False), (1.0, True)}
    assert all(s.passed for s in (await scores_by_model(store, "exact"))["mini"])  # "Refund." == refund

    again = await score(config, store, judge_provider=judge)
    assert again.outputs == 0 and sum(again.scores.values()) == 0
    assert len(judge.calls) == 10
    assert len(await score_rows(store)) == 11


async def test_a_new_scorer_version_rescores_only_that_scorer(
    store: Store, tmp_path: Path, make_config, scoring_preset, scores_by_model,
    scoring_exchange,
) -> None:
    config = make_config(store.url, scoring_preset, tasks={"classify": {"candidates": ["mini"], "scorers": {
        "exact": {}, "similarity": {"threshold": 0.8}}}})
    # token_set_ratio of these two is 0.815: passes at 0.8, fails at 0.99.
    await store.write([scoring_exchange("classify", "the refund desk", {"mini": "refund desks"})])
    first = await score(config, store)
    assert first.scores == Counter({"exact": 1, "similarity": 1})

    stricter = make_config(store.url, scoring_preset, tasks={"classify": {"candidates": ["mini"], "scorers": {
        "exact": {}, "similarity": {"threshold": 0.99}}}})
    second = await score(stricter, store)
    assert second.scores == Counter({"similarity": 1})
    similarity = (await scores_by_model(store, "similarity"))["mini"]
    assert len(similarity) == 2 and len({s.version for s in similarity}) == 2
    assert sorted(s.passed for s in similarity) == [False, True]
    # The run's summary is what it wrote (the report has the store's figures).
    assert [(r["scorer"], r["n"], r["failed"]) for r in second.summary] == [("similarity", 1, 1)]
    assert second.requeued == Counter({"classify": 1})


async def test_a_failed_candidate_call_fails_every_scorer_without_a_judge_call(
    store: Store, tmp_path: Path, make_config, scoring_preset, scripted_judge, prefers, scoring_exchange, score_rows
) -> None:
    config = make_config(store.url, scoring_preset)
    await store.write([scoring_exchange("classify", "refund", {"mini": None}, error="timeout")])
    judge = scripted_judge(prefers("x"))
    await score(config, store, judge_provider=judge)
    assert judge.calls == []
    scores = {s.scorer: s for s in await score_rows(store)}
    assert set(scores) == {"exact", "judge"}
    assert all(s.passed is False and s.details["candidate_error"] == "timeout" for s in scores.values())


async def test_schema_failure_is_never_overridden_by_a_favourable_judge(
    store: Store, tmp_path: Path, make_config, scoring_preset, scripted_judge, scores_by_model, scoring_exchange, verdict
) -> None:
    config = make_config(store.url, scoring_preset)
    await store.write([
        scoring_exchange("extract", '{"sku": "A1", "qty": 2}', {"mini": '{"sku": "A1", "qty": "two"}'}),
        scoring_exchange("extract", '{"sku": "B", "qty": 1}', {"mini": "not json"}),
    ])
    judge = scripted_judge(lambda a, b: verdict("A") if "qty" not in a else verdict("B"))
    await score(config, store, judge_provider=judge)
    assert judge.calls == []  # both failed the schema: no judge money spent
    judged = (await scores_by_model(store, "judge"))["mini"]
    assert [s.passed for s in judged] == [False, False]
    assert all(s.details["overridden_by"] == "schema" for s in judged)
    schema = (await scores_by_model(store, "schema"))["mini"]
    assert all(s.passed is False and s.details["primary_valid"] is True for s in schema)


async def test_primary_failing_its_own_schema_is_reported_as_a_config_problem(
    store: Store, tmp_path: Path, make_config, scoring_preset, scores_by_model, scoring_exchange, scripted_judge, prefers
) -> None:
    config = make_config(store.url, scoring_preset)
    await store.write([scoring_exchange("extract", '{"sku": 5}', {"mini": '{"sku": "A", "qty": 1}'})])
    report = await score(config, store, judge_provider=scripted_judge(prefers("zzz")))
    assert report.primary_schema_failures == Counter({"extract": 1})
    assert any("config problem" in line and "extract" in line for line in report.lines())
    (schema,) = (await scores_by_model(store, "schema"))["mini"]
    assert schema.passed is True and schema.details["primary_valid"] is False


async def test_task_since_and_limit_narrow_the_run(
    store: Store, tmp_path: Path, make_config, scoring_preset, scoring_exchange,
) -> None:
    config = make_config(store.url, scoring_preset, tasks={"classify": {"candidates": ["mini"], "scorers": ["exact"]}, "other": {"candidates": ["mini"], "scorers": ["exact"]}})
    await store.write(
        [scoring_exchange("classify", "a", {"mini": "a"}) for _ in range(5)]
        + [scoring_exchange("classify", "a", {"mini": "a"}, age_days=3) for _ in range(4)]
        + [scoring_exchange("other", "a", {"mini": "a"}) for _ in range(6)]
    )
    recent = await score(config, store, ScoreOptions(task="classify", since=utcnow() - timedelta(days=1)))
    assert recent.outputs == 5 and recent.left_unscored == 0
    limited = await score(config, store, ScoreOptions(limit=4, batch_size=3))
    assert limited.outputs == 4
    assert limited.left_unscored == 4 + 6 - 4
    rest = await score(config, store)
    assert rest.outputs == 6 and rest.left_unscored == 0


async def test_primary_replay_is_scored_like_a_candidate(
    store: Store, tmp_path: Path, make_config, scoring_preset, scoring_exchange,
    scores_by_model,
) -> None:
    config = make_config(store.url, scoring_preset, tasks={"classify": {"candidates": ["mini"], "scorers": ["exact"]}})
    await store.write([scoring_exchange("classify", "refund", {"mini": "refund", NOISE_FLOOR_MODEL: "cancel"})])
    await score(config, store)
    scores = {m: s[0].passed for m, s in (await scores_by_model(store, "exact")).items()}
    assert scores == {"mini": True, NOISE_FLOOR_MODEL: False}


async def test_workers_in_one_process_share_the_work(
    store: Store, tmp_path: Path, make_config, scoring_preset, scripted_judge, prefers,
    scoring_exchange,
) -> None:
    config = make_config(store.url, scoring_preset, tasks={"classify": {"candidates": ["mini", "tiny"],
                                                        "scorers": ["exact", "judge"]}})
    await store.write([scoring_exchange("classify", f"p{i}", {"mini": f"m{i}", "tiny": f"t{i}"})
                       for i in range(40)])
    judge = scripted_judge(prefers("zzz"), delay=0.002)
    report = await score(config, store, ScoreOptions(workers=4, batch_size=7), judge_provider=judge)
    assert report.outputs == 80
    assert Counter(b if a.startswith("p") else a for a, b in judge.calls) == Counter(
        {f"{m}{i}": 2 for i in range(40) for m in "mt"}
    )


@pytest.mark.anyio
async def test_limit_holds_with_several_workers(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_config, scoring_preset, scoring_exchange
) -> None:
    """Workers of one run share ``limit``: each claim is counted before the claim's next await
    (with two workers on a busy Postgres, 5,330 outputs were scored for a limit of 4,998). A
    slow row lock, as on a loaded server, lets every worker reach its claim meanwhile."""
    from shadowroute.scoring import runner

    real_lock_ids = runner.lock_ids

    async def slow_lock_ids(conn: Any, ids: list[str], **kw: Any) -> list[str]:
        await anyio.sleep(0.05)
        return await real_lock_ids(conn, ids, **kw)

    monkeypatch.setattr(runner, "lock_ids", slow_lock_ids)
    config = make_config(db_url, scoring_preset, tasks={"classify": {"candidates": ["mini", "tiny"],
                                                     "scorers": ["exact"]}})
    async with await Store.open(db_url) as store:
        await store.write([scoring_exchange("classify", f"p{i}", {"mini": f"m{i}", "tiny": f"t{i}"})
                           for i in range(200)])
        report = await score(config, store, ScoreOptions(workers=4, batch_size=40, limit=25))
        async with store.session() as s:
            n = await s.scalar(select(func.count()).select_from(Score))
    assert report.outputs == 25 and n == 25


@pytest.mark.postgres
@pytest.mark.anyio
async def test_two_processes_on_postgres_score_each_output_exactly_once(
    postgres_url: str, tmp_path: Path, make_config, scoring_preset, scripted_judge, prefers, scoring_exchange
) -> None:
    """Two independent runs (own engines, as two `shadowroute score` processes would have)
    share the outputs through FOR UPDATE SKIP LOCKED: every output is judged by exactly one."""
    config = make_config(postgres_url, scoring_preset, tasks={"classify": {"candidates": ["mini", "tiny"],
                                                           "scorers": ["exact", "judge"]}})
    async with await Store.open(postgres_url) as setup:
        await setup.write([scoring_exchange("classify", f"p{i}", {"mini": f"m{i}", "tiny": f"t{i}"})
                           for i in range(150)])
    judge_a = scripted_judge(prefers("zzz"), delay=0.001)
    judge_b = scripted_judge(prefers("zzz"), delay=0.001)
    reports = []

    async def one(judge: Any) -> None:
        async with await Store.open(postgres_url) as own:
            reports.append(await score(config, own, ScoreOptions(workers=2, batch_size=10),
                                       judge_provider=judge))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, judge_a)
        tg.start_soon(one, judge_b)
    judged = Counter(b if a.startswith("p") else a for a, b in judge_a.calls + judge_b.calls)
    assert judged == Counter({f"{m}{i}": 2 for i in range(150) for m in "mt"})
    assert judge_a.calls and judge_b.calls  # both did part of the work
    assert sum(r.outputs for r in reports) == 300
    async with await Store.open(postgres_url) as check:
        async with check.session() as s:
            n = await s.scalar(select(func.count()).select_from(Score))
    assert n == 600


async def test_a_database_error_is_one_store_error_and_keeps_what_was_scored(
    sqlite_url: str, tmp_path: Path, make_config, scoring_preset, scoring_exchange, score_rows
) -> None:
    from shadowroute.errors import StoreError

    store = await Store.open(sqlite_url)
    try:
        config = make_config(store.url, scoring_preset, tasks={"classify": {"candidates": ["mini"], "scorers": ["exact"]}})
        await store.write([scoring_exchange("classify", "a", {"mini": "a"}) for _ in range(4)])
        await score(config, store, ScoreOptions(limit=2))
        async with store.engine.begin() as conn:
            from sqlalchemy import text

            await conn.execute(text("ALTER TABLE scores RENAME TO scores_gone"))
        with pytest.raises(StoreError, match="scoring stopped: cannot read or write"):
            await score(config, store)
        async with store.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE scores_gone RENAME TO scores"))
        assert len(await score_rows(store)) == 2
        assert (await score(config, store)).outputs == 2
    finally:
        await store.close()
