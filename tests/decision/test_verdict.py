"""The verdict: known cases, the failing criterion named, projections, and the false-promotion
rate over many simulated nightly re-runs."""

from __future__ import annotations

import random

import pytest

from shadowroute.config import load_config
from shadowroute.decision import Evidence, Policy, Verdict, decide, wilson_lower

NO_QUALITY_BAR = 0.01
"""A required quality every candidate meets, to look at non-inferiority alone."""


def test_wilson_bound_for_52_of_52_is_about_095() -> None:
    assert wilson_lower(52, 52, 0.95) == pytest.approx(0.9505, abs=5e-4)


def test_three_points_worse_than_the_noise_floor_is_hold_naming_non_inferiority() -> None:
    # Noise floor 5%, candidate fails 8%: 3 points more than the primary disagrees with itself,
    # beyond the 2-point margin, however much data there is.
    e = Evidence(n=20_000, passed=18_400, noise_n=5_000, noise_passed=4_750)
    d = decide(e, Policy(required_quality=0.9, margin=0.02))
    assert d.verdict is Verdict.HOLD
    assert d.reason.startswith("non-inferiority:")
    assert "quality" not in d.reason.split(";")[0]
    assert d.noise_floor == pytest.approx(0.05)
    assert d.pass_rate == pytest.approx(0.92)


def test_as_good_as_the_primary_with_enough_data_is_promote() -> None:
    e = Evidence(n=20_000, passed=19_400, noise_n=5_000, noise_passed=4_850)  # 3% vs 3%
    d = decide(e, Policy(required_quality=0.95, margin=0.02))
    assert d.verdict is Verdict.PROMOTE
    quality, inferiority = d.criteria
    assert quality.met and inferiority.met
    assert d.sequential_lower is not None and d.lower_bound is not None
    assert d.sequential_lower < d.lower_bound < d.pass_rate  # the always-valid bound is wider


def test_pass_rate_below_the_required_quality_is_hold_naming_quality() -> None:
    e = Evidence(n=5_000, passed=4_500, noise_n=1_000, noise_passed=900)  # 90%, noise 10%
    d = decide(e, Policy(required_quality=0.95, margin=0.02))
    assert d.verdict is Verdict.HOLD
    assert d.reason.startswith("quality: pass rate 90.0%")
    assert "non-inferiority" not in d.reason  # 10% vs a 10% noise floor is fine


def test_below_the_minimum_sample_size_is_need_more_data_with_days() -> None:
    e = Evidence(n=20, passed=20, samples_per_day=4.0)
    d = decide(e, Policy(min_samples=100))
    assert d.verdict is Verdict.NEED_MORE_DATA
    assert d.samples_needed == 80
    assert d.days_needed == pytest.approx(20.0)
    assert "fewer than the 100 required" in d.reason


def test_no_data_at_all_is_need_more_data() -> None:
    d = decide(Evidence(n=0, passed=0), Policy(min_samples=50))
    assert d.verdict is Verdict.NEED_MORE_DATA
    assert d.samples_needed == 50 and d.days_needed is None
    assert d.pass_rate is None


def test_inconclusive_bounds_project_a_sample_size_that_would_settle_it() -> None:
    policy = Policy(required_quality=0.9, margin=0.05)
    e = Evidence(n=400, passed=388, noise_n=100, noise_passed=97, samples_per_day=100.0)
    d = decide(e, policy)
    assert d.verdict is Verdict.NEED_MORE_DATA
    assert d.samples_needed is not None and d.samples_needed > 0
    assert d.days_needed == pytest.approx(d.samples_needed / 100.0)
    # At the projected size, with the same rates (replays in proportion), the verdict flips.
    total = 400 + d.samples_needed
    scale = total / 400
    noise_n = round(100 * scale)
    later = Evidence(n=total, passed=int(0.97 * total), noise_n=noise_n,
                     noise_passed=int(0.97 * noise_n))
    assert decide(later, policy).verdict is Verdict.PROMOTE
    # ... and at 90% of it, not yet.
    early_n = int(total * 0.9)
    early_noise = round(100 * early_n / 400)
    early = Evidence(n=early_n, passed=int(0.97 * early_n), noise_n=early_noise,
                     noise_passed=int(0.97 * early_noise))
    assert decide(early, policy).verdict is Verdict.NEED_MORE_DATA


def test_a_rate_too_close_to_the_limit_to_ever_show_is_hold() -> None:
    e = Evidence(n=1_000, passed=950, noise_n=300, noise_passed=300)
    d = decide(e, Policy(required_quality=0.9499999, margin=0.5))
    assert d.verdict is Verdict.HOLD
    assert "too close to the limit" in d.reason


def test_primary_failing_its_own_schema_is_config_problem() -> None:
    policy = Policy()
    bad = Evidence(n=500, passed=500, primary_checked=200, primary_invalid=30)  # 15%
    d = decide(bad, policy)
    assert d.verdict is Verdict.CONFIG_PROBLEM
    assert "15%" in d.reason and "30 of 200" in d.reason
    fine = Evidence(n=500, passed=500, primary_checked=200, primary_invalid=10)  # 5%
    assert decide(fine, policy).verdict is not Verdict.CONFIG_PROBLEM
    few = Evidence(n=500, passed=500, primary_checked=5, primary_invalid=5)  # too few checks
    assert decide(few, policy).verdict is not Verdict.CONFIG_PROBLEM


def test_fixed_sample_bounds_promote_sooner_than_sequential_ones() -> None:
    e = Evidence(n=600, passed=588, noise_n=200, noise_passed=196)
    sequential = decide(e, Policy(required_quality=0.95, margin=0.03))
    fixed = decide(e, Policy(required_quality=0.95, margin=0.03, sequential=False))
    assert fixed.verdict is Verdict.PROMOTE
    assert sequential.verdict is Verdict.NEED_MORE_DATA
    assert fixed.sequential_lower is None


def test_clopper_pearson_is_used_when_configured() -> None:
    e = Evidence(n=52, passed=52)
    d = decide(e, Policy(min_samples=10, bound="clopper-pearson", sequential=False))
    assert d.lower_bound == pytest.approx(0.05 ** (1 / 52), abs=1e-6)


def test_policy_takes_task_overrides_from_config() -> None:
    config = load_config(data={
        "decision": {"confidence": 0.9, "required_quality": 0.97, "margin": 0.01,
                     "min_samples": 300, "bound": "clopper-pearson", "sequential": False},
        "models": {"m": {"base_url": "http://127.0.0.1:9/v1"}},
        "tasks": {"a": {"candidates": ["m"], "required_quality": 0.8, "margin": 0.1,
                        "min_samples": 50}, "b": {"candidates": ["m"]}},
    })
    a, b = Policy.for_task(config, "a"), Policy.for_task(config, "b")
    assert (a.required_quality, a.margin, a.min_samples) == (0.8, 0.1, 50)
    assert (b.required_quality, b.margin, b.min_samples) == (0.97, 0.01, 300)
    assert a.confidence == b.confidence == 0.9
    assert a.bound == "clopper-pearson" and a.sequential is False


def test_inconsistent_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        Evidence(n=10, passed=11)


# ------------------------------------------------------------------ repeated nightly looks


def _nightly_false_promotions(
    *, fail_rate: float, noise_rate: float, policy: Policy, runs: int, nights: int,
    per_night: int, noise_per_night: int, seed: int,
) -> float:
    """Share of simulated deployments in which the report, re-run every night on the growing
    data, ever says PROMOTE."""
    rng = random.Random(seed)
    promoted = 0
    for _ in range(runs):
        n = failed = noise_n = noise_failed = 0
        for _night in range(nights):
            failed += sum(rng.random() < fail_rate for _ in range(per_night))
            noise_failed += sum(rng.random() < noise_rate for _ in range(noise_per_night))
            n += per_night
            noise_n += noise_per_night
            e = Evidence(n=n, passed=n - failed, noise_n=noise_n, noise_passed=noise_n - noise_failed)
            if decide(e, policy, project=False).verdict is Verdict.PROMOTE:
                promoted += 1
                break
    return promoted / runs


SIMULATION = {"runs": 300, "nights": 30, "per_night": 100, "noise_per_night": 25}


@pytest.mark.parametrize("excess", [0.02, 0.03])
def test_nightly_reruns_keep_false_promotions_of_an_inferior_candidate_at_most_alpha(
    excess: float,
) -> None:
    # The candidate truly fails `excess` more often than the primary's noise floor of 5%: at
    # the margin (the hardest case) and one point beyond it. A PROMOTE on any night is wrong.
    policy = Policy(required_quality=NO_QUALITY_BAR, margin=0.02, min_samples=100)
    rate = _nightly_false_promotions(fail_rate=0.05 + excess, noise_rate=0.05, policy=policy,
                                     seed=11, **SIMULATION)
    assert rate <= policy.alpha


def test_nightly_reruns_keep_false_promotions_below_the_quality_bar_at_most_alpha() -> None:
    policy = Policy(required_quality=0.95, margin=0.99, min_samples=100)
    rate = _nightly_false_promotions(fail_rate=0.05, noise_rate=0.0, policy=policy, seed=12,
                                     **SIMULATION)
    assert rate <= policy.alpha


def test_the_same_simulation_catches_a_naive_nightly_fixed_sample_test() -> None:
    # What the always-valid bounds prevent: a fixed-sample 95% test re-run every night
    # promotes a candidate that is exactly at the limit far more often than 5% of the time.
    policy = Policy(required_quality=0.95, margin=0.99, min_samples=100, sequential=False)
    rate = _nightly_false_promotions(fail_rate=0.05, noise_rate=0.0, policy=policy, seed=12,
                                     **SIMULATION)
    assert rate > 2 * policy.alpha


def test_a_truly_good_candidate_is_promoted_within_the_simulated_month() -> None:
    # The guard against a test that never promotes anything: half a point better than the
    # primary's noise floor (3%), margin 2 points.
    policy = Policy(required_quality=0.9, margin=0.02, min_samples=100)
    rng = random.Random(5)
    promoted = 0
    for _ in range(40):
        n = failed = noise_n = noise_failed = 0
        for _night in range(30):
            failed += sum(rng.random() < 0.025 for _ in range(300))
            noise_failed += sum(rng.random() < 0.03 for _ in range(150))
            n, noise_n = n + 300, noise_n + 150
            e = Evidence(n=n, passed=n - failed, noise_n=noise_n, noise_passed=noise_n - noise_failed)
            if decide(e, policy, project=False).verdict is Verdict.PROMOTE:
                promoted += 1
                break
    assert promoted >= 36
