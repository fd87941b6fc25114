"""The report's first screen: per task type the action, its one-line reason (n, pass rate, the
bound against the bar, the excess over the noise floor) and what would change it; the money
(gross, evaluation spend, net, how to spend less); a promoted task type said as such, never as
"can move"; requests per day as whole numbers. Crafted data scored with the real `score()`."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shadowroute.records import TrafficRecord, utcnow
from shadowroute.report import build_report, render_html, report_json
from shadowroute.report.reasons import per_day
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from shadowroute.store.queries.routes import add_route_change
from support.config import BIG_MINI_TINY
from support.report import MIXED_TASKS, Out, seed_mixed

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("value", "text"), [
    (1293.0, "1,293"), (1292.6, "1,293"), (214.4, "214"), (1.0, "1"), (0.4, "<1"), (0.0, "0"),
    (None, "–"),
])
def test_requests_per_day_are_whole_numbers(value: float | None, text: str) -> None:
    assert per_day(value) == text


async def test_every_action_with_its_reason_and_what_would_change_it(
    store: Store, make_config, task_of,
) -> None:
    config = make_config(store.url, models=BIG_MINI_TINY, tasks=MIXED_TASKS)
    await seed_mixed(store)
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)
    actions = {a.task: a for a in report.actions}
    assert [a.task for a in report.actions] == [t.task for t in report.tasks]
    assert {t: (a.action, a.model) for t, a in actions.items()} == {
        "easy": ("PROMOTE", "mini"), "hard": ("HOLD", "mini"),
        "young": ("NEED MORE DATA", "mini"), "spare": ("NO CANDIDATES", None)}
    assert report.action_counts == {"PROMOTE": 1, "CASCADE": 0, "PARTIAL": 0, "PROMOTED": 0,
                                    "DEMOTE RECOMMENDED": 0, "CONFIG PROBLEM": 0,
                                    "NEED MORE DATA": 1, "HOLD": 1, "NO CANDIDATES": 1}
    # Settled verdicts, for running pipelines' maintenance rate (tiny is still open).
    primary = task_of(report, "easy").primary_model
    assert report.overview["shadow_rates"] == {
        task: {"mini": {"rate": 0.1, "why": "settled", "verdict": verdict, "primary": primary,
                        "policy": config.policy_fingerprint(task)}}
        for task, verdict in (("easy", "PROMOTE"), ("hard", "HOLD"))}

    easy, mini = actions["easy"], task_of(report, "easy").candidates[0]
    bound = mini.sequential_lower
    assert bound is not None and bound >= 0.9
    assert easy.reason.startswith("n 200 · pass rate 99.0% · always-valid lower bound ")
    assert f"always-valid lower bound {bound * 100:.1f}% ≥ bar 90.0%" in easy.reason
    assert "excess over the noise floor 1.7%: −0.7% (upper " in easy.reason
    assert "≤ margin 6.0%)" in easy.reason
    # Nothing to wait for; the settled candidate is shadowed at the maintenance rate now.
    assert easy.change == ("mini settled: shadowed on 10% of sampled calls from now on "
                           "([decision] maintenance_rate), at the full rate again when the "
                           "primary or the task's settings change")
    assert easy.command == "shadowroute promote easy --to mini"
    assert easy.others == ["tiny NEED MORE DATA"]
    assert easy.monthly_savings == pytest.approx(720.0)  # 3000/day x 30 x ($0.01 - $0.002)

    hard = actions["hard"]
    assert hard.reason.startswith("n 100 · pass rate 70.0% · upper bound ")
    assert "< bar 95.0%" in hard.reason
    for words in ("more data would not change it", "a better candidate", "a cascade",
                  "[tasks.hard] required_quality, now 95.0%"):
        assert words in hard.change

    young = actions["young"]
    assert young.reason == "n 20 (fewer than the 100 required) · pass rate 100.0% · " + \
        young.reason.split("pass rate 100.0% · ", 1)[1]
    assert young.change.startswith("80 more scored outputs: about 4 days more at today's volume"
                                   " (20 scored a day)")
    assert "[tasks.young] sample_rate (now 10%) gets there sooner" in young.change
    assert actions["spare"].change == "add candidates to [tasks.spare] candidates"
    assert actions["spare"].requests_per_day == 5.0

    # The terminal's short reason, on every candidate.
    assert mini.why.startswith(f"bound {bound * 100:.1f}% ≥ 90.0%, excess ≤ +")
    assert task_of(report, "hard").candidates[0].why.startswith("pass ≤ ")
    assert task_of(report, "young").candidates[0].why == "n 20 < 100 required"

    html = render_html(report)
    summary = html[html.index('<section id="summary">'):html.index('<section id="overview">')]
    assert html.index('<section id="summary">') < html.index('<section id="overview">')
    for a in report.actions:
        assert f'data-action="{a.action}"' in summary
    assert "What would change it:</strong> more data would not change it" in summary
    assert "<code class=\"cmd\">shadowroute promote easy --to mini</code>" in summary
    assert ">3,000 requests/day<" in summary and ">5 requests/day<" in summary
    assert "3,000.0" not in html and "(40/day," in html  # whole numbers everywhere

    twin = json.loads(report_json(report))
    assert [(a["task"], a["action"]) for a in twin["actions"]] == [
        (a.task, a.action) for a in report.actions]
    assert twin["action_counts"] == report.action_counts
    assert twin["tasks"][0]["candidates"][0]["why"] == mini.why
    assert twin["tasks"][0]["candidates"][0]["refuted"] == []
    (hard_json,) = [t for t in twin["tasks"] if t["task"] == "hard"]
    assert hard_json["candidates"][0]["refuted"] == ["quality"]
    assert hard_json["candidates"][0]["upper_bound"] < 0.95


async def test_money_explained_with_the_setting_that_lowers_evaluation_spend(
    store: Store, make_config,
) -> None:
    config = make_config(store.url, models=BIG_MINI_TINY, tasks=MIXED_TASKS)
    await seed_mixed(store)
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)
    m, o = report.money, report.overview
    # easy evaluates for (200 x .002 + 200 x .001 + 60 x .01) x 30 = $36, hard $3, young $0.60.
    assert m["evaluation"] == pytest.approx(o["monthly_evaluation"]) == pytest.approx(39.6)
    assert m["gross"] == pytest.approx(o["monthly_savings"]) == pytest.approx(720.0)
    assert m["net"] == pytest.approx(720.0 - 39.6)
    assert m["note"].startswith("Evaluation costs $39.60 a month of the $720.00 saved")
    by = {row["task"]: row for row in m["by_task"]}
    assert [row["task"] for row in m["by_task"]] == ["easy", "hard", "young"]  # costliest first
    assert by["easy"]["candidates"] == pytest.approx(18.0)
    assert by["easy"]["replays"] == pytest.approx(18.0)
    assert by["easy"]["sample_rate"] == 0.1
    assert any("[tasks.easy] sample_rate 0.1 → 0.05 halves" in line and "(−$18.00/month)" in line
               for line in by["easy"]["advice"])
    assert any("[tasks.easy] noise_floor_rate 0.1 sets the primary's replays ($18.00/month)"
               in line for line in by["easy"]["advice"])
    # Every candidate of hard HOLDs: nothing more to learn from shadowing it.
    assert any("every candidate HOLDs" in line and "[tasks.hard] candidates" in line
               for line in by["hard"]["advice"])
    # The economics: easy's $1.20 spent so far is paid back by mini's $720/month in days, with
    # nothing left to spend on a verdict; hard buys no saving at all; young's open candidate
    # needs the projection's days at today's evaluation rate.
    assert by["easy"]["spent"] == pytest.approx(1.2) and by["easy"]["to_verdict"] == 0.0
    assert by["easy"]["payback_months"] == pytest.approx(1.2 / 720.0)
    assert by["hard"]["payback_months"] is None and by["hard"]["to_verdict"] is None
    assert any("cannot pay for itself" in line for line in by["hard"]["advice"])
    young = next(t for t in report.tasks if t.task == "young").candidates[0]
    assert young.days_needed and young.monthly_savings
    assert by["young"]["to_verdict"] == pytest.approx(0.6 / 30 * young.days_needed)
    assert by["young"]["payback_months"] == pytest.approx(
        (by["young"]["spent"] + by["young"]["to_verdict"]) / young.monthly_savings)
    # From now on: settled mini at the maintenance rate (10%) in easy and hard; easy's tiny at
    # its own share; the replays as now.
    tiny = next(c for t in report.tasks if t.task == "easy" for c in t.candidates
                if c.model == "tiny")
    tiny_share = 1.0 if tiny.shadow_rate is None else tiny.shadow_rate
    assert by["easy"]["next_month"] == pytest.approx(12.0 * 0.1 + 6.0 * tiny_share + 18.0)
    assert by["hard"]["next_month"] == pytest.approx(by["hard"]["candidates"] * 0.1
                                                     + by["hard"]["replays"])
    assert m["evaluation_next"] == pytest.approx(sum(r["next_month"] for r in m["by_task"]))
    html = render_html(report)
    assert "<th>from now on</th>" in html
    assert 'id="money-summary"' in html and '<span class="big">$680</span>' in html
    assert "[tasks.easy] sample_rate 0.1 → 0.05 halves" in html
    assert "<th>pays back in</th>" in html and ">never</td>" in html


async def test_a_negative_net_saving_is_explained(store: Store, make_config, xchg) -> None:
    """A move that saves less than evaluating it costs: the net is negative, and the page says
    why and which settings lower the evaluation spend."""
    config = make_config(store.url, models=BIG_MINI_TINY, decision={"sequential": False},
                         tasks={"cheap": {"candidates": ["mini"], "scorers": ["exact"],
                                          "required_quality": 0.5, "margin": 0.5,
                                          "min_samples": 10, "sample_rate": 1.0}})
    await store.write([xchg("cheap", "yes", Out("mini", "yes", cost=0.0009), cost=0.001)
                       for _ in range(20)],
                      traffic=[TrafficRecord(utcnow().date(), "cheap", "big", requests=20)])
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)
    (a,) = report.actions
    assert a.action == "PROMOTE"
    # 20/day x 30 x ($0.001 - $0.0009) = $0.06 saved; evaluating: 20 x $0.0009 x 30 = $0.54.
    assert a.monthly_savings == pytest.approx(0.06)
    assert a.monthly_savings_net == pytest.approx(0.06 - 0.54)
    assert report.money["net"] < 0
    assert report.money["note"].startswith("Net is negative: at today's volume, evaluating costs")
    html = render_html(report)
    assert 'id="negative-net"' in html
    assert "evaluating costs more than the move saves" in html
    assert "[tasks.cheap] sample_rate 1 → 0.5 halves" in html


async def test_a_promoted_task_type_is_not_a_move_to_make(
    store: Store, make_config,
) -> None:
    """After a promotion the candidate that serves the task type still shows PROMOTE on its
    shadow evidence: the page says the task type is promoted, and never "No task type can move
    yet" beside a PROMOTE count."""
    config = make_config(store.url, models=BIG_MINI_TINY, tasks=MIXED_TASKS)
    await seed_mixed(store)
    await score(config, store, ScoreOptions())
    await add_route_change(store, {
        "created_at": utcnow() - timedelta(hours=1), "task_type": "easy", "action": "promote",
        "model": "mini", "primary_model": "big", "actor": "alice", "reason": None,
        "forced": False, "report_id": None, "evidence": {"n": 200}})
    report = await build_report(config, store)
    (easy,) = [a for a in report.actions if a.task == "easy"]
    assert (easy.action, easy.model) == ("PROMOTED", "mini")
    assert easy.reason.startswith("served by mini since ")
    assert "(replacing big); drift check NEED MORE DATA" in easy.reason
    assert easy.change == "the drift check waits for scored reverse-shadow pairs"
    assert report.overview["promotions"] == []
    assert report.overview["verdicts"]["PROMOTE"] == 1
    assert report.action_counts["PROMOTED"] == 1 and report.action_counts["PROMOTE"] == 0
    html = render_html(report)
    assert "No task type can move yet" not in html
    assert "No further task type can move yet. <strong>easy</strong> is already promoted: " \
        "served by mini (its PROMOTE verdict says the shadow evidence still holds; not a move " \
        "to make)" in html
    assert "(1 on task types already promoted)" in html
