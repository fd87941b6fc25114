"""`shadowroute report`: crafted data whose right answer is known by hand, scored with the real
`score()` (deterministic scorers only: no judge, no network), then built into a Report. The
overview: what can be promoted and what it saves, fixed against always-valid bounds; the pass-rate
chart; the JSON twin against the report and the HTML."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from shadowroute.config import Config
from shadowroute.report import build_report, render_html, report_json, write_report
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from support.config import BIG_MINI_TINY
from support.report import Out, easy_and_hard

pytestmark = pytest.mark.anyio


def pct(x: float) -> str:
    return f"{x * 100:.1f}%"


@pytest.fixture
def seed_promotable() -> Callable[[Store], Awaitable[None]]:
    async def seed_promotable(store: Store) -> None:
        """easy: mini 198/200, tiny 196/200, replays 59/60; hard: mini 70/100. With costs."""
        batch, traffic = easy_and_hard()
        await store.write(batch, traffic=traffic)

    return seed_promotable


@pytest.fixture
def promotable_config(make_config: Callable[..., Config]) -> Callable[..., Config]:
    def promotable_config(db_url: str, *, sequential: bool) -> Config:
        return make_config(
            db_url, models=BIG_MINI_TINY, decision={"sequential": sequential}, tasks={
                "easy": {"candidates": ["mini", "tiny"], "scorers": ["exact"],
                         "required_quality": 0.9, "margin": 0.06},
                "hard": {"candidates": ["mini"], "scorers": ["exact"]},
            },
        )

    return promotable_config


# --------------------------------------------------------------------------- overview


async def test_promotions_overview_and_sequential_is_more_conservative(
    store: Store, promotable_config, candidate_of, seed_promotable,
) -> None:
    await seed_promotable(store)
    fixed = promotable_config(store.url, sequential=False)
    await score(fixed, store, ScoreOptions())
    report = await build_report(fixed, store)

    mini, tiny = candidate_of(report, "easy", "mini"), candidate_of(report, "easy", "tiny")
    hard = candidate_of(report, "hard", "mini")
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

    # The same data with always-valid bounds: wider, so only the candidate with the clearer
    # evidence can be promoted yet, and it becomes the recommendation.
    nightly = await build_report(promotable_config(store.url, sequential=True), store)
    seq_mini, seq_tiny = candidate_of(nightly, "easy", "mini"), candidate_of(nightly, "easy", "tiny")
    assert (seq_mini.verdict, seq_tiny.verdict) == ("PROMOTE", "NEED MORE DATA")
    assert seq_tiny.command is None and seq_tiny.samples_needed and seq_tiny.samples_needed > 0
    for c, fixed_result in ((seq_mini, mini), (seq_tiny, tiny)):
        assert c.sequential_lower is not None and c.sequential_lower < fixed_result.lower_bound
        assert c.lower_bound == pytest.approx(fixed_result.lower_bound)
    assert [(p["task"], p["model"]) for p in nightly.overview["promotions"]] == [("easy", "mini")]
    # easy on mini at $0.002: 3000 x 30 x 0.002 = $180, plus hard unchanged and evaluation.
    assert nightly.overview["monthly_with_promotions"] == pytest.approx(180.0 + 120.0 + 39.0)

    # tiny's non-inferiority is still open and rests on 60 replays against 200 outputs: the
    # noise floor is the less certain side, so easy replays more from now on; hard has nothing
    # open (HOLD) and the fixed report nothing at all.
    assert nightly.overview["replay_shares"] == {"easy": 0.5, "hard": 0.1}
    assert report.overview["replay_shares"] == {"easy": 0.1, "hard": 0.1}
    assert "Replays raised to 50% of sampled exchanges (from 10%)" in render_html(nightly)
    assert "Replays raised" not in html


async def test_a_promote_without_cost_data_is_still_listed_as_a_promotion(
    store: Store, make_config, candidate_of, xchg,
) -> None:
    """Costs are optional (a provider may not report them); a PROMOTE verdict must still reach
    the overview's list of promotions, not only the task's own section."""
    config = make_config(store.url, models=BIG_MINI_TINY, tasks={
        "vip triage": {"candidates": ["mini"], "scorers": ["exact"], "required_quality": 0.5,
                       "margin": 0.5, "min_samples": 10}}, decision={"sequential": False})
    await store.write([xchg("vip triage", "yes", Out("mini", "yes")) for _ in range(20)])
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)
    c = candidate_of(report, "vip triage", "mini")
    assert c.verdict == "PROMOTE"
    assert c.command == "shadowroute promote 'vip triage' --to mini"
    assert c.monthly_cost is None
    assert [p["command"] for p in report.overview["promotions"]] == [
        "shadowroute promote 'vip triage' --to mini"]
    assert "No task type can move yet" not in render_html(report)


async def test_the_pass_rate_chart_shows_a_candidate_that_never_passes(
    store: Store, make_config, candidate_of, xchg,
) -> None:
    """A 0% pass rate is a pass rate: the chart must draw that candidate like the others."""
    config = make_config(store.url, models=BIG_MINI_TINY, tasks={"classify": {"candidates": ["mini", "tiny"], "scorers": ["exact"]}})
    await store.write([xchg("classify", "yes", Out("mini", "yes"), Out("tiny", "no"))
                       for _ in range(10)])
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)
    assert candidate_of(report, "classify", "tiny").pass_rate == 0.0
    html = render_html(report)
    start = html.index('aria-label="pass rate and bounds per candidate"')
    chart = html[start:html.index("</svg>", start)]
    assert '<text x="0" y="34">mini</text>' in chart
    assert '<text x="0" y="60">tiny</text>' in chart
    assert chart.count("<circle") == 2


# --------------------------------------------------------------------------- JSON twin


async def test_json_twin_matches_the_report_and_the_html(
    store: Store, tmp_path: Path, promotable_config, seed_promotable,
) -> None:
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
