"""Drift: does a promoted model still hold up on the reverse-shadow pairs?

Once a task type is promoted, a slice of its requests is also answered by the primary it
replaced; those pairs are scored exactly like shadow pairs (the primary's answer is the
reference). :func:`check_drift` reads their counts the other way round from :func:`decide`:
promotion needs proof that the candidate is good enough, demotion needs proof that it no
longer is. At the policy's confidence (always-valid bounds when ``sequential``, so a nightly
check does not raise false alarms by looking often):

* DEMOTE RECOMMENDED: the pass rate's *upper* bound is below ``required_quality``, or the
  *lower* bound of the excess failure rate over the primary's noise floor (noise at its upper
  bound) is above ``margin``;
* HOLDS: both promotion criteria are still met on the reverse pairs alone;
* NEED MORE DATA: neither yet (few pairs, or a rate close to the limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .bounds import lower_bound, sequential_lower, sequential_upper, upper_bound
from .verdict import Evidence, Policy, _criteria

__all__ = ["DriftCheck", "DriftVerdict", "check_drift"]


class DriftVerdict(StrEnum):
    HOLDS = "HOLDS"
    NEED_MORE_DATA = "NEED MORE DATA"
    DEMOTE = "DEMOTE RECOMMENDED"


@dataclass(frozen=True, slots=True)
class DriftCheck:
    verdict: DriftVerdict
    reason: str
    pass_rate: float | None = None
    upper_bound: float | None = None
    """Upper bound of the pass rate (DEMOTE RECOMMENDED when below ``required_quality``)."""
    lower_bound: float | None = None
    """Lower bound of the pass rate (HOLDS needs it at ``required_quality`` or above)."""
    noise_floor: float | None = None


def _upper(successes: int, n: int, alpha: float, p: Policy) -> float:
    if p.sequential:
        return sequential_upper(successes, n, alpha)
    return upper_bound(successes, n, 1 - alpha, p.bound)


def _lower(successes: int, n: int, alpha: float, p: Policy) -> float:
    if p.sequential:
        return sequential_lower(successes, n, alpha)
    return lower_bound(successes, n, 1 - alpha, p.bound)


def check_drift(e: Evidence, p: Policy) -> DriftCheck:
    """The drift verdict of a promoted model from its reverse-shadow counts (``e.n`` pairs of
    which ``e.passed`` passed) and the primary's noise floor (``e.noise_*``)."""
    if e.n == 0:
        return DriftCheck(DriftVerdict.NEED_MORE_DATA,
                          "no scored reverse-shadow pairs since the promotion yet")
    rate = e.passed / e.n
    noise = (e.noise_n - e.noise_passed) / e.noise_n if e.noise_n else None
    quality, inferiority = _criteria(e.passed, e.n, e.noise_passed, e.noise_n, p)
    figures = {"pass_rate": rate, "lower_bound": quality.bound, "noise_floor": noise}
    if not p.sequential and e.n < p.min_samples:
        return DriftCheck(DriftVerdict.NEED_MORE_DATA,
                          f"{e.n:,} reverse-shadow pairs, fewer than the {p.min_samples:,} "
                          "required with fixed-sample bounds", **figures)
    upper = _upper(e.passed, e.n, p.alpha, p)
    figures["upper_bound"] = upper
    failing = []
    if upper < p.required_quality:
        failing.append(f"quality: pass rate {rate:.1%}, upper bound {upper:.1%} < required "
                       f"{p.required_quality:.1%}")
    share = p.alpha / 2 if e.noise_n else p.alpha
    fail_lower = _lower(e.n - e.passed, e.n, share, p)
    noise_upper = _upper(e.noise_n - e.noise_passed, e.noise_n, share, p) if e.noise_n else 0.0
    excess = fail_lower - noise_upper
    if excess > p.margin:
        floor = f"the primary's noise floor {noise:.1%}" if noise is not None else \
            "a noise floor taken as 0"
        failing.append(f"non-inferiority: fails {1 - rate:.1%} vs {floor}; the excess's lower "
                       f"bound {excess:+.1%} > margin {p.margin:.1%}")
    if failing:
        return DriftCheck(DriftVerdict.DEMOTE, "; ".join(failing), **figures)
    if quality.met and inferiority.met:
        return DriftCheck(DriftVerdict.HOLDS, f"{quality.detail}; {inferiority.detail}",
                          **figures)
    return DriftCheck(
        DriftVerdict.NEED_MORE_DATA,
        f"{e.n:,} reverse-shadow pairs, pass rate {rate:.1%}: the bounds neither confirm nor "
        "refute the promotion yet", **figures)
