"""The drift check of a promoted model: demote only on evidence that it fell short."""

from __future__ import annotations

import random

from shadowroute.decision import DriftVerdict, Evidence, Policy, check_drift

POLICY = Policy(required_quality=0.9, margin=0.05, min_samples=100)


def test_no_pairs_yet_needs_more_data() -> None:
    assert check_drift(Evidence(0, 0), POLICY).verdict is DriftVerdict.NEED_MORE_DATA


def test_a_clearly_degraded_model_is_demoted_with_the_failing_criterion() -> None:
    check = check_drift(Evidence(60, 20, noise_n=40, noise_passed=38), POLICY)
    assert check.verdict is DriftVerdict.DEMOTE
    assert check.reason.startswith("quality: pass rate 33.3%, upper bound")
    assert "< required 90.0%" in check.reason and "non-inferiority" in check.reason
    assert check.upper_bound is not None and check.upper_bound < 0.9


def test_a_model_that_still_holds_up() -> None:
    check = check_drift(Evidence(2000, 1960, noise_n=500, noise_passed=490), POLICY)
    assert check.verdict is DriftVerdict.HOLDS
    assert check.lower_bound is not None and check.lower_bound >= 0.9


def test_a_few_failures_are_not_enough_to_demote() -> None:
    # 8 of 10: the rate looks worse than 90%, but 10 pairs cannot show it.
    check = check_drift(Evidence(10, 8, noise_n=5, noise_passed=5), POLICY)
    assert check.verdict is DriftVerdict.NEED_MORE_DATA
    assert "neither confirm nor refute" in check.reason


def test_excess_failure_over_the_noise_floor_demotes_even_above_the_quality_bar() -> None:
    # 92% passes the quality bar, but the primary agrees with itself 100% of the time and
    # the margin is 2 points: the candidate fails 8 points more often.
    strict = Policy(required_quality=0.8, margin=0.02, min_samples=100)
    check = check_drift(Evidence(3000, 2760, noise_n=3000, noise_passed=3000), strict)
    assert check.verdict is DriftVerdict.DEMOTE
    assert check.reason.startswith("non-inferiority:")


def test_fixed_bounds_wait_for_min_samples() -> None:
    fixed = Policy(required_quality=0.9, margin=0.05, min_samples=100, sequential=False)
    assert check_drift(Evidence(30, 10), fixed).verdict is DriftVerdict.NEED_MORE_DATA
    assert check_drift(Evidence(300, 100), fixed).verdict is DriftVerdict.DEMOTE


def test_nightly_checks_of_a_model_that_still_meets_the_bar_rarely_demote_it() -> None:
    """A model passing 93% (bar 90%, noise floor 3%, margin 5%: both criteria hold), checked
    every night on a growing sample for 30 nights: the always-valid bounds keep the chance of
    any false DEMOTE RECOMMENDED under alpha (5%) over all those looks."""
    rng = random.Random(20261130)
    runs, false_alarms = 200, 0
    for _ in range(runs):
        n = passed = noise_n = noise_passed = 0
        for _night in range(30):
            for _ in range(40):
                n += 1
                passed += rng.random() < 0.93
            for _ in range(10):
                noise_n += 1
                noise_passed += rng.random() < 0.97
            e = Evidence(n, passed, noise_n=noise_n, noise_passed=noise_passed)
            if check_drift(e, POLICY).verdict is DriftVerdict.DEMOTE:
                false_alarms += 1
                break
    assert false_alarms / runs <= 0.05, false_alarms


def test_nightly_checks_catch_a_model_that_degraded() -> None:
    """The same schedule on a model that now passes 70%: demoted within the first nights."""
    rng = random.Random(7)
    nights_to_catch = []
    for _ in range(50):
        n = passed = 0
        for night in range(1, 31):
            for _ in range(40):
                n += 1
                passed += rng.random() < 0.70
            if check_drift(Evidence(n, passed), POLICY).verdict is DriftVerdict.DEMOTE:
                nights_to_catch.append(night)
                break
    assert len(nights_to_catch) == 50 and max(nights_to_catch) <= 5, nights_to_catch
