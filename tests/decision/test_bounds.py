"""Confidence bounds on a success rate (shadowroute.decision.bounds)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from shadowroute.decision.bounds import (
    BOUND_METHODS,
    clopper_pearson_lower,
    clopper_pearson_upper,
    lower_bound,
    sequential_lower,
    sequential_upper,
    upper_bound,
    wilson_lower,
    wilson_upper,
    z_value,
)

CASES = [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (15, 20), (52, 52), (190, 200), (970, 1000)]


def test_z_value() -> None:
    assert z_value(0.95) == pytest.approx(1.6448536, abs=1e-6)
    assert z_value(0.5) == pytest.approx(0.0, abs=1e-12)


def test_wilson_known_value() -> None:
    # With successes == n the observed rate is 1 and the Wilson lower bound simplifies:
    # center = (1 + z^2/2n) / (1 + z^2/n), half = (z^2/2n) / (1 + z^2/n), so
    # center - half = 1 / (1 + z^2/n) = n / (n + z^2). z = 1.644854, z^2 = 2.705544:
    # 52 / 54.705544 = 0.950543.
    x = wilson_lower(52, 52, 0.95)
    assert 0.950 <= x < 0.951
    assert x == pytest.approx(52 / (52 + z_value(0.95) ** 2), rel=1e-12)


def test_clopper_pearson_known_value() -> None:
    # With successes == n, P(X >= n | p) = p**n = 0.05, so p = 0.05 ** (1/52) = 0.944018.
    x = clopper_pearson_lower(52, 52, 0.95)
    assert x == pytest.approx(0.05 ** (1 / 52), rel=1e-10)
    assert 0.9440 <= x < 0.9441


@pytest.mark.parametrize(("k", "n"), CASES)
def test_symmetry(k: int, n: int) -> None:
    assert wilson_upper(k, n, 0.95) == pytest.approx(1 - wilson_lower(n - k, n, 0.95), abs=1e-12)
    assert clopper_pearson_upper(k, n, 0.9) == pytest.approx(
        1 - clopper_pearson_lower(n - k, n, 0.9), abs=1e-10
    )
    assert sequential_upper(k, n, 0.05) == pytest.approx(
        1 - sequential_lower(n - k, n, 0.05), abs=1e-9
    )
    # With an asymmetric prior the mirror image swaps a and b.
    assert sequential_upper(k, n, 0.05, a=1.0, b=2.0) == pytest.approx(
        1 - sequential_lower(n - k, n, 0.05, a=2.0, b=1.0), abs=1e-9
    )


@pytest.mark.parametrize(("k", "n"), CASES)
def test_bounds_are_ordered(k: int, n: int) -> None:
    rate = k / n
    for method in BOUND_METHODS:
        lo, hi = lower_bound(k, n, 0.95, method), upper_bound(k, n, 0.95, method)
        assert 0.0 <= lo <= rate <= hi <= 1.0, method
    lo, hi = sequential_lower(k, n, 0.05), sequential_upper(k, n, 0.05)
    assert 0.0 <= lo <= rate <= hi <= 1.0
    if 0 < k < n:
        assert lo < rate < hi


def test_n_zero() -> None:
    for method in BOUND_METHODS:
        assert lower_bound(0, 0, 0.95, method) == 0.0
        assert upper_bound(0, 0, 0.95, method) == 1.0
    assert sequential_lower(0, 0, 0.05) == 0.0
    assert sequential_upper(0, 0, 0.05) == 1.0


def test_extremes() -> None:
    assert clopper_pearson_lower(0, 10, 0.95) == 0.0
    assert clopper_pearson_upper(10, 10, 0.95) == 1.0
    assert sequential_lower(0, 10, 0.05) == 0.0
    assert sequential_upper(10, 10, 0.05) == 1.0
    assert 0.0 < sequential_lower(10, 10, 0.05) < 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: wilson_lower(11, 10, 0.95),
        lambda: wilson_upper(-1, 10, 0.95),
        lambda: clopper_pearson_lower(0, -1, 0.95),
        lambda: clopper_pearson_upper(5, 4, 0.95),
        lambda: sequential_lower(11, 10, 0.05),
        lambda: sequential_upper(-1, 10, 0.05),
        lambda: wilson_lower(5, 10, 1.0),
        lambda: wilson_upper(5, 10, 0.0),
        lambda: clopper_pearson_lower(5, 10, 1.0),
        lambda: sequential_lower(5, 10, 1.0),
        lambda: sequential_upper(5, 10, 0.0),
        lambda: sequential_lower(5, 10, 0.05, a=0.0),
        lambda: z_value(1.0),
        lambda: lower_bound(5, 10, 1.0),
    ],
)
def test_bad_inputs_raise(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


def test_unknown_method_names_the_allowed_ones() -> None:
    for fn in (lower_bound, upper_bound):
        with pytest.raises(ValueError, match="wilson.*clopper-pearson"):
            fn(5, 10, 0.95, "wald")


def _binom_tail_ge(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


@pytest.mark.parametrize(("k", "n", "confidence"), [(15, 20, 0.95), (3, 20, 0.9), (20, 20, 0.99)])
def test_clopper_pearson_matches_binomial_tail(k: int, n: int, confidence: float) -> None:
    lo = clopper_pearson_lower(k, n, confidence)
    assert _binom_tail_ge(k, n, lo) == pytest.approx(1 - confidence, abs=1e-9)
    if k < n:
        hi = clopper_pearson_upper(k, n, confidence)
        assert 1 - _binom_tail_ge(k + 1, n, hi) == pytest.approx(1 - confidence, abs=1e-9)


def test_wilson_close_to_clopper_pearson() -> None:
    w, cp = wilson_lower(190, 200, 0.95), clopper_pearson_lower(190, 200, 0.95)
    assert cp < w
    assert w - cp < 0.01


def _log_m(p: float, k: int, n: int, a: float = 0.5, b: float = 0.5) -> float:
    """log M_n(p), written independently of the module with math.lgamma."""

    def betaln(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    return betaln(k + a, n - k + b) - betaln(a, b) - k * math.log(p) - (n - k) * math.log1p(-p)


@pytest.mark.parametrize(("k", "n"), [(3, 10), (15, 20), (190, 200), (970, 1000), (52, 52)])
def test_sequential_ends_solve_the_boundary(k: int, n: int) -> None:
    level = math.log(1 / 0.05)
    lo = sequential_lower(k, n, 0.05)
    assert _log_m(lo, k, n) == pytest.approx(level, abs=1e-5)
    assert _log_m(lo + 1e-4, k, n) < level < _log_m(lo - 1e-4, k, n)
    if k < n:
        hi = sequential_upper(k, n, 0.05)
        assert _log_m(hi, k, n) == pytest.approx(level, abs=1e-5)


@pytest.mark.parametrize(("k", "n"), [(15, 20), (52, 52), (190, 200), (970, 1000), (9700, 10000)])
def test_sequential_is_more_conservative(k: int, n: int) -> None:
    assert sequential_lower(k, n, 0.05) < wilson_lower(k, n, 0.95)
    if k < n:
        assert sequential_upper(k, n, 0.05) > wilson_upper(k, n, 0.95)


def test_sequential_tightens_with_n() -> None:
    bounds = [sequential_lower(round(0.97 * n), n, 0.05) for n in (100, 1_000, 10_000)]
    assert bounds[0] < bounds[1] < bounds[2] < 0.97
    assert 0.97 - bounds[2] < 0.01
    assert 0.97 - bounds[0] > 3 * (0.97 - bounds[2])


def test_time_uniform_coverage_under_repeated_looks() -> None:
    # True p = 0.9; 400 runs of 2,000 Bernoulli draws, looking after every 20 draws (100 looks).
    # A run "errs" if the lower bound exceeds the true p at any look. The sequential bound must
    # err in at most 5% of runs; the fixed-sample 95% Wilson bound, peeked at 100 times, errs
    # far more often than 5% -- the failure that repeated looks cause, and what makes this test
    # able to fail if the sequential bound were no better than a fixed-sample one.
    p, runs, step, looks = 0.9, 400, 20, 100
    rng = random.Random(20240611)
    seq_errs = wilson_errs = 0
    for _ in range(runs):
        k = 0
        seq_err = wilson_err = False
        for look in range(1, looks + 1):
            k += sum(rng.random() < p for _ in range(step))
            n = look * step
            if k / n <= p:
                continue  # both lower bounds are <= k/n (tested above), so neither can exceed p
            wilson_err = wilson_err or wilson_lower(k, n, 0.95) > p
            seq_err = seq_err or sequential_lower(k, n, 0.05) > p
        seq_errs += seq_err
        wilson_errs += wilson_err
    assert seq_errs / runs <= 0.05
    assert wilson_errs / runs > 0.05
    assert seq_errs < wilson_errs
