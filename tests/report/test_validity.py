"""The report's scorer validity: beside each task type, which scorer decided its verdicts and how
far each scorer agrees with labels (the latest `shadowroute calibrate` of its current version),
and a verdict resting on a scorer below kappa 0.4 flagged in the HTML and the JSON twin.
Crafted data scored with the real `score()`; calibrations stored as `calibrate` stores them."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shadowroute.cli.tables import render_verdicts
from shadowroute.records import utcnow
from shadowroute.report import build_report, render_html, report_json
from shadowroute.scoring import ScoreOptions, plan_for, score
from shadowroute.store import Store
from shadowroute.store.queries.calibrations import save_scorer_calibrations
from support.config import BIG_MINI_TINY, ORDER_SCHEMA
from support.report import Out

pytestmark = pytest.mark.anyio

TASKS = {
    "classify": {"candidates": ["mini", "tiny"],
                 "scorers": {"exact": {}, "similarity": {"method": "ratio"}}},
    "plain": {"candidates": ["mini"], "scorers": ["exact"]},
}


def calibration(task: str, scorer: str, version: str, kappa: float | None, *, days_ago: float = 0,
                informative: bool = True, label_source: str = "file") -> dict[str, Any]:
    """A ``scorer_calibrations`` row as ``shadowroute calibrate`` stores it."""
    return {
        "task_type": task, "scorer": scorer, "scorer_version": version,
        "created_at": utcnow() - timedelta(days=days_ago), "run_id": uuid.uuid4().hex,
        "label_source": label_source, "n": 120, "threshold": 1.0, "precision": 0.9,
        "recall": 0.75, "accuracy": 0.8, "kappa": kappa, "criterion": "max kappa",
        "best_threshold": 0.5, "best_precision": 0.9, "best_recall": 0.8,
        "best_accuracy": 0.85, "best_kappa": 0.55, "sweep": [],
        "details": {"informative": informative},
    }


async def seed(store: Store, config: Any, xchg) -> None:
    """classify: primary "refund". mini: "refund" x6 (pass), "refunds" x3 (exact fails alone:
    ratio 12/13 >= 0.8), "shipping" x1 (both fail). tiny: "refund" x8, two failed calls (every
    scorer fails them: no scorer's own failure). plain: mini "a" x4, "b" x1."""
    batch = [xchg("classify", "refund", Out("mini", text), Out("tiny", other))
             for text, other in zip(["refund"] * 6 + ["refunds"] * 3 + ["shipping"],
                                    ["refund"] * 8 + [None] * 2, strict=True)]
    batch += [xchg("plain", "a", Out("mini", "a" if i < 4 else "b")) for i in range(5)]
    await store.write(batch)
    await score(config, store, ScoreOptions())


async def test_decided_by_calibrations_and_the_low_kappa_flag(
    store: Store, make_config, xchg, task_of, candidate_of,
) -> None:
    config = make_config(store.url, models=BIG_MINI_TINY, tasks=TASKS)
    await seed(store, config, xchg)
    versions = dict(plan_for(config, "classify").keys())

    # Nothing calibrated: each scorer says "no labels yet", nothing is flagged.
    report = await build_report(config, store)
    t = task_of(report, "classify")
    assert [v.scorer for v in t.validity] == ["exact", "similarity"]
    assert [v.summary for v in t.validity] == ["no labels yet", "no labels yet"]
    assert t.decided_by == "exact" and t.validity_warning is None
    exact, similarity = t.validity
    assert (exact.failed, exact.sole, similarity.failed, similarity.sole) == (4, 3, 1, 0)
    mini, tiny = candidate_of(report, "classify", "mini"), candidate_of(report, "classify", "tiny")
    assert (mini.decided_by, mini.failures_by_scorer) == ("exact", {"exact": 4, "similarity": 1})
    assert (tiny.decided_by, tiny.failures_by_scorer) == (None, {})  # failed calls only
    assert not mini.low_kappa and not tiny.low_kappa and report.overview["low_kappa"] == []
    html = render_html(report)
    assert "shadowroute calibrate classify --labels FILE" in html
    assert "decided the verdicts" in html and "Decided by exact (failing outputs by scorer: " \
        "exact 4, similarity 1)." in html

    # exact below 0.4 at its current version; similarity fine; an older exact calibration of
    # plain's scorer at a version that is no longer current.
    await save_scorer_calibrations(store, [
        calibration("classify", "exact", versions["exact"], 0.6, days_ago=2),
        calibration("classify", "exact", versions["exact"], 0.25),
        calibration("classify", "similarity", versions["similarity"], 0.71),
        calibration("plain", "exact", "0-retired", 0.9, days_ago=5),
    ])
    report = await build_report(config, store)
    t = task_of(report, "classify")
    exact, similarity = t.validity
    assert exact.calibrated and exact.low and exact.kappa == pytest.approx(0.25)
    assert exact.summary.startswith("kappa 0.25, precision 90.0%, recall 75.0%, n 120 "
                                    "(labels file, ")
    assert similarity.calibrated and not similarity.low
    mini, tiny = candidate_of(report, "classify", "mini"), candidate_of(report, "classify", "tiny")
    # Both verdicts rest on exact (it scored their outputs), whatever decided them.
    assert (mini.low_kappa, mini.low_kappa_scorers) == (True, ["exact"])
    assert (tiny.low_kappa, tiny.low_kappa_scorers) == (True, ["exact"])
    warning = ("the verdicts on mini, tiny rest on exact (kappa 0.25), which agrees with labels "
               "below kappa 0.4: treat them with care; see shadowroute calibrate classify")
    assert t.validity_warning == warning
    (plain_exact,) = task_of(report, "plain").validity
    assert not plain_exact.calibrated and plain_exact.stale_version == "0-retired"
    assert plain_exact.summary.startswith("no labels yet for this version (calibrated ")
    assert candidate_of(report, "plain", "mini").low_kappa is False
    assert report.overview["low_kappa"] == [
        {"task": "classify", "model": "mini", "verdict": mini.verdict, "scorers": ["exact"]},
        {"task": "classify", "model": "tiny", "verdict": tiny.verdict, "scorers": ["exact"]},
    ]

    html = render_html(report)
    section = html.split("<h2>classify</h2>")[1].split("</section>")[0]
    assert warning in section and 'class="low-kappa"' in section
    assert "kappa below 0.4:" in section and "Rests on exact, below kappa 0.4" in section
    assert 'id="low-kappa"' in html and "2 verdicts rest on a scorer" in html
    plain = html.split("<h2>plain</h2>")[1].split("</section>")[0]
    assert "no labels yet for this version" in plain and "low-kappa" not in plain
    twin = json.loads(report_json(report))
    (classify,) = [x for x in twin["tasks"] if x["task"] == "classify"]
    assert classify["validity_warning"] == warning and classify["decided_by"] == "exact"
    assert [(v["scorer"], v["low"], v["kappa"]) for v in classify["validity"]] == [
        ("exact", True, 0.25), ("similarity", False, 0.71)]
    assert {c["model"]: c["low_kappa"] for c in classify["candidates"]} == {"mini": True,
                                                                             "tiny": True}
    assert twin["overview"]["low_kappa"][0]["scorers"] == ["exact"]
    assert twin["overview"]["min_kappa"] == 0.4
    table = render_verdicts(report)
    assert warning in str(table.caption)
    assert "decided by" in [str(c.header) for c in table.columns]

    # A newer calibration of exact at or above 0.4: nothing flagged any more.
    await save_scorer_calibrations(store, [calibration("classify", "exact", versions["exact"],
                                                       0.4)])
    report = await build_report(config, store)
    assert task_of(report, "classify").validity_warning is None
    assert report.overview["low_kappa"] == []
    assert "low-kappa" not in render_html(report).split("<h2>classify</h2>")[1]

    # Labels of one class only: kappa 0 says nothing about the scorer, so no flag.
    await save_scorer_calibrations(store, [calibration("classify", "exact", versions["exact"],
                                                       0.0, informative=False)])
    report = await build_report(config, store)
    exact = task_of(report, "classify").validity[0]
    assert not exact.low and "labels of one class only" in exact.summary
    assert not candidate_of(report, "classify", "mini").low_kappa


async def test_a_judge_failure_forced_by_the_schema_is_the_schemas(
    store: Store, tmp_path: Path, make_config, scoring_exchange, scripted_judge, prefers,
    task_of, candidate_of,
) -> None:
    """A hard schema failure fails the judge score too, without a judge call: that failure is
    the schema's, so the schema decided it; a valid answer the judge finds worse is the judge's."""
    schema = tmp_path / "order.schema.json"
    schema.write_text(json.dumps(ORDER_SCHEMA))
    config = make_config(store.url, models={**BIG_MINI_TINY, "judge": {"base_url":
                                                                       "http://127.0.0.1:9/v1"}},
                         judge={"model": "judge"},
                         tasks={"extract": {"candidates": ["mini"], "json_schema": str(schema),
                                            "scorers": ["schema", "judge"]}})
    good = '{"sku": "good", "qty": 1}'
    answers = [good] * 5 + ['{"sku": 5}'] * 3 + ['{"sku": "bad", "qty": 1}'] * 2
    await store.write([scoring_exchange("extract", good, {"mini": a}) for a in answers])
    await score(config, store, ScoreOptions(), judge_provider=scripted_judge(prefers("good")))
    report = await build_report(config, store)
    mini = candidate_of(report, "extract", "mini")
    assert mini.failures_by_scorer == {"schema": 3, "judge": 2}
    assert mini.decided_by == "schema"
    t = task_of(report, "extract")
    assert [(v.scorer, v.failed, v.sole) for v in t.validity] == [("schema", 3, 3),
                                                                  ("judge", 2, 2)]
