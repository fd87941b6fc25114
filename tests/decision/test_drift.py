"""The drift check of a promoted model: demote only on evidence that it fell short; the
change detector on nightly counts catches a drop as fast whenever it happens."""

from __future__ import annotations

import random

import numpy as np
import pytest

from shadowroute.decision import DriftVerdict, Evidence, Policy, check_drift
from shadowroute.decision.drift import drift_reference, drift_statistic, drift_threshold

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


# ------------------------------------------------------------------ change detection

BAR_90 = Policy(required_quality=0.9)
FLOOR = {"noise_n": 3_000, "noise_passed": 2_700}  # the primary disagrees with itself 10%
BASELINE = (6_000, 5_700)  # the candidate passed 95% while it was evaluated


def test_a_drop_is_caught_as_fast_long_after_the_promotion() -> None:
    """95% -> 85% at 40 reverse pairs a night, 30 or 90 good nights after the promotion: the
    detector restarts, so the delay is the same; a cumulative check needs months."""
    rng = np.random.default_rng(20260611)
    f0 = drift_reference(BAR_90, 3_000, 300, 6_000, 300)
    threshold = drift_threshold(BAR_90)
    delays = {}
    for good in (30, 90):
        p = np.r_[np.full(good, 0.95), np.full(60, 0.85)]
        passed = rng.binomial(40, p, (300, p.size))
        stat, _ = drift_statistic(40 - passed, np.full(passed.shape, 40), f0)
        alarmed = stat >= threshold
        first = np.where(alarmed.any(axis=1), alarmed.argmax(axis=1) + 1, np.inf)
        assert (first > good).mean() >= 0.99  # no alarm before the drop
        delays[good] = np.median(first - good)
    assert delays[90] <= 15 and abs(delays[90] - delays[30]) <= 3


def test_a_model_that_keeps_its_rate_is_not_flagged_in_a_year() -> None:
    """The hardest case for false alarms: a model exactly at the in-control rate ``f0`` for
    365 nights; the guarantee is at most 1% of runs flagged."""
    rng = np.random.default_rng(7)
    policy = Policy()
    f0 = drift_reference(policy)
    assert f0 == pytest.approx(0.05)
    failures = rng.binomial(40, f0, (1_000, 365))
    stat, _ = drift_statistic(failures, np.full(failures.shape, 40), f0)
    assert (stat >= drift_threshold(policy)).any(axis=1).mean() <= 0.01


def test_check_drift_with_nightly_counts_names_the_drop() -> None:
    nights = [(40, 38)] * 90 + [(40, 33), (40, 35), (40, 34)] * 5
    check = check_drift(Evidence(0, 0, **FLOOR), BAR_90, nights=nights, baseline=BASELINE)
    assert check.verdict is DriftVerdict.DEMOTE
    assert check.alarm_night is not None and 90 < check.alarm_night <= 105
    assert check.change_night is not None and 88 <= check.change_night <= 92
    assert check.reason.startswith("quality dropped: ")
    assert check.recent_pass_rate is not None and check.recent_pass_rate < 0.9
    assert check.statistic is not None and check.threshold is not None
    assert check.statistic >= check.threshold
    # Without the baseline the detector watches for the bar (90%) only: later, or not yet.
    later = check_drift(Evidence(0, 0, **FLOOR), BAR_90, nights=nights)
    assert later.verdict is not DriftVerdict.DEMOTE or later.alarm_night > check.alarm_night


def test_check_drift_with_nightly_counts_holds_and_waits() -> None:
    steady = check_drift(Evidence(0, 0, **FLOOR), BAR_90, nights=[(40, 38)] * 60,
                         baseline=BASELINE)
    assert steady.verdict is DriftVerdict.HOLDS and "no drop detected" in steady.reason
    young = check_drift(Evidence(0, 0, **FLOOR), BAR_90, nights=[(10, 10), (0, 0)],
                        baseline=BASELINE)
    assert young.verdict is DriftVerdict.NEED_MORE_DATA
    empty = check_drift(Evidence(0, 0), BAR_90, nights=[])
    assert empty.verdict is DriftVerdict.NEED_MORE_DATA
    with pytest.raises(ValueError):
        check_drift(Evidence(0, 0), BAR_90, nights=[(10, 11)])
    with pytest.raises(ValueError):
        check_drift(Evidence(0, 0), BAR_90, nights=[(10, 9)], baseline=(5, 6))
