"""The report's promoted task types: reverse-shadow pairs since a promotion, scored with the real
`score()`, give each promoted task type a drift verdict (HOLDS / NEED MORE DATA / DEMOTE
RECOMMENDED) shown in the HTML, the JSON twin and the terminal table; the overview prices the
route map as it stands. Data crafted so that the right answers are known by hand."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from shadowroute.cli.tables import render_promoted
from shadowroute.config import Config
from shadowroute.records import ROUTE_REVERSE, ExchangeRecord, TrafficRecord, utcnow
from shadowroute.report import Report, build_report, render_html, write_report
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from shadowroute.store.models import RouteChange
from shadowroute.store.queries.routes import add_route_change
from support.config import BIG_MINI_TINY
from support.report import HOSTILE_OUTPUT, HOSTILE_REQUEST, Out, xchg

pytestmark = pytest.mark.anyio

TASK = {"candidates": ["mini"], "scorers": ["exact"], "required_quality": 0.8, "margin": 0.2,
        "min_samples": 20}


@pytest.fixture
def config_for(make_config: Callable[..., Config]) -> Callable[..., Config]:
    def config_for(store: Store, *tasks: str) -> Config:
        # Fixed-sample bounds: small, hand-checkable samples settle both ways.
        return make_config(store.url, models=BIG_MINI_TINY, tasks={t: TASK for t in tasks},
                           decision={"sequential": False})

    return config_for


def forward(task: str, n: int, *, primary_cost: float = 0.01) -> list[ExchangeRecord]:
    """``n`` shadow pairs three days ago, all passing; mini at $0.001 a call."""
    return [xchg(task, "yes", Out("mini", "yes", cost=0.001), cost=primary_cost, age_days=3)
            for _ in range(n)]


def reverse(
    task: str, served: str, *, age_days: float, content: str | None = None,
) -> ExchangeRecord:
    """A reverse-shadow pair: mini served production (``served``), the replaced primary ``big``
    answered ``yes`` as the reference. mini's production call costs $0.005 here, so a reverse
    pair leaking into the candidates' money would show."""
    x = xchg(task, "yes", Out("mini", served, cost=0.005), cost=0.01, age_days=age_days,
             content=content)
    x.route = ROUTE_REVERSE
    return x


async def promote(store: Store, task: str, at: datetime, *, forced: bool = False) -> None:
    await add_route_change(store, {
        "created_at": at, "task_type": task, "action": "promote", "model": "mini",
        "primary_model": "big", "actor": "alice", "reason": "forced in a test" if forced else None,
        "forced": forced, "report_id": None, "evidence": {"n": 60},
    })


@pytest.fixture
def seed_drift(config_for: Callable[..., Config]) -> Callable[[Store], Awaitable[Config]]:
    async def seed_drift(store: Store) -> Config:
        """easy: 60 passing shadow pairs, promoted to mini a day ago; 30 passing reverse pairs from
        before the promotion (not counted) and 40 since, of which 10 pass. other: promotable, not
        promoted. Volume: easy 1000/day at $0.01 ($300/month; mini $30), other 500/day at $0.004
        ($60/month; mini $15)."""
        config = config_for(store, "easy", "other")
        batch = forward("easy", 60) + forward("other", 60, primary_cost=0.004)
        batch += [reverse("easy", "yes", age_days=2) for _ in range(30)]
        batch += [reverse("easy", "yes" if i < 10 else "no", age_days=0.5) for i in range(40)]
        today = utcnow().date()
        await store.write(batch, traffic=[TrafficRecord(today, "easy", "big", requests=1000),
                                          TrafficRecord(today, "other", "big", requests=500)])
        await promote(store, "easy", utcnow() - timedelta(days=1))
        await score(config, store, ScoreOptions())
        return config

    return seed_drift


def section(html: str, start: str, end: str) -> str:
    i = html.index(start)
    return html[i:html.index(end, i)]


def promoted_of(report: Report, task: str) -> Any:
    (p,) = [p for p in report.promoted if p.task == task]
    return p


# --------------------------------------------------------------------------- drift verdicts


async def test_a_drifting_promoted_model_gets_demote_recommended(
    store: Store, tmp_path: Path, seed_drift, task_of,
) -> None:
    config = await seed_drift(store)
    report = await build_report(config, store)

    assert [p.task for p in report.promoted] == ["easy"]
    p = promoted_of(report, "easy")
    assert (p.model, p.primary, p.by, p.forced) == ("mini", "big", "alice", False)
    assert p.verdict == "DEMOTE RECOMMENDED"
    assert p.command == "shadowroute demote easy"
    assert (p.n, p.passed) == (40, 10)
    assert p.pass_rate == pytest.approx(0.25)
    # The detector alarms on the night the failing pairs came in (night 1 is the promotion's
    # UTC day; the pairs came half a day later), on the drop it saw there, against the least
    # pass rate the promotion allowed (required 80%; mini passed 60/60 before it).
    night = ((utcnow() - timedelta(days=0.5)).date() - p.since.date()).days + 1
    assert (p.alarm_night, p.recent_pass_rate, p.reference) == (night, 0.25, pytest.approx(0.8))
    assert "quality dropped: 10 of 40 reverse-shadow pairs passed (25.0%)" in p.reason
    assert report.overview["drift"] == {"HOLDS": 0, "NEED MORE DATA": 0, "DEMOTE RECOMMENDED": 1}
    assert task_of(report, "easy").routed_to == "mini"
    assert task_of(report, "other").routed_to is None

    html_path, json_path = write_report(report, tmp_path / "r.html")
    html = html_path.read_text(encoding="utf-8")
    # The section sits between the overview and the first task type's section.
    assert html.index('<section id="overview">') < html.index('<section id="promoted">') \
        < html.index('<section class="task"')
    promoted = section(html, '<section id="promoted">', "</section>")
    row = section(promoted, "<tr><td>easy</td>", "</tr>")
    assert "<td>mini</td><td>big</td>" in row
    assert '<span class="badge v-DEMOTE-RECOMMENDED">DEMOTE RECOMMENDED</span>' in row
    assert '<td class="n">40</td><td class="n">25.0%</td>' in row
    assert '<code class="cmd">shadowroute demote easy</code>' in promoted
    assert "No task type is promoted yet" not in html
    # The badge class the macro derives has a colour.
    assert ".v-DEMOTE-RECOMMENDED { background: var(--hold); }" in html
    assert ".v-HOLDS { background: var(--promote); }" in html
    # The worst reverse examples: mini's failing production answers against big's.
    assert len(p.examples) == 3
    assert {e.candidate for e in p.examples} == {"no"}
    assert "easy · mini: 3 worst reverse-shadow examples" in promoted
    # The task's own section says who serves it.
    easy = section(html, "<h2>easy</h2>", "</section>")
    assert "served by mini (promoted)" in easy
    assert "served by" not in section(html, "<h2>other</h2>", "</section>")

    twin = json.loads(json_path.read_text(encoding="utf-8"))
    (p_json,) = twin["promoted"]
    assert (p_json["task"], p_json["model"], p_json["verdict"], p_json["command"], p_json["n"]) == (
        "easy", "mini", "DEMOTE RECOMMENDED", "shadowroute demote easy", 40)
    assert p_json["since"] == p.since.isoformat()
    assert twin["overview"]["drift"]["DEMOTE RECOMMENDED"] == 1
    assert report.to_dict()["promoted"][0]["verdict"] == "DEMOTE RECOMMENDED"


async def test_reverse_pairs_that_mostly_pass_hold(store: Store, config_for) -> None:
    config = config_for(store, "steady")
    batch = forward("steady", 60)
    batch += [reverse("steady", "no" if i < 2 else "yes", age_days=0.5) for i in range(60)]
    await store.write(batch)
    await promote(store, "steady", utcnow() - timedelta(days=1), forced=True)
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)

    p = promoted_of(report, "steady")
    assert (p.verdict, p.n, p.passed, p.command) == ("HOLDS", 60, 58, None)
    assert [e.candidate for e in p.examples] == ["no", "no", "yes"]  # the failures first
    assert p.alarm_night is None and p.recent_pass_rate == pytest.approx(58 / 60)
    assert p.forced
    html = render_html(report)
    promoted = section(html, '<section id="promoted">', "</section>")
    assert '<span class="badge v-HOLDS">HOLDS</span>' in promoted
    assert '<span class="forced">forced</span>' in promoted
    assert "shadowroute demote" not in promoted


async def test_too_few_reverse_pairs_need_more_data(store: Store, config_for) -> None:
    config = config_for(store, "young")
    await store.write(forward("young", 60) + [reverse("young", "yes", age_days=0.1) for _ in range(5)])
    await promote(store, "young", utcnow() - timedelta(hours=12))
    await score(config, store, ScoreOptions())
    p = promoted_of(await build_report(config, store), "young")
    assert (p.verdict, p.n, p.command) == ("NEED MORE DATA", 5, None)


# --------------------------------------------------------------------------- which pairs count


async def test_only_reverse_pairs_since_the_promotion_count_and_never_as_promotion_evidence(
    store: Store, candidate_of, seed_drift, task_of,
) -> None:
    config = await seed_drift(store)
    report = await build_report(config, store)
    # 30 passing reverse pairs from before the promotion would make it 70 pairs, 40 passing.
    p = promoted_of(report, "easy")
    assert (p.n, p.passed) == (40, 10)

    # The candidate's evidence is the 60 shadow pairs alone (110 with every reverse pair).
    mini = candidate_of(report, "easy", "mini")
    assert (mini.outputs, mini.n, mini.passed, mini.errors) == (60, 60, 60, 0)
    assert mini.verdict == "PROMOTE"
    assert len(mini.examples) == 3 and {e.candidate for e in mini.examples} == {"yes"}
    assert mini.cost_per_1k == pytest.approx(1.0)  # the reverse calls cost $0.005
    assert task_of(report, "easy").exchanges == 60

    # A window that starts after those pairs changes what is shown (no examples), not the
    # verdict: the detector reads every night since the promotion.
    later = await build_report(config, store, since=utcnow() - timedelta(hours=1))
    assert promoted_of(later, "easy").examples == []
    assert (promoted_of(later, "easy").n, promoted_of(later, "easy").verdict) == (
        40, "DEMOTE RECOMMENDED")


# --------------------------------------------------------------------------- money and overview


async def test_the_overview_prices_the_route_map_and_lists_only_unrouted_promotions(
    store: Store, seed_drift, task_of,
) -> None:
    config = await seed_drift(store)
    report = await build_report(config, store)
    o = report.overview
    assert o["monthly_primary"] == pytest.approx(300.0 + 60.0)
    assert o["monthly_routed"] == pytest.approx(30.0 + 60.0)
    assert o["monthly_routed"] < o["monthly_primary"]
    assert o["monthly_now"] == pytest.approx(o["monthly_routed"] + o["monthly_evaluation"])
    p = promoted_of(report, "easy")
    assert p.monthly_cost == pytest.approx(30.0)
    assert p.monthly_savings == pytest.approx(270.0)
    assert [(x["task"], x["model"]) for x in o["promotions"]] == [("other", "mini")]

    html = render_html(report)
    assert "as routed $90.00 (all on primary: $360)" in html
    overview = section(html, '<section id="overview">', "</section>")
    assert '<code class="cmd">shadowroute promote other --to mini</code>' in overview
    assert "shadowroute promote easy" not in html  # it serves easy already
    promoted_section = section(html, '<section id="promoted">', "</section>")
    row = section(promoted_section, "<tr><td>easy</td>", "</tr>")
    assert '<td class="n">$30.00</td><td class="n">$270</td>' in row

    # Demoted: back on the primary, and promotable again.
    await add_route_change(store, {
        "created_at": utcnow(), "task_type": "easy", "action": "demote", "model": "big",
        "primary_model": "big", "actor": "bob", "reason": "drift", "forced": False,
        "report_id": report.id, "evidence": {},
    })
    after = await build_report(config, store)
    assert after.promoted == []
    assert task_of(after, "easy").routed_to is None
    assert after.overview["monthly_routed"] == pytest.approx(360.0)
    assert {x["task"] for x in after.overview["promotions"]} == {"easy", "other"}


# --------------------------------------------------------------------------- escaping


async def test_hostile_reverse_output_renders_escaped(store: Store, config_for) -> None:
    config = config_for(store, "risky")
    batch = forward("risky", 30)
    batch += [reverse("risky", "yes", age_days=0.5) for _ in range(4)]
    hostile = reverse("risky", HOSTILE_OUTPUT, age_days=0.5, content=HOSTILE_REQUEST)
    await store.write([*batch, hostile])
    await promote(store, "risky", utcnow() - timedelta(days=1))
    await score(config, store, ScoreOptions())
    report = await build_report(config, store, examples=3)

    p = promoted_of(report, "risky")
    assert (p.n, p.passed) == (5, 4)
    assert hostile.outputs[0].id in {e.output_id for e in p.examples}
    html = render_html(report)
    promoted = section(html, '<section id="promoted">', "</section>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in promoted
    assert "&lt;img src=x onerror=alert(1)&gt;" in promoted
    assert "&lt;iframe src=&#34;https://evil.example/&#34;&gt;" in promoted
    lowered = html.lower()
    for tag in ("<script", "<img", "<iframe"):
        assert tag not in lowered, tag


# --------------------------------------------------------------------------- terminal and empty


async def test_render_promoted_and_the_empty_section(store: Store, seed_drift) -> None:
    config = await seed_drift(store)
    async with store.engine.begin() as conn:  # as if the promotion had not happened
        await conn.execute(RouteChange.__table__.delete())
    before = await build_report(config, store)
    assert before.promoted == []
    assert render_promoted(before) is None
    html = render_html(before)
    empty = section(html, '<section id="promoted">', "</section>")
    assert "No task type is promoted yet" in empty
    assert '<code class="cmd">shadowroute promote TASK --to MODEL</code>' in empty
    assert "served by" not in html

    await promote(store, "easy", utcnow() - timedelta(days=1))
    table = render_promoted(await build_report(config, store))
    assert table is not None
    console = Console(record=True, width=200, force_terminal=True, color_system="standard")
    console.print(table)
    assert "\x1b[31mDEMOTE RECOMMENDED" in console.export_text(styles=True, clear=False)  # red
    plain = console.export_text()
    for cell in ("easy", "mini", "big", "40", "25.0%", "shadowroute demote easy"):
        assert cell in plain, cell
