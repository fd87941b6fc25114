"""Judge only what needs a judge: under ``[judge] when = "needed"`` (the default) no judge call
is made on a pair a cheaper scorer decided, and ``when = "always"`` asks it on every pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowroute.report import build_report
from shadowroute.scoring import score
from shadowroute.scoring.plan import plan_for
from shadowroute.store import Store

pytestmark = pytest.mark.anyio

NEEDED = {"judge": {"model": "judge", "concurrency": 4, "when": "needed"}}


async def test_a_pair_a_cheaper_scorer_decided_is_not_judged(
    store: Store, tmp_path: Path, make_config, scoring_preset, scripted_judge, prefers,
    scoring_exchange, scores_by_model,
) -> None:
    """exact finds the primary's answer (mini) or fails (tiny): neither needs the judge; the
    judge scores are stored as not applicable with what decided, and counted."""
    config = make_config(store.url, scoring_preset, NEEDED)
    await store.write([scoring_exchange("classify", "refund", {"mini": "refund", "tiny": "cancel"})])
    judge = scripted_judge(prefers("refund"))
    report = await score(config, store, judge_provider=judge)
    assert judge.calls == []
    judged = {model: rows[0] for model, rows in (await scores_by_model(store, "judge")).items()}
    assert judged["mini"].passed is None and judged["tiny"].passed is None
    assert judged["mini"].details == {"skipped": "decided by exact equal", "judged": False}
    assert judged["tiny"].details == {"skipped": "decided by exact failed", "judged": False}
    assert report.judge_skipped == {"exact equal": 1, "exact failed": 1}
    (line,) = [line for line in report.lines() if "calls saved" in line]
    assert line.startswith("judge: 2 pairs not judged (4 calls saved, both orders): a cheaper "
                           "scorer decided them (exact ")
    assert "exact equal 1" in line and "exact failed 1" in line
    again = await score(config, store, judge_provider=judge)  # stored: nothing to do
    assert again.outputs == 0 and judge.calls == []
    # The report counts the judge calls not made, per task type.
    task = next(t for t in (await build_report(config, store)).tasks if t.task == "classify")
    assert (task.judge_skipped, task.judge_calls) == (2, 0)


async def test_an_open_pair_is_judged_and_a_failed_similarity_is_not(
    store: Store, tmp_path: Path, make_config, scoring_preset, scripted_judge, prefers,
    scoring_exchange, scores_by_model,
) -> None:
    """similarity passing decides nothing (the judge may still find it worse): asked; failing
    decides the pair: not asked."""
    config = make_config(store.url, scoring_preset, NEEDED, tasks={"summarize": {
        "candidates": ["mini", "tiny"], "scorers": ["similarity", "judge"]}})
    primary = "the parcel left the warehouse on monday and arrives on thursday"
    await store.write([scoring_exchange("summarize", primary, {
        "mini": "the parcel left the warehouse on monday and arrives thursday",
        "tiny": "no idea, sorry"})])
    judge = scripted_judge(prefers("parcel"))
    report = await score(config, store, judge_provider=judge)
    assert {second for _, second in judge.calls} | {first for first, _ in judge.calls} == {
        primary, "the parcel left the warehouse on monday and arrives thursday"}
    assert len(judge.calls) == 2  # mini, in both orders
    judged = {model: rows[0] for model, rows in (await scores_by_model(store, "judge")).items()}
    assert "skipped" not in judged["mini"].details and judged["mini"].details["verdict"] == "same"
    assert judged["tiny"].details == {"skipped": "decided by similarity failed", "judged": False}
    assert report.judge_skipped == {"similarity failed": 1}
    task = next(t for t in (await build_report(config, store)).tasks if t.task == "summarize")
    assert task.judge_skipped == 1


async def test_always_asks_the_judge_on_every_pair_per_task(
    store: Store, tmp_path: Path, make_config, scoring_preset, scripted_judge, prefers,
    scoring_exchange,
) -> None:
    config = make_config(store.url, scoring_preset, NEEDED, tasks={"classify": {
        "candidates": ["mini", "tiny"], "scorers": {"exact": {}, "judge": {"when": "always"}}}})
    await store.write([scoring_exchange("classify", "refund", {"mini": "refund", "tiny": "cancel"})])
    judge = scripted_judge(prefers("refund"))
    report = await score(config, store, judge_provider=judge)
    assert len(judge.calls) == 4 and not report.judge_skipped


def test_only_always_changes_the_judge_version(tmp_path: Path, make_config, scoring_preset) -> None:
    """Under "needed" a stored verdict is still a verdict (upgrading re-judges nothing);
    turning "always" on judges every pair again under a new version."""
    needed = make_config("sqlite+aiosqlite:///x.db", scoring_preset, NEEDED)
    always = make_config("sqlite+aiosqlite:///x.db", scoring_preset,
                         {"judge": {"model": "judge", "concurrency": 4, "when": "always"}})
    plain = make_config("sqlite+aiosqlite:///x.db", scoring_preset,
                        {"judge": {"model": "judge", "concurrency": 4}})
    versions = [plan_for(c, "classify").judge.version for c in (needed, always, plain)]
    assert versions[0] == versions[2] != versions[1]
    assert plan_for(plain, "classify").judge.when == "needed"  # the default
