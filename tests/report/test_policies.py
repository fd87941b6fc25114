"""What each policy would save, end to end from stored pairs: a candidate HOLD as a whole
becomes a CASCADE when a runtime check catches its failures, the report says so in its first
screen, its table and its overview (what ``promote --cascade`` reads)."""

from __future__ import annotations

from typing import Any

import pytest

from shadowroute.records import NOISE_FLOOR_MODEL, TrafficRecord, utcnow
from shadowroute.report import build_report, render_html
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from support.config import BIG_MINI_TINY
from support.report import Out

pytestmark = pytest.mark.anyio

REFUSAL = "I'm sorry, but I can't help with that."
TASKS: dict[str, Any] = {"support": {"candidates": ["mini", "tiny"], "scorers": ["exact"]}}


def _batch(xchg: Any, n: int) -> list[Any]:
    """mini fails 1 in 5 by refusing (the check sees it); tiny fails 1 in 5 with a plausible
    wrong answer (nothing to see); the primary disagrees with itself 1 in 100."""
    out = []
    for i in range(n):
        outs = [Out("mini", REFUSAL if i % 5 == 0 else "yes", cost=0.001, latency=100.0),
                Out("tiny", "no" if i % 5 == 0 else "yes", cost=0.0005, latency=50.0),
                Out(NOISE_FLOOR_MODEL, "no" if i % 100 == 0 else "yes", cost=0.01)]
        out.append(xchg("support", "yes", *outs, cost=0.01, latency=800.0))
    return out


async def test_a_hold_becomes_a_cascade_when_a_check_catches_its_failures(
    store: Store, make_config, xchg, task_of,
) -> None:
    config = make_config(store.url, models=BIG_MINI_TINY, tasks=TASKS)
    await store.write(_batch(xchg, 1500),
                      traffic=[TrafficRecord(utcnow().date(), "support", "big", requests=1000)])
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)
    t = task_of(report, "support")
    mini = next(c for c in t.candidates if c.model == "mini")
    assert mini.verdict == "HOLD"  # 80% as a whole
    best = mini.cascades["all"]
    assert best["verdict"] == "CASCADE"
    assert best["escalations"] == {"refusal": 300} and best["escalation_rate"] == 0.2
    assert best["pass_rate"] == 1.0 and best["lower_bound"] > 0.99
    # $0.001 + 20% x $0.01 = $0.003 a request against $0.01: saves $0.007 x 1,000 x 30.
    assert best["monthly_savings"] == pytest.approx(210.0)
    assert best["break_even"] == pytest.approx(0.9)
    tiny = next(c for c in t.candidates if c.model == "tiny")
    assert tiny.cascades["all"]["escalated"] == 0  # nothing the checks can see
    (action,) = report.actions
    assert (action.action, action.model) == ("CASCADE", "mini")
    assert action.command == "shadowroute promote support --to mini --cascade all"
    assert action.monthly_savings == pytest.approx(210.0)
    assert "escalates 20.0%" in action.reason and "alone it is HOLD" in action.reason
    assert report.action_counts["CASCADE"] == 1
    # What promote --cascade reads.
    policies = report.overview["policies"]["support"]["mini"]
    assert policies["cascade"]["all"]["verdict"] == "CASCADE"
    assert policies["partial"]["verdict"] in {"NO RULE", "NOT PROVEN", "PARTIAL"}
    html = render_html(report)
    assert "What each policy would save" in html and "cascade (all)" in html
    assert "shadowroute promote support --to mini --cascade all" in html
    assert "break-even 90.0%" in html
    assert 'class="escalation-curve"' in html


async def test_a_what_if_reads_the_most_recent_pairs_oldest_first(
    store: Store, make_config, xchg,
) -> None:
    from shadowroute.scoring.plan import plan_for
    from shadowroute.store.queries.policies import stored_pairs

    config = make_config(store.url, models=BIG_MINI_TINY, tasks=TASKS)
    await store.write([xchg("support", "yes", Out("mini", f"answer {i}"), age_days=10 - i)
                       for i in range(10)])
    await score(config, store, ScoreOptions())
    async with store.connect("read") as conn:
        pairs = await stored_pairs(conn, "support", plan_for(config, "support").keys(), "mini",
                                   limit=3)
    assert [p.output for p in pairs] == ["answer 7", "answer 8", "answer 9"]
    assert [p.ok for p in pairs] == [0, 0, 0] and pairs[0].primary_cost_usd is None
