"""The report says how much of what it shows rests on measured cost, which settings candidates
were not given, and how many calls could not be shadowed at all."""

from __future__ import annotations

from datetime import date

import pytest

from shadowroute.records import TrafficRecord, utcnow
from shadowroute.report import build_report, render_html
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from support.config import BIG_MINI_TINY
from support.report import Out

pytestmark = pytest.mark.anyio


async def test_unknown_costs_are_left_out_and_losses_are_listed(
    store: Store, make_config, xchg, task_of, candidate_of,
) -> None:
    config = make_config(store.url, models=BIG_MINI_TINY,
                         tasks={"classify": {"candidates": ["mini"], "scorers": ["exact"]}})
    batch = []
    for i in range(40):
        # A third of the primary's calls streamed without usage: their cost is unknown.
        x = xchg("classify", "refund", Out("mini", "refund", cost=0.0001),
                 cost=None if i % 3 == 0 else 0.003)
        x.outputs[0].not_carried = ["thinking"] if i < 10 else None
        x.not_carried = ["reasoning.summary"] if i < 4 else None
        batch.append(x)
    await store.write(batch, [TrafficRecord(utcnow().date(), "classify", "big", 400, 46, 6)])
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)
    t = task_of(report, "classify")
    assert (t.exchanges, t.primary_costed, t.not_shadowable) == (40, 26, 6)
    assert t.primary_cost_per_1k == pytest.approx(3.0)  # the mean of the known costs, not 26/40 of it
    assert t.primary_not_carried == {"reasoning.summary": 4}
    c = candidate_of(report, "classify", "mini")
    assert c.not_carried == {"thinking": 10} and c.costed == 40
    html = render_html(report)
    assert "Primary cost measured on 26 of 40 calls" in html
    assert "6 sampled calls were not shadowed" in html
    assert "thinking (10 of 40)" in html
    assert "reasoning.summary (4)" in html


async def test_a_report_with_nothing_lost_says_nothing_about_it(
    store: Store, make_config, xchg, task_of,
) -> None:
    config = make_config(store.url, models=BIG_MINI_TINY,
                         tasks={"classify": {"candidates": ["mini"], "scorers": ["exact"]}})
    await store.write([xchg("classify", "refund", Out("mini", "refund", cost=0.0001), cost=0.003)
                       for _ in range(5)],
                      [TrafficRecord(date.today(), "classify", "big", 50, 5)])
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)
    assert task_of(report, "classify").primary_costed == 5
    html = render_html(report)
    for warning in ("Primary cost measured on", "were not shadowed", "no candidate was given",
                    "lacked settings"):
        assert warning not in html
