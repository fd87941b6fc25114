"""Confidence bounds on a success rate: how low (or high) the true rate could plausibly be.

Given ``successes`` out of ``n`` trials, each function returns one end of a confidence interval
for the true success rate ``p``. All bounds here are one-sided: ``wilson_lower(k, n, 0.95)`` is
a number that the true rate is at or above with 95% confidence.

Fixed-sample bounds (valid when the sample size is decided in advance and you look once):

* Wilson score bound: the normal approximation solved for ``p`` rather than plugged in with
  the observed rate. Accurate and cheap; the default.
* Clopper-Pearson bound: the exact bound from the binomial tail (computed with the inverse
  incomplete beta function). Never under-covers, so it is a little more conservative than Wilson.

If you recompute a fixed-sample bound as data arrives and stop the first time it clears a
target, the chance of a false "clears the target" grows with every look, far beyond
``1 - confidence``. For that use the always-valid bounds:

* Sequential bounds: a Beta-binomial mixture confidence sequence (Robbins 1970; Howard,
  Ramdas, McAuliffe & Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence
  sequences"). With a Beta(a, b) prior the mixture likelihood ratio against a fixed ``p`` is
  ``M_n(p) = B(k + a, n - k + b) / B(a, b) / (p**k * (1 - p)**(n - k))``, a nonnegative
  martingale under ``p``. By Ville's inequality the true ``p`` leaves
  ``{p : M_n(p) < 1 / alpha}`` at *any* ``n`` with probability at most ``alpha``, so the bounds
  stay valid however often and whenever one looks, and one may stop at any time. Each one-sided
  end is valid at ``alpha`` on its own. The price is width: they are more conservative than the
  fixed-sample bounds at the same ``n``, and tighten as ``n`` grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

__all__ = [
    "BOUND_METHODS",
    "PRIOR_A",
    "PRIOR_B",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "lower_bound",
    "sequential_lower",
    "sequential_upper",
    "upper_bound",
    "wilson_lower",
    "wilson_upper",
    "z_value",
]

BOUND_METHODS: tuple[str, ...] = ("wilson", "clopper-pearson")
PRIOR_A: float = 0.5
"""Default Beta prior of the sequential bounds (Jeffreys prior, Beta(0.5, 0.5))."""
PRIOR_B: float = 0.5


def _check_open_unit(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")


def _check(successes: int, n: int, level_name: str, level: float) -> None:
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    _check_open_unit(level_name, level)


def z_value(confidence: float) -> float:
    """One-sided standard normal quantile: P(Z <= z_value(c)) = c."""
    _check_open_unit("confidence", confidence)
    return NormalDist().inv_cdf(confidence)


def _wilson(successes: int, n: int, confidence: float, sign: float) -> float:
    z = z_value(confidence)
    z2 = z * z
    phat = successes / n
    center = (phat + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(phat * (1 - phat) / n + z2 / (4 * n * n))
    return min(1.0, max(0.0, center + sign * half))


def wilson_lower(successes: int, n: int, confidence: float) -> float:
    """One-sided Wilson score lower bound at ``confidence``; 0.0 when ``successes == 0``."""
    _check(successes, n, "confidence", confidence)
    return 0.0 if successes == 0 else _wilson(successes, n, confidence, -1.0)


def wilson_upper(successes: int, n: int, confidence: float) -> float:
    """One-sided Wilson score upper bound at ``confidence``; 1.0 when ``successes == n``."""
    _check(successes, n, "confidence", confidence)
    return 1.0 if successes == n else _wilson(successes, n, confidence, 1.0)


def clopper_pearson_lower(successes: int, n: int, confidence: float) -> float:
    """Exact one-sided (Clopper-Pearson) lower bound: P(X >= successes | bound) = 1 - confidence."""
    _check(successes, n, "confidence", confidence)
    if successes == 0:
        return 0.0
    from scipy.special import betaincinv

    return float(betaincinv(successes, n - successes + 1, 1 - confidence))


def clopper_pearson_upper(successes: int, n: int, confidence: float) -> float:
    """Exact one-sided (Clopper-Pearson) upper bound: P(X <= successes | bound) = 1 - confidence."""
    _check(successes, n, "confidence", confidence)
    if successes == n:
        return 1.0
    from scipy.special import betaincinv

    return float(betaincinv(successes + 1, n - successes, confidence))


_Bound = Callable[[int, int, float], float]
_LOWER: dict[str, _Bound] = {
    "wilson": wilson_lower,
    "clopper-pearson": clopper_pearson_lower,
}
_UPPER: dict[str, _Bound] = {
    "wilson": wilson_upper,
    "clopper-pearson": clopper_pearson_upper,
}


def _method(table: dict[str, _Bound], method: str) -> _Bound:
    try:
        return table[method]
    except KeyError:
        raise ValueError(f"unknown bound method {method!r}; use one of {BOUND_METHODS}") from None


def lower_bound(successes: int, n: int, confidence: float, method: str = "wilson") -> float:
    """Fixed-sample one-sided lower bound by ``method`` (one of :data:`BOUND_METHODS`)."""
    return _method(_LOWER, method)(successes, n, confidence)


def upper_bound(successes: int, n: int, confidence: float, method: str = "wilson") -> float:
    """Fixed-sample one-sided upper bound by ``method`` (one of :data:`BOUND_METHODS`)."""
    return _method(_UPPER, method)(successes, n, confidence)


def _log_mixture_ratio(p: float, successes: int, n: int, a: float, b: float) -> float:
    """log M_n(p) of the Beta(a, b)-binomial mixture against ``p``; zero-count terms vanish."""
    from scipy.special import betaln

    value = float(betaln(successes + a, n - successes + b) - betaln(a, b))
    if successes:
        value -= successes * math.log(p)
    if n - successes:
        value -= (n - successes) * math.log1p(-p)
    return value


def sequential_lower(
    successes: int, n: int, alpha: float, *, a: float = PRIOR_A, b: float = PRIOR_B
) -> float:
    """Always-valid lower bound: the left end of {p : M_n(p) < 1/alpha} (see the module doc)."""
    _check(successes, n, "alpha", alpha)
    if not (a > 0 and b > 0):
        raise ValueError(f"prior parameters must be positive, got a={a!r}, b={b!r}")
    # M_n(0+) is finite (< 1, so inside the sequence) only when successes == 0; otherwise it is
    # +inf, and M_n is convex in p with minimum <= 1 at the MLE, so there is one crossing.
    if successes == 0:
        return 0.0
    from scipy.optimize import brentq

    level = math.log(1 / alpha)
    mle = successes / n

    def excess(p: float) -> float:
        return _log_mixture_ratio(p, successes, n, a, b) - level

    left = 1e-300
    if excess(left) <= 0:  # only for absurd inputs (alpha ~ 0, bound below 1e-300)
        return 0.0
    return float(brentq(excess, left, mle, xtol=1e-10))


def sequential_upper(
    successes: int, n: int, alpha: float, *, a: float = PRIOR_A, b: float = PRIOR_B
) -> float:
    """Always-valid upper bound: the right end of {p : M_n(p) < 1/alpha}; 1.0 when all succeed."""
    # M_n(p; k, a, b) == M_n(1 - p; n - k, b, a): mirror the lower end.
    _check(successes, n, "alpha", alpha)
    return 1.0 - sequential_lower(n - successes, n, alpha, a=b, b=a)

