"""Fixed-sample decisions (``[decision] sequential = false``): for one look at a fixed dataset.

Wilson or Clopper-Pearson bounds at the policy's per-decision level; non-inferiority from the
candidate's failure rate's upper bound minus the floor's lower bound, each at half the level
(the whole level when there are no replays and the floor is taken as 0, the conservative
choice). Looking again as data grow voids the level: that is what the sequential tests are for.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .bounds import lower_bound, upper_bound
from .policy import Evidence, Policy
from .results import Criterion

__all__ = ["fixed_criteria", "fixed_samples_needed"]

MAX_PROJECTED_SAMPLES = 10_000_000


def _criteria_from(passed: int, n: int, noise_passed: int, noise_n: int,
                   p: Policy) -> tuple[Criterion, Criterion]:
    level, confidence = p.level, 1 - p.level
    rate = passed / n
    lower = lower_bound(passed, n, confidence, p.bound)
    upper = upper_bound(passed, n, confidence, p.bound)
    met, refuted = lower >= p.required_quality, upper < p.required_quality
    detail = (f"pass rate {rate:.1%}, upper bound {upper:.1%} < required "
              f"{p.required_quality:.1%}" if refuted else
              f"pass rate {rate:.1%}, lower bound {lower:.1%} {'>=' if met else '<'} required "
              f"{p.required_quality:.1%}")
    quality = Criterion("quality", met, rate, lower, p.required_quality, detail, refuted, upper)

    failures, noise_failures = n - passed, noise_n - noise_passed
    noise = noise_failures / noise_n if noise_n else 0.0
    share = level / 2 if noise_n else level
    fail_upper = upper_bound(failures, n, 1 - share, p.bound)
    fail_lower = lower_bound(failures, n, 1 - share, p.bound)
    noise_lower = lower_bound(noise_failures, noise_n, 1 - share, p.bound) if noise_n else 0.0
    noise_upper = upper_bound(noise_failures, noise_n, 1 - share, p.bound) if noise_n else 0.0
    excess_up, excess_low = fail_upper - noise_lower, fail_lower - noise_upper
    met, refuted = excess_up <= p.margin, excess_low > p.margin
    floor = f"the primary's noise floor {noise:.1%}" if noise_n else "a noise floor taken as 0"
    detail = (f"fails {1 - rate:.1%} vs {floor}; the excess's lower bound {excess_low:+.1%} > "
              f"margin {p.margin:.1%}" if refuted else
              f"fails {1 - rate:.1%} vs {floor}; the excess's upper bound {excess_up:+.1%} "
              f"{'<=' if met else '>'} margin {p.margin:.1%}")
    inferiority = Criterion("non-inferiority", met, (1 - rate) - noise, excess_up, p.margin,
                            detail, refuted, excess_low)
    return quality, inferiority


def fixed_criteria(e: Evidence, p: Policy) -> tuple[Criterion, Criterion]:
    """(quality, non-inferiority) :class:`~shadowroute.decision.Criterion` of ``e``."""
    return _criteria_from(e.effective_passed, e.n, e.effective_noise_passed, e.noise_n, p)


def fixed_samples_needed(e: Evidence, p: Policy) -> int | None:
    """About how many more outputs would meet both criteria if the observed rates held
    (replays in proportion); ``None`` beyond :data:`MAX_PROJECTED_SAMPLES`."""
    rate = e.effective_passed / e.n
    noise_rate = e.effective_noise_passed / e.noise_n if e.noise_n else 0.0

    def meets(n: int) -> bool:
        noise_n = round(e.noise_n * n / e.n)
        quality, inferiority = _criteria_from(
            math.floor(rate * n), n, math.floor(noise_rate * noise_n), noise_n, p)
        return quality.met and inferiority.met

    total = _first(meets, e.n)
    return None if total is None else max(total - e.n, 1)


def _first(meets: Callable[[int], bool], start: int) -> int | None:
    low, high = start, start * 2
    while not meets(high):
        if high >= MAX_PROJECTED_SAMPLES:
            return None
        low, high = high, min(high * 2, MAX_PROJECTED_SAMPLES)
    while high - low > max(1, low // 100):  # about 1% is close enough for a projection
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle
    return high
