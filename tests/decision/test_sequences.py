"""Always-valid evidence about one rate (shadowroute.decision.sequences)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shadowroute.decision.bounds import sequential_lower, sequential_upper, wilson_lower
from shadowroute.decision.sequences import (
    BetaMixture,
    DirichletMixture,
    log_likelihood,
    rate_log_evalue,
    rate_lower,
    rate_upper,
)

TUNED = BetaMixture.tuned(0.025)  # the default policy's: half of 1 - 95%


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (15, 20), (52, 52), (970, 1000)])
def test_the_jeffreys_mixture_is_the_old_sequential_bound(k: int, n: int) -> None:
    # The bench's "today's rules" column relies on this identity.
    assert float(rate_lower(k, n, 0.05, BetaMixture.jeffreys())) == pytest.approx(
        sequential_lower(k, n, 0.05), abs=1e-9)
    assert float(rate_upper(k, n, 0.05, BetaMixture.jeffreys())) == pytest.approx(
        sequential_upper(k, n, 0.05), abs=1e-9)


def test_bounds_bracket_the_rate_and_are_rounded_outwards() -> None:
    k, n = np.array([0, 3, 30, 300, 1000]), np.array([10, 100, 1000, 10000, 1000])
    lower, upper = rate_lower(k, n, 0.05, TUNED), rate_upper(k, n, 0.05, TUNED)
    assert np.all(lower <= k / n) and np.all(k / n <= upper)
    assert lower[0] == 0.0 and upper[-1] == 1.0
    # At each end the martingale is at (just above) 1/alpha: the end is excluded, rounded out.
    for end in (lower[1:4], upper[1:4]):
        assert np.all(rate_log_evalue(k[1:4], n[1:4], end, TUNED) >= math.log(20))
        assert np.all(rate_log_evalue(k[1:4], n[1:4], end, TUNED) < math.log(20) + 1e-6)


def test_the_tuned_prior_is_tighter_near_the_bar_and_still_bounds_far_rates() -> None:
    # 3% failures of 3,000: the tuned mixture's upper bound is closer than Jeffreys'.
    tuned, jeffreys = rate_upper(90, 3000, 0.05, TUNED), rate_upper(90, 3000, 0.05,
                                                                    BetaMixture.jeffreys())
    assert float(tuned) < float(jeffreys)
    # A rate far from the centre (40% failures) costs at most log 3 nats of evidence.
    far = rate_log_evalue(400, 1000, 0.45, TUNED) - rate_log_evalue(400, 1000, 0.45,
                                                                     BetaMixture.jeffreys())
    assert float(far) >= -math.log(3) - 1e-9


def test_time_uniform_coverage_on_simulated_paths() -> None:
    """2,000 paths of 4,000 draws at the bar's rate (5%), looked at after every 20 draws: the
    tuned confidence sequence excludes the true rate on *any* look in at most 5% of paths;
    a fixed-sample 95% Wilson bound peeked at as often errs far more."""
    rng = np.random.default_rng(20260611)
    paths, looks, step, p = 2000, 200, 20, 0.05
    k = np.cumsum(rng.binomial(step, p, (paths, looks)), axis=1)
    n = step * np.arange(1, looks + 1)
    errs = (rate_log_evalue(k, n, p, TUNED) >= math.log(20)).any(axis=1)
    assert errs.mean() <= 0.05
    z2 = 1.6448536269514722 ** 2  # Wilson upper bound of the failure rate below p: an error
    phat = k / n
    centre = (phat + z2 / (2 * n)) / (1 + z2 / n)
    half = math.sqrt(z2) / (1 + z2 / n) * np.sqrt(phat * (1 - phat) / n + z2 / (4 * n * n))
    wilson_errs = (centre + half < p).any(axis=1)
    assert wilson_errs.mean() > 2 * 0.05 > errs.mean()
    assert wilson_lower(95, 100, 0.95) > 0  # the module's Wilson is the same formula


def test_mixtures_validate_and_compute_the_marginal() -> None:
    with pytest.raises(ValueError):
        BetaMixture(())
    with pytest.raises(ValueError):
        BetaMixture(((0.5, 1.0, 1.0),))
    with pytest.raises(ValueError):
        BetaMixture(((1.0, 0.0, 1.0),))
    with pytest.raises(ValueError):
        rate_lower(5, 4, 0.05, TUNED)
    # Beta(1, 1): the probability of one sequence with k ones of n is k! (n-k)! / (n+1)!.
    uniform = BetaMixture(((1.0, 1.0, 1.0),))
    assert float(uniform.log_marginal(2, 5)) == pytest.approx(
        math.log(math.factorial(2) * math.factorial(3) / math.factorial(6)))
    # A mixture never beats the best single rate (the marginal is an average of likelihoods).
    assert float(TUNED.log_marginal(30, 1000)) <= float(log_likelihood(30, 1000, 0.03))
    cells = DirichletMixture.tuned(0.025)
    assert float(cells.log_marginal(0, 0, 0, 0)) == pytest.approx(0.0)
