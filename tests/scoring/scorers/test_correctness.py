"""The ``correctness`` scorer: recorded outcomes (right/wrong, grades) instead of texts, alone
and through the scoring job on SQLite and Postgres (metadata reaches it, versions hold)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from shadowroute.errors import ConfigError
from shadowroute.records import NOISE_FLOOR_MODEL, CandidateOutputRecord, ExchangeRecord
from shadowroute.report import build_report
from shadowroute.scoring import CorrectnessScorer, ScoreContext, plan_for, score
from shadowroute.store import CandidateOutput, Store
from shadowroute.store.models import Score

PRIMARY = "big-upstream"


def ctx(outcomes: Any, *, model: str = "mini", primary: str = PRIMARY) -> ScoreContext:
    return ScoreContext(model=model, primary_model=primary, task_type="t",
                        metadata={"outcomes": outcomes})


def run(scorer: CorrectnessScorer, outcomes: Any, **kwargs: Any) -> tuple[Any, Any, dict]:
    result = scorer.score("primary text", "candidate text", ctx(outcomes, **kwargs))
    return result.value, result.passed, result.details


# --------------------------------------------------------------------------- the scorer


@pytest.mark.parametrize(
    ("candidate", "primary", "passed"),
    [(True, True, True), (True, False, True), (False, False, True), (False, True, False)],
)
def test_booleans_pass_when_as_good_as_the_primary(
    candidate: bool, primary: bool, passed: bool
) -> None:
    value, ok, details = run(CorrectnessScorer(), {
        "mini": {"correct": candidate}, PRIMARY: {"correct": primary}})
    assert ok is passed and value == (1.0 if passed else 0.0)
    assert details == {"kind": "correct", "candidate": candidate, "primary": primary}


def test_bare_booleans_and_numbers_are_read_as_outcomes() -> None:
    assert run(CorrectnessScorer(), {"mini": False, PRIMARY: True})[1] is False
    assert run(CorrectnessScorer(), {"mini": 7, PRIMARY: 7.0})[1] is True


@pytest.mark.parametrize(
    ("candidate", "primary", "tolerance", "passed", "value"),
    [
        (9, 9, 0.0, True, 1.0),
        (10, 8, 0.0, True, 1.0),
        (8, 9, 0.0, False, 0.888889),
        (8, 9, 1.0, True, 0.888889),
        (7.5, 9, 1.0, False, 0.833333),
        (3, 0, 0.0, True, 1.0),
    ],
)
def test_grades_pass_within_the_tolerance(
    candidate: float, primary: float, tolerance: float, passed: bool, value: float
) -> None:
    got_value, ok, details = run(CorrectnessScorer(tolerance=tolerance), {
        "mini": {"grade": candidate}, PRIMARY: {"grade": primary}})
    assert ok is passed and got_value == value
    assert details == {"kind": "grade", "candidate": float(candidate), "primary": float(primary),
                       "tolerance": tolerance}


@pytest.mark.parametrize(
    ("outcomes", "reason"),
    [
        ({PRIMARY: {"correct": True}}, "no recorded outcome for the candidate 'mini'"),
        ({"mini": {"correct": True}}, f"no recorded outcome for the primary {PRIMARY!r}"),
        ({"mini": {"grade": 9}, PRIMARY: {"correct": True}}, "outcomes of different kinds"),
        ({"mini": {"grade": "nine"}, PRIMARY: {"grade": 9}}, "the candidate's outcome is neither"),
        ({"mini": {"correct": "yes"}, PRIMARY: {"grade": 9}}, "the candidate's outcome is neither"),
        ({"mini": {"grade": 9}, PRIMARY: {"grade": float("nan")}}, "the primary's outcome is"),
        ({"mini": {"grade": True}, PRIMARY: {"grade": 9}}, "the candidate's outcome is neither"),
        (["mini", PRIMARY], "no recorded outcomes"),
        (None, "no recorded outcomes"),
    ],
)
def test_missing_or_unusable_outcomes_are_not_applicable(outcomes: Any, reason: str) -> None:
    value, passed, details = run(CorrectnessScorer(), outcomes)
    assert value is None and passed is None
    assert details["skipped"].startswith(reason)


def test_without_context_or_metadata_it_does_not_apply() -> None:
    scorer = CorrectnessScorer()
    assert scorer.score("a", "b").passed is None
    empty = ScoreContext(model="mini", primary_model=PRIMARY)
    assert scorer.score("a", "b", empty).details == {"skipped": "no recorded outcomes"}


def test_a_candidate_outcome_may_be_recorded_under_its_upstream_id() -> None:
    scorer = CorrectnessScorer(aliases={"mini": "vendor/mini-7b"})
    outcomes = {"vendor/mini-7b": {"correct": False}, PRIMARY: {"correct": True}}
    assert run(scorer, outcomes)[1] is False
    # the stored name wins when both are recorded
    assert run(scorer, {**outcomes, "mini": {"correct": True}})[1] is True


@pytest.mark.parametrize("tolerance", [-1, float("inf"), "1"])
def test_a_bad_tolerance_is_refused(tolerance: Any) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        CorrectnessScorer(tolerance=tolerance)


# --------------------------------------------------------------------------- config and plan


MODELS = {
    "big": {"base_url": "http://127.0.0.1:9/v1", "model": PRIMARY},
    "mini": {"base_url": "http://127.0.0.1:9/v1", "model": "vendor/mini-7b"},
    "tiny": {"base_url": "http://127.0.0.1:9/v1"},
}


def qa(*, tolerance: float | None = None, scorers: Any = None) -> dict[str, Any]:
    """The [tasks] table: ``qa`` scored by correctness (with ``tolerance``) or by ``scorers``."""
    options = {} if tolerance is None else {"tolerance": tolerance}
    return {"qa": {"candidates": ["mini", "tiny"], "scorers": scorers or {"correctness": options}}}


def test_the_plan_versions_it_by_tolerance_and_aliases(make_config) -> None:
    spec = plan_for(make_config("sqlite://", models=MODELS, tasks=qa()), "qa").scorers[0]
    assert spec.name == "correctness" and spec.uses_context and not spec.hard
    assert spec.scorer.settings()["aliases"] == {"mini": "vendor/mini-7b"}
    looser = plan_for(make_config("sqlite://", models=MODELS, tasks=qa(tolerance=1.0)), "qa").scorers[0]
    assert looser.version != spec.version and looser.version.startswith("1-")
    assert plan_for(make_config("sqlite://", models=MODELS, tasks=qa(tolerance=0.0)), "qa").scorers[0].version == spec.version


def test_the_config_refuses_options_it_does_not_take(make_config) -> None:
    with pytest.raises(ConfigError, match="scorer 'correctness' takes no option 'threshold'"):
        make_config("sqlite://", models=MODELS, tasks=qa(scorers={"correctness": {"threshold": 0.5}}))


# --------------------------------------------------------------------------- through the job

def exchange(
    n: int, outcomes: dict[str, Any] | None, outputs: dict[str, str | None],
) -> ExchangeRecord:
    x = ExchangeRecord(
        task_type="qa", primary_model=PRIMARY,
        request={"messages": [{"role": "user", "content": f"question {n}"}]},
        primary_output=f"answer {n}",
        metadata={} if outcomes is None else {"outcomes": outcomes, "other": [1, 2]},
        id=f"{n:032x}",
    )
    for model, text in outputs.items():
        x.outputs.append(CandidateOutputRecord(
            x.id, model, output=text, error_kind="timeout" if text is None else None,
            id=f"{n:030x}{len(x.outputs):02x}"))
    return x


SEED = [
    # mini right, tiny wrong, primary right
    exchange(1, {PRIMARY: {"correct": True}, "mini": {"correct": True},
                 "tiny": {"correct": False}}, {"mini": "x", "tiny": "y"}),
    # the primary wrong too: both pass; mini's outcome under its upstream id
    exchange(2, {PRIMARY: {"correct": False}, "vendor/mini-7b": {"correct": False},
                 "tiny": {"correct": False}}, {"mini": "x", "tiny": "y"}),
    # no outcome for tiny; mini's call failed; a replay of the primary has no outcome
    exchange(3, {PRIMARY: {"correct": True}, "mini": {"correct": True}},
             {"mini": None, "tiny": "y", NOISE_FLOOR_MODEL: "z"}),
    # no metadata at all
    exchange(4, None, {"mini": "x"}),
]


async def scores_of(store: Store) -> dict[tuple[str, str], Score]:
    async with store.session() as s:
        rows = await s.execute(
            select(CandidateOutput.exchange_id, CandidateOutput.model, Score)
            .join(Score, Score.output_id == CandidateOutput.id)
        )
        return {(str(int(x, 16)), model): sc for x, model, sc in rows.all()}


@pytest.mark.anyio
async def test_scoring_job_passes_the_metadata_and_is_idempotent(store: Store, make_config) -> None:
    config = make_config(store.url, models=MODELS, tasks=qa())
    await store.write(SEED)
    first = await score(config, store)
    assert first.scores == Counter({"correctness": 8}) and first.scorer_errors == 0
    got = {key: (s.passed, s.value) for key, s in (await scores_of(store)).items()}
    assert got == {
        ("1", "mini"): (True, 1.0), ("1", "tiny"): (False, 0.0),
        ("2", "mini"): (True, 1.0), ("2", "tiny"): (True, 1.0),
        ("3", "mini"): (False, 0.0), ("3", "tiny"): (None, None), ("3", NOISE_FLOOR_MODEL): (None, None),
        ("4", "mini"): (None, None),
    }
    details = (await scores_of(store))[("1", "tiny")].details
    assert details == {"kind": "correct", "candidate": False, "primary": True}
    assert (await scores_of(store))[("3", "mini")].details == {"candidate_error": "timeout"}

    again = await score(config, store)
    assert again.outputs == 0 and sum(again.scores.values()) == 0

    # The report counts not-applicable outcomes in the "ignored" bucket, not as passes.
    report = await build_report(config, store)
    (task,) = report.tasks
    by_model = {c.model: c for c in task.candidates}
    assert (by_model["mini"].n, by_model["mini"].passed, by_model["mini"].ignored) == (3, 2, 1)
    assert (by_model["tiny"].n, by_model["tiny"].passed, by_model["tiny"].ignored) == (2, 1, 1)


@pytest.mark.anyio
async def test_a_new_tolerance_rescores_only_the_correctness_scores(
    store: Store, make_config,
) -> None:
    graded = [
        exchange(10, {PRIMARY: {"grade": 9}, "mini": {"grade": 8}}, {"mini": "x"}),
        exchange(11, {PRIMARY: {"grade": 7}, "mini": {"grade": 7}}, {"mini": "x"}),
    ]
    await store.write(graded)
    strict = make_config(store.url, models=MODELS, tasks=qa(scorers={"correctness": {}, "exact": {}}))
    first = await score(strict, store)
    assert first.scores == Counter({"correctness": 2, "exact": 2})
    loose = make_config(store.url, models=MODELS, tasks=qa(scorers={"correctness": {"tolerance": 1}, "exact": {}}))
    second = await score(loose, store)
    assert second.scores == Counter({"correctness": 2})
    async with store.session() as s:
        rows = (await s.scalars(select(Score).where(Score.scorer == "correctness"))).all()
    by_version: dict[str, list[bool | None]] = {}
    for row in rows:
        by_version.setdefault(row.version, []).append(row.passed)
    assert sorted(sorted(v, key=str) for v in by_version.values()) == [[False, True], [True, True]]
