"""`shadowroute report`: crafted data whose right answer is known by hand, scored with the real
`score()` (deterministic scorers only: no judge, no network), then built into a Report. Counts,
rates, errors and the noise floor; costs, latency, volume and monthly money; a primary failing its
own schema."""

from __future__ import annotations

import json
import math
import random
from datetime import timedelta
from pathlib import Path

import pytest

from shadowroute.decision import wilson_lower
from shadowroute.records import NOISE_FLOOR_MODEL, TrafficRecord, utcnow
from shadowroute.report import build_report, render_html
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from shadowroute.store.queries.scores import ScoreRow, insert_scores
from support.config import BIG_MINI_TINY, ORDER_SCHEMA
from support.report import Out

pytestmark = pytest.mark.anyio


def nearest_rank(values: list[float], q: float) -> float:
    """The ceil(q * n)-th smallest value (1-based)."""
    ordered = sorted(values)
    return ordered[math.ceil(q * len(ordered)) - 1]


# --------------------------------------------------------------------------- aggregation


async def test_counts_rates_errors_unscored_and_noise_floor(
    store: Store, make_config, task_of, candidate_of, xchg,
) -> None:
    config = make_config(store.url, models=BIG_MINI_TINY, tasks={"classify": {"candidates": ["mini", "tiny"], "scorers": ["exact"]}})
    batch = []
    for i in range(150):
        primary = f"label{i % 7}"
        a = None if i < 2 else "wrong" if i == 2 else primary  # 2 call errors + 1 miss: 147
        b = "nope" if i < 30 else primary  # 120
        outs = [Out("mini", a), Out("tiny", b)]
        if i < 50:  # replays: 49 of 50 agree
            outs.append(Out(NOISE_FLOOR_MODEL, "other" if i == 0 else primary))
        batch.append(xchg("classify", primary, *outs))
    # No primary answer: exact does not apply -> ignored, never counted.
    batch += [xchg("classify", None, Out("mini", "x"), Out("tiny", "y")) for _ in range(2)]
    # Outside a 30-day window: all failures, must not count with since=30 days ago.
    batch += [xchg("classify", "label1", Out("mini", "bad"), Out("tiny", "bad"),
                   Out(NOISE_FLOOR_MODEL, "bad"), age_days=40) for _ in range(4)]
    await store.write(batch)
    await score(config, store, ScoreOptions())
    # Stored after scoring: not scored yet.
    await store.write([xchg("classify", "label0", Out("mini", "label0"), Out("tiny", "label0"))
                       for _ in range(3)])

    report = await build_report(config, store, since=utcnow() - timedelta(days=30))
    t = task_of(report, "classify")
    assert [c.model for c in t.candidates] == ["mini", "tiny"]  # the replay is no candidate
    assert t.primary_models == ["big"]
    assert t.exchanges == 150 + 2 + 3
    # No traffic counts: volume falls back to the stored exchanges over one day; no costs.
    assert (t.requests, t.days, t.requests_per_day) == (155, 1.0, 155.0)
    assert t.monthly_primary_cost is None and t.primary_cost_per_1k is None
    assert t.share_of_spend is None
    # What the decisions rest on is cumulative: the four old exchanges outside the window
    # count (the window only changes what is shown), so the noise floor is 5 of 54.
    assert (t.noise_n, t.noise_failures) == (54, 5)

    a = candidate_of(report, "classify", "mini")
    assert (a.outputs, a.errors, a.unscored, a.ignored) == (155, 2, 3, 2)  # shown: the window
    assert (a.n, a.passed) == (154, 147)  # decided on: everything scored
    assert a.pass_rate == pytest.approx(147 / 154)
    # Two decisions in the report: each at half the 5% (family-wise over the report).
    assert a.level == pytest.approx(0.025)
    assert a.lower_bound == pytest.approx(wilson_lower(147, 154, 1 - 0.025))
    assert a.noise_floor == pytest.approx(5 / 54)
    assert "family-wise over 2 decisions" in a.method
    # 95% on 154 samples, two ignored outputs counted as failures: not shown either way yet.
    assert a.verdict == "NEED MORE DATA"
    assert "2 unscored" in a.reason and "counted as failures" in a.reason
    assert a.samples_needed and a.samples_needed > 0
    assert a.command is None
    (exact,) = a.scorers  # the scorer table is windowed
    assert (exact.name, exact.n, exact.passed, exact.failed, exact.ignored) == ("exact", 152, 147, 3, 2)

    b = candidate_of(report, "classify", "tiny")
    assert (b.outputs, b.errors, b.unscored, b.ignored) == (155, 0, 3, 2)
    assert (b.n, b.passed) == (154, 120)
    assert b.pass_rate == pytest.approx(120 / 154)
    assert b.lower_bound == pytest.approx(wilson_lower(120, 154, 1 - 0.025))
    assert b.verdict == "HOLD"  # 78% < 95%: more data cannot help
    assert "more data would not change this" in b.reason
    assert b.samples_needed is None and b.command is None

    # Without a window the four old exchanges are shown too; the decisions do not move.
    everything = await build_report(config, store)
    a_all = candidate_of(everything, "classify", "mini")
    assert a_all.outputs == 159
    for old, new in ((a, a_all), (b, candidate_of(everything, "classify", "tiny"))):
        assert (new.n, new.passed, new.verdict, new.lower_bound, new.sequential_lower) == (
            old.n, old.passed, old.verdict, old.lower_bound, old.sequential_lower)
    t_all = task_of(everything, "classify")
    assert (t_all.noise_n, t_all.noise_failures) == (54, 5)


async def test_a_failed_replay_call_is_not_counted_as_the_primary_disagreeing(store: Store, make_config, task_of, xchg, candidate_of) -> None:
    # A replay that timed out says nothing about the primary's consistency: counting it as a
    # disagreement would raise the noise floor and make PROMOTE easier.
    config = make_config(store.url, models=BIG_MINI_TINY, tasks={"classify": {"candidates": ["mini"], "scorers": ["exact"]}})
    batch = []
    for i in range(40):
        outs = [Out("mini", "a")]
        if i < 20:
            outs.append(Out(NOISE_FLOOR_MODEL, None if i < 10 else ("b" if i == 10 else "a")))
        batch.append(xchg("classify", "a", *outs))
    await store.write(batch)
    await score(config, store, ScoreOptions())
    t = task_of(await build_report(config, store), "classify")
    assert (t.noise_n, t.noise_failures) == (10, 1)
    assert candidate_of(await build_report(config, store), "classify", "mini").noise_floor == pytest.approx(0.1)


async def test_similarity_distribution_buckets_values_on_both_backends(store: Store, make_config, candidate_of, xchg) -> None:
    # ratio: identical texts score 1.0 (last bucket), disjoint letters 0.0 (first), and
    # "abcd" vs "abcx" 0.75 (bucket 7: [0.7, 0.8)).
    config = make_config(store.url, models=BIG_MINI_TINY, tasks={"summarize": {"candidates": ["mini"],
                                               "scorers": {"similarity": {"method": "ratio"}}}})
    batch = [xchg("summarize", "abcd", Out("mini", "abcd")) for _ in range(5)]
    batch += [xchg("summarize", "abcd", Out("mini", "wxyz")) for _ in range(3)]
    batch += [xchg("summarize", "abcd", Out("mini", "abcx")) for _ in range(2)]
    await store.write(batch)
    await score(config, store, ScoreOptions())
    c = candidate_of(await build_report(config, store), "summarize", "mini")
    assert c.similarity_histogram == [3, 0, 0, 0, 0, 0, 0, 2, 0, 5]
    (similarity,) = c.scorers
    assert (similarity.n, similarity.passed, similarity.failed) == (10, 5, 5)  # threshold 0.8


# --------------------------------------------------------------------------- money


async def test_costs_latency_volume_and_monthly_figures(
    store: Store, make_config, candidate_of, task_of, xchg,
) -> None:
    config = make_config(store.url, models=BIG_MINI_TINY, tasks={"alpha": {"candidates": ["mini", "tiny"], "scorers": ["exact"]}, "beta": {"candidates": ["mini"], "scorers": ["exact"]}})
    rng = random.Random(7)
    n = 23
    lat = {k: rng.sample(range(100, 9000), n) for k in ("primary", "mini", "tiny", "replay")}
    p_cost = [0.002 + 0.0001 * i for i in range(n)]
    mini_cost = [0.0003 if i < 2 else 0.0004 + 0.00001 * i for i in range(n)]
    batch = []
    for i in range(n):
        outs = [
            # Two failed calls: they cost money (spend) but are no "cost of a call" and no latency.
            Out("mini", None if i < 2 else "ok", cost=mini_cost[i],
                latency=60_000.0 if i < 2 else float(lat["mini"][i])),
            Out("tiny", "ok", cost=0.0001, latency=float(lat["tiny"][i])),
        ]
        if i < 5:
            outs.append(Out(NOISE_FLOOR_MODEL, "ok", cost=0.002, latency=float(lat["replay"][i])))
        batch.append(xchg("alpha", "ok", *outs, cost=p_cost[i], latency=float(lat["primary"][i])))
    beta_lat = [250.0, 100.0, 400.0, 300.0, 200.0, 900.0, 700.0, 800.0, 600.0, 500.0]
    for i in range(10):
        batch.append(xchg("beta", "ok", Out("mini", "ok", cost=0.001, latency=50.0 + i),
                          cost=0.01, latency=beta_lat[i]))
    today = utcnow().date()
    traffic = [
        TrafficRecord(today - timedelta(days=1), "alpha", "big", requests=6000, sampled=12),
        TrafficRecord(today, "alpha", "big", requests=4000, sampled=11),
        *[TrafficRecord(today - timedelta(days=d), "beta", "big", requests=300, sampled=4)
          for d in range(3)],
    ]
    await store.write(batch, traffic=traffic)
    await score(config, store, ScoreOptions())
    # What an earlier judge version cost on alpha (still spent, though no longer current).
    alpha_outputs = [o.id for o in batch[0].outputs] + [o.id for o in batch[1].outputs]
    async with store.engine.begin() as conn:
        await insert_scores(conn, [
            ScoreRow(oid, "judge", "0-retired", 0.5, True, {}, 0.05, utcnow()) for oid in alpha_outputs
        ])
    judge_spend = 0.05 * len(alpha_outputs)

    report = await build_report(config, store)
    alpha, beta = task_of(report, "alpha"), task_of(report, "beta")

    # Volume: 10,000 production requests on 2 days; 900 on 3.
    assert (alpha.requests, alpha.days, alpha.requests_per_day) == (10_000, 2.0, 5000.0)
    assert (beta.requests, beta.days, beta.requests_per_day) == (900, 3.0, 300.0)

    mean_primary = sum(p_cost) / n
    assert alpha.primary_cost_per_1k == pytest.approx(mean_primary * 1000)
    monthly_alpha = 5000 * 30 * mean_primary
    assert alpha.monthly_primary_cost == pytest.approx(monthly_alpha)
    monthly_beta = 300 * 30 * 0.01
    assert beta.monthly_primary_cost == pytest.approx(monthly_beta)
    assert alpha.share_of_spend == pytest.approx(monthly_alpha / (monthly_alpha + monthly_beta))
    assert beta.share_of_spend == pytest.approx(monthly_beta / (monthly_alpha + monthly_beta))

    shadow = sum(mini_cost) + 0.0001 * n + 0.002 * 5  # every output, failed ones included
    assert alpha.shadow_spend == pytest.approx(shadow)
    assert alpha.judge_spend == pytest.approx(judge_spend)
    evaluation = (shadow + judge_spend) / 2 * 30
    assert alpha.monthly_evaluation_cost == pytest.approx(evaluation)

    mini = candidate_of(report, "alpha", "mini")
    mean_mini = sum(mini_cost[2:]) / (n - 2)  # successful calls only
    assert mini.cost_per_1k == pytest.approx(mean_mini * 1000)
    assert mini.monthly_cost == pytest.approx(5000 * 30 * mean_mini)
    assert mini.monthly_savings == pytest.approx(monthly_alpha - 5000 * 30 * mean_mini)
    assert mini.monthly_savings_net == pytest.approx(monthly_alpha - 5000 * 30 * mean_mini - evaluation)
    assert mini.shadow_spend == pytest.approx(sum(mini_cost))
    assert mini.latency_p50 == pytest.approx(nearest_rank(lat["mini"][2:], 0.5))
    assert mini.latency_p95 == pytest.approx(nearest_rank(lat["mini"][2:], 0.95))
    assert mini.latency_p95 < 60_000  # failed calls' latency left out

    tiny = candidate_of(report, "alpha", "tiny")
    assert tiny.cost_per_1k == pytest.approx(0.1)
    assert tiny.monthly_savings == pytest.approx(monthly_alpha - 5000 * 30 * 0.0001)
    assert tiny.monthly_savings_net == pytest.approx(monthly_alpha - 5000 * 30 * 0.0001 - evaluation)
    assert tiny.latency_p50 == pytest.approx(nearest_rank(lat["tiny"], 0.5))
    assert tiny.latency_p95 == pytest.approx(nearest_rank(lat["tiny"], 0.95))

    assert alpha.primary_latency_p50 == pytest.approx(nearest_rank(lat["primary"], 0.5))
    assert alpha.primary_latency_p95 == pytest.approx(nearest_rank(lat["primary"], 0.95))
    # Ten values by hand (100, 200, 250, 300, 400, ...): the 5th and the 10th smallest.
    assert (beta.primary_latency_p50, beta.primary_latency_p95) == (400.0, 900.0)
    beta_mini = candidate_of(report, "beta", "mini")
    assert (beta_mini.latency_p50, beta_mini.latency_p95) == (54.0, 59.0)
    beta_eval = 10 * 0.001 / 3 * 30
    assert beta.monthly_evaluation_cost == pytest.approx(beta_eval)
    assert beta_mini.monthly_savings_net == pytest.approx(monthly_beta - 300 * 30 * 0.001 - beta_eval)

    o = report.overview
    assert o["monthly_primary"] == pytest.approx(monthly_alpha + monthly_beta)
    assert o["monthly_evaluation"] == pytest.approx(evaluation + beta_eval)
    assert o["monthly_now"] == pytest.approx(monthly_alpha + monthly_beta + evaluation + beta_eval)
    assert o["promotions"] == []  # 21 scored outputs are far too few
    assert o["monthly_with_promotions"] == pytest.approx(o["monthly_now"])


# --------------------------------------------------------------------------- config problem


async def test_primary_failing_its_own_schema_is_a_config_problem(
    store: Store, tmp_path: Path, make_config, task_of, xchg, candidate_of,
) -> None:
    schema = tmp_path / "order.schema.json"
    schema.write_text(json.dumps(ORDER_SCHEMA))
    task = {"candidates": ["mini", "tiny"], "json_schema": str(schema), "scorers": ["schema"]}
    config = make_config(store.url, models=BIG_MINI_TINY, tasks={"extract": task, "extract_ok": task, "extract_few": task})
    good, bad = '{"sku": "A1", "qty": 2}', '{"sku": 5}'
    outs = (Out("mini", good), Out("tiny", '{"qty": 1, "sku": "B"}'))
    batch = [xchg("extract", bad if i < 10 else good, *outs) for i in range(20)]  # 10 of 20
    batch.append(xchg("extract", bad, Out("mini", None), Out("tiny", None)))  # no check possible
    # 2 of 20 is the 10% limit as observed, but a primary failing 5% of the time shows that
    # on some night far too often: CONFIG PROBLEM needs the lower bound above the limit.
    batch += [xchg("extract_ok", bad if i < 2 else good, *outs) for i in range(20)]
    batch += [xchg("extract_few", bad, *outs) for _ in range(9)]  # too few checks to judge
    await store.write(batch)
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)

    t = task_of(report, "extract")
    assert (t.primary_schema_checked, t.primary_schema_invalid) == (20, 10)
    for model in ("mini", "tiny"):
        c = candidate_of(report, "extract", model)
        assert c.verdict == "CONFIG PROBLEM"
        assert "(10 of 20; at least" in c.reason and c.command is None
    ok = task_of(report, "extract_ok")
    assert (ok.primary_schema_checked, ok.primary_schema_invalid) == (20, 2)
    assert {c.verdict for c in ok.candidates} == {"NEED MORE DATA"}
    few = task_of(report, "extract_few")
    assert (few.primary_schema_checked, few.primary_schema_invalid) == (9, 9)
    assert {c.verdict for c in few.candidates} == {"NEED MORE DATA"}
    assert report.overview["verdicts"]["CONFIG PROBLEM"] == 2
    html = render_html(report)
    assert "Primary schema validity: 50.0% of 20 exchanges." in html
