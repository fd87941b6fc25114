"""Always-valid evidence about one rate: mixture martingales with a prior tuned to the bar.

Every function takes counts (``failures`` of ``n``), as numbers or numpy arrays that
broadcast, and returns numpy values, so a simulation can decide thousands of cases at once
with the same code the report uses.

The mixture martingale of a Bernoulli sequence against a fixed rate ``p`` (Robbins 1970;
Howard, Ramdas, McAuliffe & Sekhon 2021) is

    M_n(p) = m(k, n) / (p**k * (1 - p)**(n - k)),    m(k, n) = ∫ θ**k (1 - θ)**(n - k) dπ(θ)

for a prior ``π``. Under the true ``p`` it is a nonnegative martingale starting at 1, so by
Ville's inequality ``P(M_n(p) >= 1/alpha for some n) <= alpha``: the set
``{p : M_n(p) < 1/alpha}`` is a confidence sequence, valid at every ``n`` at once, however
often one looks and whenever one stops. Both of its ends are covered by that one ``alpha``.

What the prior changes is only the width: the sequence is tightest for rates the prior
favours. :meth:`BetaMixture.tuned` puts two thirds of the prior on failure rates near a
centre fixed in advance from the policy (half of ``1 - required_quality``: a candidate that
can be promoted fails less often than the bar allows) and one third on the Jeffreys prior, so
rates far from the centre still get a bound, at a cost of at most ``log 3`` nats of evidence.
Validity never depends on the prior; the prior must not be chosen after seeing the data.

What is *not* covered: the guarantee is for independent outcomes with one fixed rate. If the
rate changes while the evidence accumulates, the bound is about no single rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, gammaln, logsumexp, xlog1py, xlogy

__all__ = [
    "TUNED_WEIGHT",
    "BetaMixture",
    "DirichletMixture",
    "log_likelihood",
    "rate_log_evalue",
    "rate_lower",
    "rate_upper",
]

TUNED_WEIGHT = 2 / 3
"""Prior weight of the tuned component (the rest is the Jeffreys prior)."""
_MIN_CENTRE, _MAX_CENTRE = 0.005, 0.5
_ITERATIONS = 60

Array = NDArray[np.float64]


def _as_float(value: ArrayLike) -> Array:
    return np.asarray(value, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class BetaMixture:
    """A prior on a rate: ``components`` of (weight, a, b), a mixture of Beta(a, b)."""

    components: tuple[tuple[float, float, float], ...]

    def __post_init__(self) -> None:
        if not self.components:
            raise ValueError("a prior needs at least one component")
        for weight, a, b in self.components:
            if not (weight > 0 and a > 0 and b > 0):
                raise ValueError(f"prior components need positive weight, a, b: {self!r}")
        if not math.isclose(sum(w for w, _, _ in self.components), 1.0, rel_tol=1e-9):
            raise ValueError(f"prior weights must sum to 1: {self!r}")

    @classmethod
    def jeffreys(cls) -> BetaMixture:
        return cls(((1.0, 0.5, 0.5),))

    @classmethod
    def tuned(cls, centre: float, weight: float = TUNED_WEIGHT) -> BetaMixture:
        """``weight`` on Beta(1, 1/centre - 1) (mean ``centre``, most mass below it), the rest
        on Jeffreys. ``centre`` is clipped to [0.005, 0.5]."""
        centre = min(max(centre, _MIN_CENTRE), _MAX_CENTRE)
        return cls(((weight, 1.0, 1.0 / centre - 1.0), (1.0 - weight, 0.5, 0.5)))

    def log_marginal(self, k: ArrayLike, n: ArrayLike) -> Array:
        """log ∫ θ**k (1 - θ)**(n - k) dπ(θ): the prior's probability of one sequence with
        ``k`` ones among ``n`` (no binomial coefficient, like :func:`log_likelihood`)."""
        k, n = _as_float(k), _as_float(n)
        terms = [math.log(w) + betaln(k + a, n - k + b) - betaln(a, b)
                 for w, a, b in self.components]
        return np.asarray(logsumexp(np.stack(terms), axis=0), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class DirichletMixture:
    """A prior on the four cells of paired outcomes, ``components`` of (weight, (a11, a10,
    a01, a00)): a mixture of Dirichlet distributions."""

    components: tuple[tuple[float, tuple[float, float, float, float]], ...]

    @classmethod
    def tuned(cls, centre: float, weight: float = TUNED_WEIGHT) -> DirichletMixture:
        """Candidate-only and replay-only failures each near ``centre``, both failing near
        half of it (the tuned component), mixed with Jeffreys (all 1/2)."""
        centre = min(max(centre, _MIN_CENTRE), _MAX_CENTRE / 2)
        tuned = (0.5, 1.0, 1.0, 1.0 / centre - 2.5)
        return cls(((weight, tuned), (1.0 - weight, (0.5, 0.5, 0.5, 0.5))))

    def log_marginal(self, n11: ArrayLike, n10: ArrayLike, n01: ArrayLike,
                     n00: ArrayLike) -> Array:
        cells = [_as_float(c) for c in (n11, n10, n01, n00)]
        total = cells[0] + cells[1] + cells[2] + cells[3]
        terms = []
        for weight, alphas in self.components:
            a = sum(alphas)
            value = math.log(weight) + gammaln(a) - gammaln(a + total)
            for count, alpha in zip(cells, alphas, strict=True):
                value = value + gammaln(count + alpha) - gammaln(alpha)
            terms.append(value)
        return np.asarray(logsumexp(np.stack(terms), axis=0), dtype=np.float64)


def log_likelihood(k: ArrayLike, n: ArrayLike, p: ArrayLike) -> Array:
    """log(p**k * (1 - p)**(n - k)), with 0 * log 0 = 0."""
    k, n, p = _as_float(k), _as_float(n), _as_float(p)
    return np.asarray(xlogy(k, p) + xlog1py(n - k, -p), dtype=np.float64)


def rate_log_evalue(k: ArrayLike, n: ArrayLike, p: ArrayLike, prior: BetaMixture) -> Array:
    """log M_n(p): the evidence against the rate being ``p`` (see the module docstring)."""
    return prior.log_marginal(k, n) - log_likelihood(k, n, p)


def _check_counts(k: Array, n: Array) -> None:
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("need 0 <= k <= n")


def _bisect_crossing(k: Array, n: Array, level: Array | float, prior: BetaMixture,
                     low: Array, high: Array, rising_left: bool) -> Array:
    """The ``p`` in [low, high] where log M_n(p) crosses ``level``; log M is convex in ``p``
    with its minimum (<= 0) at k/n, so there is one crossing on each side of it."""
    log_marginal = prior.log_marginal(k, n)
    for _ in range(_ITERATIONS):
        middle = 0.5 * (low + high)
        above = log_marginal - log_likelihood(k, n, middle) >= level
        if rising_left:  # left of the minimum: above the level means p is too small
            low, high = np.where(above, middle, low), np.where(above, high, middle)
        else:
            low, high = np.where(above, low, middle), np.where(above, middle, high)
    return low if rising_left else high


def rate_lower(k: ArrayLike, n: ArrayLike, alpha: ArrayLike, prior: BetaMixture) -> Array:
    """Always-valid lower bound of the rate: the left end of {p : M_n(p) < 1/alpha}
    (rounded down, so never above the exact end); 0 when ``k == 0``."""
    k, n = np.broadcast_arrays(_as_float(k), _as_float(n))
    _check_counts(k, n)
    level = np.log(1.0 / _as_float(alpha))
    mle = np.divide(k, n, out=np.zeros_like(k), where=n > 0)
    low = _bisect_crossing(k, n, level, prior, np.zeros_like(mle), mle.copy(), True)
    return np.where(k > 0, low, 0.0)


def rate_upper(k: ArrayLike, n: ArrayLike, alpha: ArrayLike, prior: BetaMixture) -> Array:
    """Always-valid upper bound of the rate: the right end of {p : M_n(p) < 1/alpha}
    (rounded up); 1 when ``k == n``."""
    k, n = np.broadcast_arrays(_as_float(k), _as_float(n))
    _check_counts(k, n)
    level = np.log(1.0 / _as_float(alpha))
    mle = np.divide(k, n, out=np.ones_like(k), where=n > 0)
    high = _bisect_crossing(k, n, level, prior, mle.copy(), np.ones_like(mle), False)
    return np.where(k < n, high, 1.0)
