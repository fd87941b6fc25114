"""Night by night: the bounded read of the stored decisions (SQLite and Postgres), the trend per
task type x candidate built from it (the last report of a day stands for it; verdict changes
marked), and the charts' geometry (readable axes, one night said in words)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from shadowroute.records import utcnow
from shadowroute.report import build_report, render_html
from shadowroute.report.charts import histogram_chart, nice_step, trend_chart
from shadowroute.report.trend import Trend, TrendPoint, build_trends
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from shadowroute.store.queries.history import decision_history
from shadowroute.store.queries.routes import save_report
from support.config import BIG_MINI_TINY
from support.report import Out, save_nights

pytestmark = pytest.mark.anyio


async def test_history_reads_the_newest_runs_oldest_first(store: Store) -> None:
    ids = await save_nights(store, [
        (4, [("a", "mini", "NEED MORE DATA", 0.80), ("a", "tiny", "HOLD", 0.70)]),
        (3, [("a", "mini", "NEED MORE DATA", 0.85)]),
        (2, [("a", "mini", "PROMOTE", 0.90), ("b", "mini", "HOLD", 0.50)]),
        (1, [("a", "mini", "PROMOTE", 0.91)]),
    ])
    # A drift decision of the newest run: only with kind=None.
    newest = await decision_history(store, runs=1)
    assert [(r["report_id"], r["pass_rate"]) for r in newest] == [(ids[3], 0.91)]
    await save_report(store, {"id": "d" * 32, "created_at": utcnow(), "since": None,
                              "overview": {}},
                      [{"report_id": "d" * 32, "created_at": utcnow(), "task_type": "a",
                        "model": "mini", "kind": "drift", "verdict": "HOLDS", "reason": "ok",
                        "primary_model": "big", "n": 5, "passed": 5, "pass_rate": 1.0,
                        "lower_bound": None, "noise_floor": None, "judge_version": None,
                        "monthly_savings": None}])

    rows = await decision_history(store, runs=3)  # the drift-only run is one of the three
    assert [(r["report_id"], r["task_type"], r["model"]) for r in rows] == [
        (ids[2], "a", "mini"), (ids[2], "b", "mini"), (ids[3], "a", "mini")]
    assert rows[0]["verdict"] == "PROMOTE" and rows[0]["lower_bound"] == pytest.approx(0.8)
    assert rows[0]["created_at"] < rows[-1]["created_at"]
    every = await decision_history(store, runs=60, kind=None)
    assert len(every) == 7 and every[-1]["kind"] == "drift"
    assert len(await decision_history(store)) == 6
    assert await decision_history(store, runs=0) == []


def _task(task: str, *models: tuple[str, str, float | None]) -> SimpleNamespace:
    return SimpleNamespace(task=task, policy={"required_quality": 0.9}, candidates=[
        SimpleNamespace(model=m, verdict=v, n=100, pass_rate=rate, lower_bound=None,
                        sequential_lower=None if rate is None else rate - 0.05)
        for m, v, rate in models])


def test_trends_take_the_last_report_of_each_day_and_mark_verdict_changes() -> None:
    # Noon: "30 minutes later the same day" must not cross midnight (it did from 23:30 UTC).
    now = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    from datetime import timedelta

    def row(days: float, model: str, verdict: str, rate: float) -> dict:
        return {"created_at": now - timedelta(days=days), "task_type": "a", "model": model,
                "kind": "shadow", "verdict": verdict, "n": 50, "pass_rate": rate,
                "lower_bound": rate - 0.2}

    history = [row(3, "mini", "NEED MORE DATA", 0.8), row(2, "mini", "NEED MORE DATA", 0.82),
               row(2 - 1 / 48, "mini", "HOLD", 0.83),  # later the same day: it stands for it
               row(1, "mini", "HOLD", 0.84), row(0.01, "mini", "HOLD", 0.5),  # today: replaced
               row(1, "gone", "HOLD", 0.1)]  # not a candidate any more: not drawn
    trends = build_trends(history, [_task("a", ("mini", "PROMOTE", 0.95), ("tiny", "HOLD", None))],
                          now)
    mini, tiny = trends
    assert [p.pass_rate for p in mini.points] == [0.8, 0.83, 0.84, 0.95]
    assert [p.verdict for p in mini.points] == ["NEED MORE DATA", "HOLD", "HOLD", "PROMOTE"]
    assert [(p.changed_from, p.verdict) for p in mini.changes] == [
        ("NEED MORE DATA", "HOLD"), ("HOLD", "PROMOTE")]
    assert mini.points[-1].lower_bound == pytest.approx(0.9)
    assert (len(tiny.points), tiny.points[0].pass_rate) == (1, None)

    g = trend_chart(mini)
    assert len(g["dots"]) == 4 and len(g["changes"]) == 2
    assert len(g["pass_lines"]) == 1 and len(g["pass_lines"][0].split()) == 4
    assert [t["label"] for t in g["y_ticks"]][-1] == "100%"
    assert g["x_ticks"][-1]["label"] == mini.points[-1].night[5:]
    # A night without a bound breaks the line instead of drawing to zero.
    gap = Trend("a", "m", 0.9, [TrendPoint("2026-01-0" + str(i), 10, 0.9, None if i == 3 else 0.8,
                                           "HOLD") for i in range(1, 6)])
    assert len(trend_chart(gap)["lower_lines"]) == 2


def test_histogram_axes_are_readable() -> None:
    h = histogram_chart([0, 0, 1, 0, 0, 3, 0, 10, 40, 146])
    assert [t["label"] for t in h["y_ticks"]] == ["0", "50", "100", "150"]
    assert [t["label"] for t in h["x_ticks"]] == ["0", "0.2", "0.4", "0.6", "0.8", "1"]
    assert len(h["bars"]) == 10 and h["total"] == 200
    tallest = min(h["bars"], key=lambda b: b["y"])
    assert tallest["title"] == "0.9–1.0: 146" and tallest["y"] > h["top"]  # 146 < 150
    assert h["bars"][0]["h"] == 0
    assert [t["label"] for t in histogram_chart([0, 1])["y_ticks"]] == ["0", "1"]
    assert nice_step(0.4) == pytest.approx(0.1) and nice_step(146, 3) == 50


async def test_the_report_draws_nights_and_says_one_night(
    store: Store, make_config, xchg,
) -> None:
    config = make_config(store.url, models=BIG_MINI_TINY, tasks={
        "classify": {"candidates": ["mini", "tiny"], "scorers": ["exact"], "min_samples": 10}})
    await store.write([xchg("classify", "yes", Out("mini", "yes"), Out("tiny", "yes" if i % 2 else "no"))
                       for i in range(30)])
    await score(config, store, ScoreOptions())
    await save_nights(store, [(3, [("classify", "mini", "NEED MORE DATA", 0.9)]),
                              (2, [("classify", "mini", "NEED MORE DATA", 0.95)]),
                              (1, [("classify", "mini", "HOLD", 0.97)])])
    report = await build_report(config, store)
    mini, tiny = report.trends
    assert (mini.model, len(mini.points), tiny.model, len(tiny.points)) == ("mini", 4, "tiny", 1)
    assert mini.points[-1].n == 30 and mini.points[-1].pass_rate == 1.0
    html = render_html(report)
    start = html.index('aria-label="pass rate and lower bound per night: classify · mini"')
    chart = html[start:html.index("</svg>", start)]
    assert chart.count("<circle") == 4 and chart.count('class="verdict-change"') == 1 + (
        mini.points[-1].verdict != "HOLD")
    assert "night (UTC date)" in chart and ">pass rate</text>" in chart and ">100%</text>" in chart
    assert "per night: classify · tiny" not in html
    assert "One night so far (" in html
    assert "→ <span class=\"badge v-HOLD\">HOLD</span>" in html
    twin = report.to_dict()
    assert [p["pass_rate"] for p in twin["trends"][0]["points"]] == [0.9, 0.95, 0.97, 1.0]
