"""Always-valid evidence about the excess over the noise floor (shadowroute.decision.excess)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import xlogy

from shadowroute.decision.bounds import sequential_lower, sequential_upper
from shadowroute.decision.excess import (
    Paired,
    excess_log_evalues,
    excess_lower,
    excess_upper,
)
from shadowroute.decision.sequences import BetaMixture, DirichletMixture

PRIOR = BetaMixture.tuned(0.025)
CELLS = DirichletMixture.tuned(0.025)
LEVEL = math.log(20)


def _full_loglik(x: np.ndarray, counts: tuple[float, ...], d: float) -> float:
    both, cand, rep, neither, lcf, lc, lrf, lr = counts
    u, v = x
    cells = (u - v, v + d, v, 1 - u - v - d)
    pc, pr = u + d, u
    if min(cells) < 0 or not 0 <= pc <= 1 or not 0 <= pr <= 1:
        return -math.inf
    return float(xlogy(both, cells[0]) + xlogy(cand, cells[1]) + xlogy(rep, cells[2])
                 + xlogy(neither, cells[3]) + xlogy(lcf, pc) + xlogy(lc - lcf, 1 - pc)
                 + xlogy(lrf, pr) + xlogy(lr - lrf, 1 - pr))


def _brute_supremum(counts: tuple[float, ...], d: float) -> float:
    best, start = -math.inf, None
    for u in np.linspace(max(0, -d), min(1, 1 - d), 80):
        for v in np.linspace(max(0, -d), max(max(0, -d), min(u, 1 - u - d)), 80):
            value = _full_loglik(np.array([u, v]), counts, d)
            if value > best:
                best, start = value, (u, v)
    result = minimize(lambda x: -_full_loglik(x, counts, d)
                      if math.isfinite(_full_loglik(x, counts, d)) else 1e300,
                      start, method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-12})
    return max(best, -float(result.fun))


@pytest.mark.parametrize(("counts", "delta"), [
    ((0, 0, 2, 3, 0, 1, 0, 0), 0.38),   # the maximum sits where the replay-only cell is held
    ((0, 3, 0, 4, 0, 1, 1, 3), 0.2),
    ((1, 0, 0, 5, 1, 4, 0, 2), 0.13),
    ((0, 0, 0, 3, 3, 5, 3, 3), -0.38),
    ((2, 30, 25, 900, 40, 1000, 3, 50), 0.02),
    ((0, 0, 0, 0, 30, 1000, 9, 300), 0.02),  # no pairs: the unpaired model
])
def test_the_null_supremum_is_the_true_maximum(counts: tuple[float, ...], delta: float) -> None:
    """If the computed maximum were below the true one, the e-value would be too large: the
    one numerical step that could break validity, checked against brute force."""
    both, cand, rep, neither, lcf, lc, lrf, lr = (np.array([float(c)]) for c in counts)
    paired = Paired(both, cand, rep, neither, lcf, lc, lrf, lr)
    from shadowroute.decision.excess import _paired_boundary, _unpaired_boundary

    value, _ = _paired_boundary(paired, np.array([delta]))
    assert float(value[0]) >= _brute_supremum(counts, delta) - 1e-7
    fc, nc = both + cand + lcf, both + cand + rep + neither + lc
    fr, nr = both + rep + lrf, both + cand + rep + neither + lr
    flat, _ = _unpaired_boundary(fc, nc, fr, nr, np.array([delta]))
    unpaired_counts = (0, 0, 0, 0, float(fc[0]), float(nc[0]), float(fr[0]), float(nr[0]))
    assert float(flat[0]) >= _brute_supremum(unpaired_counts, delta) - 1e-7


def _paths(rng: np.random.Generator, paths: int, looks: int, per_look: int, replays: int,
           p11: float, p10: float, p01: float) -> tuple[np.ndarray, ...]:
    """Cumulative counts: ``replays`` paired exchanges and ``per_look - replays`` candidate
    outputs alone per look."""
    cells = rng.multinomial(replays, [p11, p10, p01, 1 - p11 - p10 - p01], (paths, looks))
    cells = np.cumsum(cells, axis=1)
    lone = np.cumsum(rng.binomial(per_look - replays, p11 + p10, (paths, looks)), axis=1)
    n = per_look * np.arange(1, looks + 1)
    m = replays * np.arange(1, looks + 1)
    fc = cells[..., 0] + cells[..., 1] + lone
    fr = cells[..., 0] + cells[..., 2]
    pairs = Paired.from_totals(n, fc, m, fr, m, cells[..., 0], cells[..., 1], cells[..., 2])
    return fc, n, fr, m, pairs


@pytest.mark.parametrize("correlated", [False, True])
def test_no_more_than_alpha_of_paths_ever_reject_at_the_margin(correlated: bool) -> None:
    """The excess is exactly the 2% margin (candidate 3%, floor 1%); 1,000 paths, 60 looks of
    300 outputs and 150 replays. The paired test must hold whatever the correlation; the
    unpaired one assumes independence (checked with it, and reported by the bench under
    correlation)."""
    rng = np.random.default_rng(7 + correlated)
    p11 = 0.005 if correlated else 0.03 * 0.01
    fc, n, fr, m, pairs = _paths(rng, 1000, 60, 300, 150, p11, 0.03 - p11, 0.01 - p11)
    below, _ = excess_log_evalues(fc, n, fr, m, 0.02, PRIOR, PRIOR, paired=pairs, cells=CELLS,
                                  threshold=LEVEL)
    assert (below >= LEVEL).any(axis=1).mean() <= 0.05
    if not correlated:
        unpaired, _ = excess_log_evalues(fc, n, fr, m, 0.02, PRIOR, PRIOR)
        assert (unpaired >= LEVEL).any(axis=1).mean() <= 0.05


def test_the_difference_test_is_tighter_than_two_bonferroni_bounds() -> None:
    fc, nc, fr, nr = 180, 6000, 90, 3000  # 3% vs 3%
    split = sequential_upper(fc, nc, 0.025) - sequential_lower(fr, nr, 0.025)
    assert excess_upper(fc, nc, fr, nr, 0.05, PRIOR, PRIOR) < split - 0.002


def test_paired_counts_help_when_failures_are_shared() -> None:
    fc, nc, fr, nr = 180, 6000, 90, 3000
    shared = Paired.from_totals(nc, fc, nr, fr, 3000, 60, 30, 30)  # most floor failures shared
    independent = Paired.from_totals(nc, fc, nr, fr, 3000, 3, 87, 87)
    unpaired = excess_upper(fc, nc, fr, nr, 0.05, PRIOR, PRIOR)
    assert excess_upper(fc, nc, fr, nr, 0.05, PRIOR, PRIOR, paired=shared,
                        cells=CELLS) < unpaired - 0.001
    # ... and cost little when they are not.
    assert excess_upper(fc, nc, fr, nr, 0.05, PRIOR, PRIOR, paired=independent,
                        cells=CELLS) < unpaired + 0.001


def test_bounds_invert_the_tests() -> None:
    fc, nc, fr, nr = 150, 5000, 40, 1000
    upper = excess_upper(fc, nc, fr, nr, 0.05, PRIOR, PRIOR)
    lower = excess_lower(fc, nc, fr, nr, 0.05, PRIOR, PRIOR)
    assert lower < fc / nc - fr / nr < upper
    below, above = excess_log_evalues(fc, nc, fr, nr, np.array([upper, upper - 2e-3]), PRIOR,
                                      PRIOR)
    assert below[0] >= LEVEL > below[1]
    below, above = excess_log_evalues(fc, nc, fr, nr, np.array([lower, lower + 2e-3]), PRIOR,
                                      PRIOR)
    assert above[0] >= LEVEL > above[1]
    # Without replays the floor is taken as 0: the bound is the failure rate's own.
    assert excess_upper(30, 1000, 0, 0, 0.05, PRIOR, PRIOR) == pytest.approx(0.0506, abs=2e-4)
    assert excess_upper(0, 0, 0, 0, 0.05, PRIOR, PRIOR) == 1.0


def test_inconsistent_paired_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="inconsistent paired counts"):
        Paired.from_totals(100, 5, 50, 2, 60, 1, 1, 1)  # more pairs than replays
    with pytest.raises(ValueError):
        Paired.from_totals(100, 5, 50, 2, 50, 3, 3, 0)  # the pairs hold more failures



@pytest.mark.parametrize("counts", [
    (0, 0, 0, 7, 4, 17, 0, 0),   # the demo's sentiment: no paired failure, lone candidates fail
    (0, 0, 2, 3, 0, 1, 0, 0),
    (1, 0, 0, 5, 1, 4, 0, 2),
    (0, 3, 0, 4, 0, 1, 1, 3),
    (0, 0, 0, 3, 3, 5, 3, 3),
    (0, 0, 0, 20, 0, 80, 0, 0),  # no failure anywhere
])
def test_a_null_holding_the_maximum_is_never_rejected(counts: tuple[float, ...]) -> None:
    """The e-value against a composite null is the mixture over the null's supremum; where
    the null holds the unconstrained maximum (``H0: d >= δ`` for δ below the
    maximum-likelihood excess, ``H0: d <= δ`` above it) the supremum is the global maximum and
    the mixture can never beat it. A wrong sign of the profile's slope (a constraint that moves
    with δ, e.g. a replay-only cell held at 0) used to reject there: the demo's report showed
    an excess upper bound of -100%."""
    both, cand, rep, neither, lcf, lc, lrf, lr = (np.array(float(c)) for c in counts)
    paired = Paired(both, cand, rep, neither, lcf, lc, lrf, lr)
    fc, nc = both + cand + lcf, both + cand + rep + neither + lc
    fr, nr = both + rep + lrf, both + cand + rep + neither + lr
    from shadowroute.decision.excess import _paired_boundary

    deltas = np.linspace(-0.95, 0.95, 77)
    # The profile's maximum (checked against brute force above) may be a ridge: without
    # paired failures, "both failed" and "the candidate failed alone" explain the data alike.
    profile, _ = _paired_boundary(paired, deltas)
    ridge = deltas[profile >= profile.max() - 1e-7]
    d_low, d_high = float(ridge.min()), float(ridge.max())
    below, above = excess_log_evalues(fc, nc, fr, nr, deltas, PRIOR, PRIOR, paired=paired,
                                      cells=CELLS)
    wrong = [("d <", round(float(d), 3), float(b)) for d, b in zip(deltas, below, strict=True)
             if d <= d_high and b > 0]
    wrong += [("d >", round(float(d), 3), float(a)) for d, a in zip(deltas, above, strict=True)
              if d >= d_low and a > 0]
    assert not wrong, f"maximum-likelihood excess in [{d_low:+.3f}, {d_high:+.3f}]: {wrong}"
    lower, upper = (f(float(fc), float(nc), float(fr), float(nr), 0.005, PRIOR, PRIOR,
                      paired=paired, cells=CELLS) for f in (excess_lower, excess_upper))
    assert lower <= d_low + 0.025 and d_high - 0.025 <= upper
    # The same counts without their pairing: one maximum, π_c = fc / nc and π_r = fr / nr.
    d_hat = float(fc / nc - (fr / nr if nr else 0.0))
    below, above = excess_log_evalues(fc, nc, fr, nr, deltas, PRIOR, PRIOR)
    wrong = [("d <", round(float(d), 3), float(b)) for d, b in zip(deltas, below, strict=True)
             if d <= d_hat - 1e-6 and b > 0]
    wrong += [("d >", round(float(d), 3), float(a)) for d, a in zip(deltas, above, strict=True)
              if d >= d_hat + 1e-6 and a > 0]
    assert not wrong, f"unpaired maximum-likelihood excess {d_hat:+.3f}: {wrong}"
