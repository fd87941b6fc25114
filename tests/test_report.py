"""`shadowroute report`: crafted data whose right answer is known by hand, scored with the real
`score()` (deterministic scorers only: no judge, no network), then built into a Report and
rendered. Counts, bounds, money, verdicts, escaping of hostile model output, the JSON twin, the
CLI, and a headless-browser render."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from browser import is_blank, render
from shadowroute.config import Config, load_config
from shadowroute.decision import wilson_lower
from shadowroute.records import (
    NOISE_FLOOR_MODEL,
    CandidateOutputRecord,
    ExchangeRecord,
    TrafficRecord,
    utcnow,
)
from shadowroute.report import Report, build_report, render_html, report_json, write_report
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from shadowroute.store.queries.scores import ScoreRow, insert_scores

pytestmark = pytest.mark.anyio

MODELS = {
    "big": {"base_url": "http://127.0.0.1:9/v1"},
    "mini": {"base_url": "http://127.0.0.1:9/v1"},
    "tiny": {"base_url": "http://127.0.0.1:9/v1"},
}
ORDER_SCHEMA = {
    "type": "object",
    "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
    "required": ["sku", "qty"],
}


def make_config(db_url: str, *, decision: dict[str, Any] | None = None, **tasks: Any) -> Config:
    data: dict[str, Any] = {"database_url": db_url, "models": MODELS, "tasks": tasks}
    if decision is not None:
        data["decision"] = decision
    return load_config(data=data)


@dataclass
class Out:
    model: str
    text: str | None
    """``None``: the call failed (error_kind ``timeout``)."""
    cost: float | None = None
    latency: float | None = None


def xchg(task: str, primary: str | None, *outs: Out, cost: float | None = None,
         latency: float | None = None, age_days: float = 0, content: str | None = None,
         primary_model: str = "big") -> ExchangeRecord:
    x = ExchangeRecord(
        task_type=task,
        primary_model=primary_model,
        request={"model": primary_model,
                 "messages": [{"role": "user", "content": content or f"question for {task}"}]},
        primary_output=primary,
        latency_ms=latency,
        cost_usd=cost,
        created_at=utcnow() - timedelta(days=age_days),
    )
    for o in outs:
        x.outputs.append(CandidateOutputRecord(
            x.id, o.model, output=o.text, latency_ms=o.latency, cost_usd=o.cost,
            error_kind="timeout" if o.text is None else None,
            error="boom" if o.text is None else None,
        ))
    return x


def candidate(report: Report, task: str, model: str) -> Any:
    (t,) = [t for t in report.tasks if t.task == task]
    (c,) = [c for c in t.candidates if c.model == model]
    return c


def task_of(report: Report, task: str) -> Any:
    (t,) = [t for t in report.tasks if t.task == task]
    return t


def nearest_rank(values: list[float], q: float) -> float:
    """The ceil(q * n)-th smallest value (1-based)."""
    ordered = sorted(values)
    return ordered[math.ceil(q * len(ordered)) - 1]


def pct(x: float) -> str:
    return f"{x * 100:.1f}%"


# --------------------------------------------------------------------------- 1. aggregation


async def test_counts_rates_errors_unscored_and_noise_floor(store: Store) -> None:
    config = make_config(store.url, classify={"candidates": ["mini", "tiny"], "scorers": ["exact"]})
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
    assert (t.noise_n, t.noise_failures) == (50, 1)
    # No traffic counts: volume falls back to the stored exchanges over one day; no costs.
    assert (t.requests, t.days, t.requests_per_day) == (155, 1.0, 155.0)
    assert t.monthly_primary_cost is None and t.primary_cost_per_1k is None
    assert t.share_of_spend is None

    a = candidate(report, "classify", "mini")
    assert (a.outputs, a.errors, a.unscored, a.ignored) == (155, 2, 3, 2)
    assert (a.n, a.passed) == (150, 147)
    assert a.pass_rate == pytest.approx(147 / 150)
    assert a.lower_bound == pytest.approx(wilson_lower(147, 150, 0.95))
    assert a.noise_floor == pytest.approx(1 / 50)
    # 98% clears 95% but 150 samples cannot show it with an always-valid bound.
    assert a.verdict == "NEED MORE DATA"
    assert a.samples_needed and a.samples_needed > 0
    assert a.command is None
    (exact,) = a.scorers
    assert (exact.name, exact.n, exact.passed, exact.failed, exact.ignored) == ("exact", 152, 147, 3, 2)

    b = candidate(report, "classify", "tiny")
    assert (b.outputs, b.errors, b.unscored, b.ignored) == (155, 0, 3, 2)
    assert (b.n, b.passed) == (150, 120)
    assert b.pass_rate == pytest.approx(0.8)
    assert b.lower_bound == pytest.approx(wilson_lower(120, 150, 0.95))
    assert b.verdict == "HOLD"  # 80% < 95%: more data cannot help
    assert b.samples_needed is None and b.command is None

    # Without a window the four old exchanges count too.
    everything = await build_report(config, store)
    a_all = candidate(everything, "classify", "mini")
    assert (a_all.n, a_all.passed, a_all.outputs) == (154, 147, 159)
    t_all = task_of(everything, "classify")
    assert (t_all.noise_n, t_all.noise_failures) == (54, 5)


async def test_a_failed_replay_call_is_not_counted_as_the_primary_disagreeing(store: Store) -> None:
    # A replay that timed out says nothing about the primary's consistency: counting it as a
    # disagreement would raise the noise floor and make PROMOTE easier.
    config = make_config(store.url, classify={"candidates": ["mini"], "scorers": ["exact"]})
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
    assert candidate(await build_report(config, store), "classify", "mini").noise_floor == pytest.approx(0.1)


async def test_similarity_distribution_buckets_values_on_both_backends(store: Store) -> None:
    # ratio: identical texts score 1.0 (last bucket), disjoint letters 0.0 (first), and
    # "abcd" vs "abcx" 0.75 (bucket 7: [0.7, 0.8)).
    config = make_config(store.url, summarize={"candidates": ["mini"],
                                               "scorers": {"similarity": {"method": "ratio"}}})
    batch = [xchg("summarize", "abcd", Out("mini", "abcd")) for _ in range(5)]
    batch += [xchg("summarize", "abcd", Out("mini", "wxyz")) for _ in range(3)]
    batch += [xchg("summarize", "abcd", Out("mini", "abcx")) for _ in range(2)]
    await store.write(batch)
    await score(config, store, ScoreOptions())
    c = candidate(await build_report(config, store), "summarize", "mini")
    assert c.similarity_histogram == [3, 0, 0, 0, 0, 0, 0, 2, 0, 5]
    (similarity,) = c.scorers
    assert (similarity.n, similarity.passed, similarity.failed) == (10, 5, 5)  # threshold 0.8


# --------------------------------------------------------------------------- 2. money


async def test_costs_latency_volume_and_monthly_figures(store: Store) -> None:
    config = make_config(
        store.url,
        alpha={"candidates": ["mini", "tiny"], "scorers": ["exact"]},
        beta={"candidates": ["mini"], "scorers": ["exact"]},
    )
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

    mini = candidate(report, "alpha", "mini")
    mean_mini = sum(mini_cost[2:]) / (n - 2)  # successful calls only
    assert mini.cost_per_1k == pytest.approx(mean_mini * 1000)
    assert mini.monthly_cost == pytest.approx(5000 * 30 * mean_mini)
    assert mini.monthly_savings == pytest.approx(monthly_alpha - 5000 * 30 * mean_mini)
    assert mini.monthly_savings_net == pytest.approx(monthly_alpha - 5000 * 30 * mean_mini - evaluation)
    assert mini.shadow_spend == pytest.approx(sum(mini_cost))
    assert mini.latency_p50 == pytest.approx(nearest_rank(lat["mini"][2:], 0.5))
    assert mini.latency_p95 == pytest.approx(nearest_rank(lat["mini"][2:], 0.95))
    assert mini.latency_p95 < 60_000  # failed calls' latency left out

    tiny = candidate(report, "alpha", "tiny")
    assert tiny.cost_per_1k == pytest.approx(0.1)
    assert tiny.monthly_savings == pytest.approx(monthly_alpha - 5000 * 30 * 0.0001)
    assert tiny.monthly_savings_net == pytest.approx(monthly_alpha - 5000 * 30 * 0.0001 - evaluation)
    assert tiny.latency_p50 == pytest.approx(nearest_rank(lat["tiny"], 0.5))
    assert tiny.latency_p95 == pytest.approx(nearest_rank(lat["tiny"], 0.95))

    assert alpha.primary_latency_p50 == pytest.approx(nearest_rank(lat["primary"], 0.5))
    assert alpha.primary_latency_p95 == pytest.approx(nearest_rank(lat["primary"], 0.95))
    # Ten values by hand (100, 200, 250, 300, 400, ...): the 5th and the 10th smallest.
    assert (beta.primary_latency_p50, beta.primary_latency_p95) == (400.0, 900.0)
    beta_mini = candidate(report, "beta", "mini")
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


# --------------------------------------------------------------------------- 3. overview


async def seed_promotable(store: Store) -> None:
    """easy: mini 198/200, tiny 196/200, replays 59/60; hard: mini 70/100. With costs."""
    batch = []
    for i in range(200):
        outs = [Out("mini", "miss" if i < 2 else "yes", cost=0.002),
                Out("tiny", "miss" if i < 4 else "yes", cost=0.001)]
        if i < 60:
            outs.append(Out(NOISE_FLOOR_MODEL, "miss" if i == 0 else "yes", cost=0.01))
        batch.append(xchg("easy", "yes", *outs, cost=0.01))
    for i in range(100):
        batch.append(xchg("hard", "yes", Out("mini", "miss" if i < 30 else "yes", cost=0.001),
                          cost=0.004))
    today = utcnow().date()
    await store.write(batch, traffic=[TrafficRecord(today, "easy", "big", requests=3000),
                                      TrafficRecord(today, "hard", "big", requests=1000)])


def promotable_config(db_url: str, *, sequential: bool) -> Config:
    return make_config(
        db_url, decision={"sequential": sequential},
        easy={"candidates": ["mini", "tiny"], "scorers": ["exact"], "required_quality": 0.9,
              "margin": 0.05},
        hard={"candidates": ["mini"], "scorers": ["exact"]},
    )


async def test_promotions_overview_and_sequential_is_more_conservative(store: Store) -> None:
    await seed_promotable(store)
    fixed = promotable_config(store.url, sequential=False)
    await score(fixed, store, ScoreOptions())
    report = await build_report(fixed, store)

    mini, tiny = candidate(report, "easy", "mini"), candidate(report, "easy", "tiny")
    hard = candidate(report, "hard", "mini")
    assert (mini.verdict, tiny.verdict, hard.verdict) == ("PROMOTE", "PROMOTE", "HOLD")
    assert mini.command == "shadowroute promote easy --to mini"
    assert tiny.command == "shadowroute promote easy --to tiny"
    assert hard.command is None
    assert mini.sequential_lower is None  # off in this configuration
    assert (tiny.recommended, mini.recommended) == (True, False)  # the larger saving

    # easy: 3000/day x 30 x $0.01 = $900 now; tiny at $0.001 = $90. hard: 1000 x 30 x $0.004.
    # Evaluation per month: easy (200 x .002 + 200 x .001 + 60 x .01) x 30 = $36; hard $3.
    o = report.overview
    assert o["monthly_primary"] == pytest.approx(1020.0)
    assert o["monthly_evaluation"] == pytest.approx(39.0)
    assert o["monthly_now"] == pytest.approx(1059.0)
    assert o["monthly_with_promotions"] == pytest.approx(90.0 + 120.0 + 39.0)
    assert o["monthly_savings"] == pytest.approx(810.0)
    assert [(p["task"], p["model"], p["command"]) for p in o["promotions"]] == [
        ("easy", "tiny", "shadowroute promote easy --to tiny")]
    assert o["promotions"][0]["monthly_savings"] == pytest.approx(810.0)
    assert o["promotions"][0]["monthly_savings_net"] == pytest.approx(810.0 - 36.0)
    assert o["verdicts"] == {"PROMOTE": 2, "HOLD": 1, "NEED MORE DATA": 0, "CONFIG PROBLEM": 0}
    html = render_html(report)
    assert '<code class="cmd">shadowroute promote easy --to tiny</code>' in html
    assert "No task type can move yet" not in html

    # The same data with always-valid bounds: wider, so neither can be promoted yet.
    nightly = await build_report(promotable_config(store.url, sequential=True), store)
    for model, fixed_result in (("mini", mini), ("tiny", tiny)):
        c = candidate(nightly, "easy", model)
        assert c.verdict == "NEED MORE DATA"
        assert c.command is None and c.samples_needed and c.samples_needed > 0
        assert c.sequential_lower is not None and c.sequential_lower < fixed_result.lower_bound
        assert c.lower_bound == pytest.approx(fixed_result.lower_bound)
    assert nightly.overview["promotions"] == []
    assert nightly.overview["monthly_with_promotions"] == pytest.approx(1059.0)
    assert "No task type can move yet" in render_html(nightly)


async def test_a_promote_without_cost_data_is_still_listed_as_a_promotion(store: Store) -> None:
    """Costs are optional (a provider may not report them); a PROMOTE verdict must still reach
    the overview's list of promotions, not only the task's own section."""
    config = make_config(store.url, decision={"sequential": False}, **{
        "vip triage": {"candidates": ["mini"], "scorers": ["exact"], "required_quality": 0.5,
                       "margin": 0.5, "min_samples": 10}})
    await store.write([xchg("vip triage", "yes", Out("mini", "yes")) for _ in range(20)])
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)
    c = candidate(report, "vip triage", "mini")
    assert c.verdict == "PROMOTE"
    assert c.command == "shadowroute promote 'vip triage' --to mini"
    assert c.monthly_cost is None
    assert [p["command"] for p in report.overview["promotions"]] == [
        "shadowroute promote 'vip triage' --to mini"]
    assert "No task type can move yet" not in render_html(report)


async def test_the_pass_rate_chart_shows_a_candidate_that_never_passes(store: Store) -> None:
    """A 0% pass rate is a pass rate: the chart must draw that candidate like the others."""
    config = make_config(store.url, classify={"candidates": ["mini", "tiny"], "scorers": ["exact"]})
    await store.write([xchg("classify", "yes", Out("mini", "yes"), Out("tiny", "no"))
                       for _ in range(10)])
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)
    assert candidate(report, "classify", "tiny").pass_rate == 0.0
    html = render_html(report)
    start = html.index('aria-label="pass rate and bounds per candidate"')
    chart = html[start:html.index("</svg>", start)]
    assert '<text x="0" y="34">mini</text>' in chart
    assert '<text x="0" y="60">tiny</text>' in chart
    assert chart.count("<circle") == 2


# --------------------------------------------------------------------------- 4. config problem


async def test_primary_failing_its_own_schema_is_a_config_problem(store: Store, tmp_path: Path) -> None:
    schema = tmp_path / "order.schema.json"
    schema.write_text(json.dumps(ORDER_SCHEMA))
    task = {"candidates": ["mini", "tiny"], "json_schema": str(schema), "scorers": ["schema"]}
    config = make_config(store.url, extract=task, extract_ok=task, extract_few=task)
    good, bad = '{"sku": "A1", "qty": 2}', '{"sku": 5}'
    outs = (Out("mini", good), Out("tiny", '{"qty": 1, "sku": "B"}'))
    batch = [xchg("extract", bad if i < 2 else good, *outs) for i in range(20)]  # 2 of 20: 10%
    batch.append(xchg("extract", bad, Out("mini", None), Out("tiny", None)))  # no check possible
    batch += [xchg("extract_ok", bad if i < 1 else good, *outs) for i in range(20)]  # 5%
    batch += [xchg("extract_few", bad, *outs) for _ in range(9)]  # too few checks to judge
    await store.write(batch)
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)

    t = task_of(report, "extract")
    assert (t.primary_schema_checked, t.primary_schema_invalid) == (20, 2)
    for model in ("mini", "tiny"):
        c = candidate(report, "extract", model)
        assert c.verdict == "CONFIG PROBLEM"
        assert "(2 of 20)" in c.reason and c.command is None
    ok = task_of(report, "extract_ok")
    assert (ok.primary_schema_checked, ok.primary_schema_invalid) == (20, 1)
    assert {c.verdict for c in ok.candidates} == {"NEED MORE DATA"}
    few = task_of(report, "extract_few")
    assert (few.primary_schema_checked, few.primary_schema_invalid) == (9, 9)
    assert {c.verdict for c in few.candidates} == {"NEED MORE DATA"}
    assert report.overview["verdicts"]["CONFIG PROBLEM"] == 2
    html = render_html(report)
    assert "Primary schema validity: 90.0% of 20 exchanges." in html


# --------------------------------------------------------------------------- 5. worst examples

HOSTILE_REQUEST = '<iframe src="https://evil.example/"></iframe> which queue?'
HOSTILE_PRIMARY = "the answer is <b>refund</b>"
HOSTILE_OUTPUT = "the answer is <script>alert(1)</script> <img src=x onerror=alert(1)>"


async def test_worst_examples_come_first_and_are_escaped(store: Store) -> None:
    config = make_config(store.url, classify={"candidates": ["mini"], "scorers": ["exact"]})
    hostile = xchg("classify", HOSTILE_PRIMARY, Out("mini", HOSTILE_OUTPUT), content=HOSTILE_REQUEST)
    failed_call = xchg("classify", "billing", Out("mini", None))
    passing = [xchg("classify", "refund", Out("mini", "refund")) for _ in range(8)]
    await store.write([*passing[:4], hostile, *passing[4:], failed_call])
    await score(config, store, ScoreOptions())
    report = await build_report(config, store, examples=4)

    examples = candidate(report, "classify", "mini").examples
    assert len(examples) == 4
    failed_ids = {hostile.outputs[0].id, failed_call.outputs[0].id}
    assert {e.output_id for e in examples[:2]} == failed_ids
    assert {e.output_id for e in examples[2:]} <= {x.outputs[0].id for x in passing}
    bad = next(e for e in examples if e.output_id == hostile.outputs[0].id)
    assert bad.exchange_id == hostile.id
    assert bad.request == f"user: {HOSTILE_REQUEST}"
    assert (bad.primary, bad.candidate, bad.error) == (HOSTILE_PRIMARY, HOSTILE_OUTPUT, None)
    assert bad.diff == [
        ("equal", "the answer is "),
        ("delete", "<b>refund</b>"),
        ("insert", "<script>alert(1)</script> <img src=x onerror=alert(1)>"),
    ]
    assert [(s["scorer"], s["passed"]) for s in bad.scores] == [("exact", False)]
    call = next(e for e in examples if e.output_id == failed_call.outputs[0].id)
    assert (call.error, call.candidate, call.diff) == ("timeout: boom", "", [])

    html = render_html(report)
    lowered = html.lower()
    for tag in ("<script", "<img", "<iframe", "<b>"):
        assert tag not in lowered, tag
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;iframe src=&#34;https://evil.example/&#34;&gt;&lt;/iframe&gt; which queue?" in html
    assert ("the answer is <del>&lt;b&gt;refund&lt;/b&gt;</del><ins>&lt;script&gt;alert(1)"
            "&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;</ins>") in html
    assert "call failed: timeout: boom" in html
    assert "mini: 4 worst examples" in html


# --------------------------------------------------------------------------- 6. JSON twin


async def test_json_twin_matches_the_report_and_the_html(store: Store, tmp_path: Path) -> None:
    await seed_promotable(store)
    config = promotable_config(store.url, sequential=False)
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)
    html_path, json_path = write_report(report, tmp_path / "out" / "r.html")
    assert json_path == tmp_path / "out" / "r.json"
    twin = json.loads(json_path.read_text(encoding="utf-8"))
    assert twin == json.loads(report_json(report))
    html = html_path.read_text(encoding="utf-8")

    assert twin["id"] == report.id
    assert twin["generated_at"] == report.generated_at.isoformat()
    expected = {("easy", "mini"): (200, 198 / 200, "PROMOTE"),
                ("easy", "tiny"): (200, 196 / 200, "PROMOTE"),
                ("hard", "mini"): (100, 70 / 100, "HOLD")}
    seen = {}
    for t_json, t in zip(twin["tasks"], report.tasks, strict=True):
        assert t_json["task"] == t.task
        for c_json, c in zip(t_json["candidates"], t.candidates, strict=True):
            assert (c_json["model"], c_json["n"], c_json["verdict"]) == (c.model, c.n, c.verdict)
            assert c_json["pass_rate"] == c.pass_rate
            seen[(t.task, c.model)] = (c_json["n"], c_json["pass_rate"], c_json["verdict"])
            assert f'<td class="n">{pct(c.pass_rate)}</td>' in html
    assert seen.keys() == expected.keys()
    for key, (n, rate, verdict) in expected.items():
        assert seen[key][0] == n and seen[key][1] == pytest.approx(rate) and seen[key][2] == verdict
    for text in ("99.0%", "98.0%", "70.0%"):
        assert f'<td class="n">{text}</td>' in html
    assert twin["overview"]["monthly_now"] == pytest.approx(1059.0)
    assert twin["overview"]["promotions"][0]["command"] == "shadowroute promote easy --to tiny"


# --------------------------------------------------------------------------- 7. CLI


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "SHADOWROUTE_CONFIG": "", "SHADOWROUTE_DATABASE_URL": ""}
    return subprocess.run([sys.executable, "-m", "shadowroute", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env)


async def test_cli_report(sqlite_url: str, tmp_path: Path) -> None:
    toml = tmp_path / "shadowroute.toml"
    toml.write_text(
        'database_url = "sqlite+aiosqlite:////nonexistent/dir/never.db"\n'
        '[models.mini]\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[tasks.classify]\ncandidates = ["mini"]\nscorers = ["exact"]\n'
    )
    config = load_config(toml).model_copy(update={"database_url": sqlite_url})
    async with await Store.open(sqlite_url) as store:
        await store.write([xchg("classify", "a", Out("mini", "a" if i < 9 else "b"))
                           for i in range(12)])
        await score(config, store, ScoreOptions())

    out, twin = tmp_path / "x" / "report.html", tmp_path / "y" / "twin.json"
    result = run_cli("report", "--database-url", sqlite_url, "--config", str(toml), "--out",
                     str(out), "--json", str(twin), "--since", "all", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.is_file() and twin.is_file()
    data = json.loads(twin.read_text(encoding="utf-8"))
    (c,) = data["tasks"][0]["candidates"]
    assert (data["tasks"][0]["task"], c["model"], c["n"], c["passed"]) == ("classify", "mini", 12, 9)
    assert data["since"] is None
    assert "75.0%" in out.read_text(encoding="utf-8")

    bad = run_cli("report", "--since", "nonsense", cwd=tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "error: --since: 'nonsense' is not a duration; use e.g. 90m, 24h, 7d"

    # A path that cannot be written: one line naming the option, the old report untouched.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file")
    out.write_text("the previous report", encoding="utf-8")
    unwritable = run_cli("report", "--database-url", sqlite_url, "--config", str(toml),
                         "--out", str(out), "--json", str(blocker / "r.json"), cwd=tmp_path)
    assert unwritable.returncode == 2
    assert "Traceback" not in unwritable.stderr
    assert unwritable.stderr.strip().startswith("error: --json: cannot write ")
    assert len(unwritable.stderr.strip().splitlines()) == 1
    assert out.read_text(encoding="utf-8") == "the previous report"
    assert not list(tmp_path.glob(".*.tmp"))

    work = tmp_path / "work"
    work.mkdir()
    before = datetime.now(UTC).date()
    default = run_cli("report", "--database-url", sqlite_url, "--config", str(toml), cwd=work)
    after = datetime.now(UTC).date()
    assert default.returncode == 0, default.stderr
    written = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    assert written in ([f"reports/shadowroute-{d:%Y-%m-%d}.html", f"reports/shadowroute-{d:%Y-%m-%d}.json"]
                       for d in {before, after})


# --------------------------------------------------------------------------- 8. browser

PWN_SCRIPT = "<script>document.body.dataset.pwned='1'</script>"
PWN_IMG = "<img src=x onerror=\"document.body.dataset.pwned='1'\">"


async def test_hostile_output_renders_as_inert_text_in_a_browser(
    sqlite_url: str, tmp_path: Path, chromium: str
) -> None:
    config = make_config(sqlite_url, classify={"candidates": ["mini"], "scorers": ["exact"]})
    async with await Store.open(sqlite_url) as store:
        await store.write([
            xchg("classify", f"refund {PWN_IMG}", Out("mini", f"{PWN_SCRIPT} {PWN_IMG}"),
                 content=f"{PWN_SCRIPT} which queue?"),
            *[xchg("classify", "refund", Out("mini", "refund")) for _ in range(3)],
            xchg(PWN_IMG, "undeclared task type named by a header"),
        ])
        await score(config, store, ScoreOptions())
        report = await build_report(config, store)
    html_path, _ = write_report(report, tmp_path / "report.html")

    page = render(html_path, chromium=chromium)
    assert not is_blank(page.screenshot)
    dom = page.dom.lower()
    assert "data-pwned" not in dom
    assert "<img" not in dom and "<script" not in dom
    assert "&lt;script&gt;document.body.dataset.pwned='1'&lt;/script&gt;" in page.dom
    assert "&lt;img src=x onerror=\"document.body.dataset.pwned='1'\"&gt;" in page.dom
    assert "shadowroute report" in page.dom
