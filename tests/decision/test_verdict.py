"""The verdict: known cases with the failing criterion named, what each count changes, and
the guarantees on simulated nightly re-runs (vectorised through ``evaluate``, the rules
``decide`` applies)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from shadowroute.config import load_config
from shadowroute.decision import (
    Counts,
    Evidence,
    Policy,
    Verdict,
    decide,
    evaluate,
    recommended_replay_share,
    replay_share,
    wilson_lower,
)
from shadowroute.decision.core import CODES, HOLD, PROMOTE

NO_QUALITY_BAR = 0.01
"""A required quality every candidate meets, to look at non-inferiority alone."""


def test_as_good_as_the_primary_with_enough_data_is_promote() -> None:
    e = Evidence(n=20_000, passed=19_400, noise_n=5_000, noise_passed=4_850)  # 3% vs 3%
    d = decide(e, Policy(required_quality=0.95, margin=0.02))
    assert d.verdict is Verdict.PROMOTE
    quality, inferiority = d.criteria
    assert quality.met and inferiority.met and not quality.refuted
    assert d.sequential_lower is not None and d.lower_bound is not None
    assert d.sequential_lower < d.lower_bound < d.pass_rate  # the always-valid bound is wider
    assert inferiority.bound <= 0.02 and "upper bound" in inferiority.detail
    assert d.level == pytest.approx(0.05) and d.family_size == 1
    assert "always-valid" in d.method and "cumulative" in d.method


def test_hold_needs_the_bound_to_show_the_bar_is_out_of_reach() -> None:
    e = Evidence(n=5_000, passed=4_500, noise_n=1_000, noise_passed=900)  # 90%, noise 10%
    d = decide(e, Policy(required_quality=0.95, margin=0.02))
    assert d.verdict is Verdict.HOLD
    assert d.reason.startswith("quality: pass rate 90.0%, upper bound")
    assert d.reason.endswith("more data would not change this")
    quality = d.criteria[0]
    assert quality.refuted and quality.opposite is not None and quality.opposite < 0.95
    assert "non-inferiority" not in d.reason  # 10% vs a 10% noise floor is fine


def test_a_failing_estimate_that_the_bound_cannot_refute_yet_is_need_more_data() -> None:
    # 94% of 400 against a 95% bar: below it, but 400 outputs cannot show that it truly is.
    e = Evidence(n=400, passed=376, noise_n=200, noise_passed=188, samples_per_day=100.0)
    d = decide(e, Policy())
    assert d.verdict is Verdict.NEED_MORE_DATA
    assert d.criteria[0].estimate_fails and not d.criteria[0].refuted
    assert "HOLD in" in d.reason and "PROMOTE in" in d.reason


def test_excess_beyond_the_margin_is_hold_naming_non_inferiority() -> None:
    # Noise floor 5%, candidate fails 10%: 5 points more, far beyond the 2-point margin.
    e = Evidence(n=20_000, passed=18_000, noise_n=5_000, noise_passed=4_750)
    d = decide(e, Policy(required_quality=0.8, margin=0.02))
    assert d.verdict is Verdict.HOLD
    assert d.reason.startswith("non-inferiority: fails 10.0% vs the primary's noise floor 5.0%;"
                               " the excess's lower bound")
    assert d.noise_floor == pytest.approx(0.05)


def test_below_the_minimum_sample_size_is_need_more_data_with_days() -> None:
    d = decide(Evidence(n=20, passed=20, samples_per_day=4.0), Policy(min_samples=100))
    assert d.verdict is Verdict.NEED_MORE_DATA
    assert d.samples_needed == 80 and d.days_needed == pytest.approx(20.0)
    assert "fewer than the 100 required" in d.reason


def test_no_data_at_all_is_need_more_data() -> None:
    d = decide(Evidence(n=0, passed=0), Policy(min_samples=50))
    assert d.verdict is Verdict.NEED_MORE_DATA
    assert d.samples_needed == 50 and d.days_needed is None and d.pass_rate is None


def test_need_more_data_gives_a_range_of_days_from_the_projection() -> None:
    e = Evidence(n=400, passed=388, noise_n=100, noise_passed=97, samples_per_day=100.0,
                 noise_per_day=50.0)
    d = decide(e, Policy(required_quality=0.9, margin=0.05))
    assert d.verdict is Verdict.NEED_MORE_DATA
    assert d.days_needed is not None and d.days_needed_80 is not None
    assert 0 < d.days_needed <= d.days_needed_80
    assert d.samples_needed is not None and d.samples_needed > 0
    assert d.verdict_chance is not None and d.promote_chance is not None
    assert 0.5 <= d.promote_chance <= d.verdict_chance <= 1.0
    median, p80 = (max(1, math.ceil(x)) for x in (d.days_needed, d.days_needed_80))
    assert f"about {median} day{'s' if median != 1 else ''} (80% within {p80} day" in d.reason
    # Deterministic: the projection's seed comes from the counts.
    assert decide(e, Policy(required_quality=0.9, margin=0.05)) == d


def test_a_rate_at_the_limit_says_no_verdict_is_in_sight() -> None:
    e = Evidence(n=1_000, passed=950, noise_n=300, noise_passed=300, samples_per_day=10.0)
    d = decide(e, Policy(required_quality=0.9499999, margin=0.5))
    assert d.verdict is Verdict.NEED_MORE_DATA
    assert d.days_needed is None and d.verdict_chance is not None and d.verdict_chance < 0.5
    assert "close to the limits" in d.reason


def test_config_problem_needs_the_bound_not_the_observed_rate() -> None:
    policy = Policy()
    for invalid, checked, expected in ((2, 20, False), (30, 200, False), (60, 200, True),
                                       (9, 9, False)):  # too few checks to judge
        e = Evidence(n=500, passed=500, primary_checked=checked, primary_invalid=invalid)
        assert (decide(e, policy).verdict is Verdict.CONFIG_PROBLEM) is expected, (invalid,
                                                                                   checked)
    d = decide(Evidence(n=500, passed=500, primary_checked=200, primary_invalid=60), policy)
    assert "30% of checks (60 of 200; at least" in d.reason and d.level == pytest.approx(0.05)


def test_flipped_judge_verdicts_are_failures() -> None:
    # 97% pass as counted with flips read as "same"; 300 of those passes were flips.
    e = Evidence(n=20_000, passed=19_400, noise_n=5_000, noise_passed=4_850, judged=20_000,
                 flipped=300, flipped_passed=300)
    d = decide(e, Policy())
    assert d.pass_rate == pytest.approx(0.955)
    assert "300 flipped judge verdicts counted as failures" in d.reason
    assert d.flip_rate == pytest.approx(0.015)
    assert decide(replace(e, flipped_passed=0), Policy()).verdict is Verdict.PROMOTE


def test_an_inconsistent_judge_gives_no_verdict() -> None:
    e = Evidence(n=1_000, passed=990, noise_n=300, noise_passed=297, judged=1_000, flipped=400,
                 flipped_passed=390)
    d = decide(e, Policy())
    assert d.verdict is Verdict.CONFIG_PROBLEM
    assert d.reason.startswith("judge inconsistent: 40% of its verdicts flip")
    assert "calibrate" in d.reason
    # Flips beyond 1 - required quality: no candidate could reach the bar.
    e = Evidence(n=5_000, passed=5_000, judged=5_000, flipped=400, flipped_passed=400)
    assert "no candidate can show 95%" in decide(e, Policy()).reason
    # A consistent-enough judge is no config problem.
    e = Evidence(n=1_000, passed=990, judged=1_000, flipped=10, flipped_passed=10)
    assert decide(e, Policy()).verdict is not Verdict.CONFIG_PROBLEM


def test_unscored_outputs_count_as_failures_for_quality_unless_opted_out() -> None:
    e = Evidence(n=20_000, passed=19_400, noise_n=5_000, noise_passed=4_850, unscored=1_000)
    d = decide(e, Policy())
    assert d.pass_rate == pytest.approx(0.97)  # the observed rate of the counted outputs
    assert d.criteria[0].estimate == pytest.approx(19_400 / 21_000)
    assert d.verdict is Verdict.HOLD and "1,000 unscored" in d.reason
    assert decide(e, Policy(unscored_fail=False)).verdict is Verdict.PROMOTE


def test_the_family_level_is_shared_by_the_reports_decisions() -> None:
    e = Evidence(n=1_000, passed=980, noise_n=500, noise_passed=485)
    alone, among = decide(e, Policy()), decide(e, Policy(family_size=30))
    assert alone.verdict is Verdict.PROMOTE
    assert among.verdict is Verdict.NEED_MORE_DATA
    assert among.level == pytest.approx(0.05 / 30) and among.family_size == 30
    assert "family-wise over 30 decisions" in among.method
    with pytest.raises(ValueError):
        Policy(family_size=0)


def test_paired_counts_are_used_and_checked() -> None:
    # Most of the floor's failures are on requests the candidate fails too.
    e = Evidence(n=3_000, passed=2_910, noise_n=1_500, noise_passed=1_455, pairs=1_500,
                 pairs_both_failed=35, pairs_candidate_failed=10, pairs_replay_failed=10)
    unpaired = replace(e, pairs=None, pairs_both_failed=0, pairs_candidate_failed=0,
                       pairs_replay_failed=0)
    d, u = decide(e, Policy(), project=False), decide(unpaired, Policy(), project=False)
    assert "paired" in d.method
    assert d.criteria[1].bound < u.criteria[1].bound
    with pytest.raises(ValueError):
        replace(e, pairs_both_failed=50)  # more pair failures than the replays had


def test_decide_agrees_with_the_vectorised_rules() -> None:
    rng = np.random.default_rng(3)
    n = rng.integers(50, 5_000, 30)
    passed = rng.binomial(n, rng.uniform(0.85, 1.0, 30))
    noise_n = rng.integers(0, 1_000, 30)
    noise_passed = rng.binomial(noise_n, rng.uniform(0.9, 1.0, 30))
    codes = evaluate(Counts(n, passed, noise_n, noise_passed), Policy()).verdict
    assert {CODES[int(c)] for c in codes} >= {Verdict.PROMOTE, Verdict.HOLD,
                                              Verdict.NEED_MORE_DATA}
    for i in range(30):
        e = Evidence(int(n[i]), int(passed[i]), int(noise_n[i]), int(noise_passed[i]))
        assert decide(e, Policy(), project=False).verdict is CODES[int(codes[i])]


def test_fixed_sample_bounds_promote_sooner_and_wait_for_a_bound_to_hold() -> None:
    e = Evidence(n=600, passed=588, noise_n=200, noise_passed=196)
    fixed = decide(e, Policy(required_quality=0.95, margin=0.03, sequential=False))
    assert fixed.verdict is Verdict.PROMOTE and fixed.sequential_lower is None
    assert "fixed-sample" in fixed.method
    hold = decide(Evidence(n=100, passed=70), Policy(sequential=False))
    assert hold.verdict is Verdict.HOLD and "upper bound" in hold.reason
    assert decide(Evidence(n=52, passed=52), Policy(min_samples=10, bound="clopper-pearson",
                                                    sequential=False)).lower_bound == \
        pytest.approx(0.05 ** (1 / 52), abs=1e-6)
    assert wilson_lower(52, 52, 0.95) == pytest.approx(0.9505, abs=5e-4)


def test_policy_takes_task_overrides_and_the_new_settings_from_config() -> None:
    config = load_config(data={
        "decision": {"confidence": 0.9, "required_quality": 0.97, "margin": 0.01,
                     "min_samples": 300, "bound": "clopper-pearson", "sequential": False,
                     "unscored_count_as_failures": False, "max_judge_flip_rate": 0.2},
        "routes": {"drift_false_alarm": 0.02, "drift_horizon_days": 180},
        "models": {"m": {"base_url": "http://127.0.0.1:9/v1"}},
        "tasks": {"a": {"candidates": ["m"], "required_quality": 0.8, "margin": 0.1,
                        "min_samples": 50}, "b": {"candidates": ["m"]}},
    })
    a, b = Policy.for_task(config, "a", family_size=4), Policy.for_task(config, "b")
    assert (a.required_quality, a.margin, a.min_samples) == (0.8, 0.1, 50)
    assert (b.required_quality, b.margin, b.min_samples) == (0.97, 0.01, 300)
    assert a.confidence == b.confidence == 0.9
    assert a.bound == "clopper-pearson" and a.sequential is False
    assert (a.family_size, b.family_size) == (4, 1) and a.level == pytest.approx(0.025)
    assert a.unscored_fail is False and a.max_judge_flip_rate == 0.2
    assert (a.drift_false_alarm, a.drift_horizon_days) == (0.02, 180)
    assert config.decision.evaluation_replay_rate == 0.5


def test_inconsistent_counts_are_refused() -> None:
    for bad in ({"n": 10, "passed": 11}, {"n": 10, "passed": 5, "flipped": 3, "judged": 2},
                {"n": 10, "passed": 5, "judged": 5, "flipped": 4, "flipped_passed": 6},
                {"n": 10, "passed": 5, "unscored": -1}):
        with pytest.raises(ValueError):
            Evidence(**bad)  # type: ignore[arg-type]


def test_the_replay_share_rises_while_the_floor_is_the_less_certain_rate() -> None:
    assert recommended_replay_share([], base=0.1, evaluation=0.5) == 0.1
    early = Evidence(n=3_000, passed=2_910, noise_n=300, noise_passed=291)
    assert recommended_replay_share([early], base=0.1, evaluation=0.5) == 0.5
    rich = Evidence(n=3_000, passed=2_910, noise_n=20_000, noise_passed=19_400)
    assert recommended_replay_share([rich, early], base=0.1, evaluation=0.5) == 0.1
    assert float(replay_share(0, 0, 0, 0, base=0.1, evaluation=0.5)) == 0.5
    assert float(replay_share(0, 0, 0, 0, base=0.2, evaluation=0.0)) == 0.2  # never below base


# ------------------------------------------------------------------ repeated nightly looks


def _nightly(rng: np.random.Generator, runs: int, decisions: int, nights: int, per_night: int,
             fail: float, floor: float, share: float) -> tuple[np.ndarray, ...]:
    """Cumulative counts (nights, runs, decisions) of independent decisions."""
    shape = (nights, runs, decisions)
    replays = round(per_night * share)
    n = per_night * np.arange(1, nights + 1, dtype=float).reshape(-1, 1, 1)
    m = replays * np.arange(1, nights + 1, dtype=float).reshape(-1, 1, 1)
    fails = np.cumsum(rng.binomial(per_night, fail, shape), axis=0)
    noise_fails = np.cumsum(rng.binomial(replays, floor, shape), axis=0)
    return n, n - fails, m, m - noise_fails


def test_family_wise_control_over_nightly_reruns() -> None:
    """10 decisions exactly at the quality bar (95% pass), re-decided every night for 120
    nights: with the family level the chance that any of them is ever promoted stays under 5%;
    at 5% each it does not (what the family level is for)."""
    rng = np.random.default_rng(20260611)
    n, passed, m, noise_passed = _nightly(rng, 250, 10, 120, 100, 0.05, 0.10, 0.5)
    counts = Counts(n, passed, m, noise_passed)
    family = (evaluate(counts, Policy(family_size=10)).verdict == PROMOTE).any(axis=(0, 2))
    each = (evaluate(counts, Policy()).verdict == PROMOTE).any(axis=(0, 2))
    assert family.mean() <= 0.05
    assert each.mean() > family.mean()


@pytest.mark.parametrize("excess", [0.02, 0.03])
def test_nightly_reruns_keep_false_promotions_of_an_inferior_candidate_under_alpha(
    excess: float,
) -> None:
    rng = np.random.default_rng(11)
    policy = Policy(required_quality=NO_QUALITY_BAR, margin=0.02)
    n, passed, m, noise_passed = _nightly(rng, 400, 1, 120, 100, 0.05 + excess, 0.05, 0.5)
    promoted = evaluate(Counts(n, passed, m, noise_passed), policy).verdict == PROMOTE
    assert promoted.any(axis=(0, 2)).mean() <= policy.alpha


def test_a_plug_in_floor_would_promote_inferior_candidates() -> None:
    """What keeping the floor's uncertainty in the test prevents: treating the observed floor
    as exact (the candidate's own bound against it) promotes a candidate at the margin often."""
    from shadowroute.decision.sequences import BetaMixture, rate_upper

    rng = np.random.default_rng(12)
    n, passed, m, noise_passed = _nightly(rng, 400, 1, 120, 100, 0.07, 0.05, 0.1)
    plug_in = rate_upper(n - passed, n, 0.05, BetaMixture.tuned(0.025)) - (m - noise_passed) / m
    assert (plug_in <= 0.02).any(axis=(0, 2)).mean() > 0.05


def test_a_candidate_as_good_as_the_primary_is_promoted_within_weeks() -> None:
    """97% pass, floor 3%, 300 outputs a night, half of them replayed while under evaluation:
    the median run is promoted within 21 nights, and no run sees a HOLD first."""
    rng = np.random.default_rng(5)
    n, passed, m, noise_passed = _nightly(rng, 200, 1, 40, 300, 0.03, 0.03, 0.5)
    verdict = evaluate(Counts(n, passed, m, noise_passed), Policy()).verdict[..., 0]
    promoted = verdict == PROMOTE
    first = np.where(promoted.any(axis=0), promoted.argmax(axis=0) + 1, np.inf)
    assert np.median(first) <= 21
    held_first = (verdict == HOLD).any(axis=0)
    assert not held_first.any()
