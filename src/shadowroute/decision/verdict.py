"""The verdict for one task type x candidate: a pure function of counts and a policy.

    decide(Evidence(n=400, passed=391, noise_n=100, noise_passed=98), Policy(...))

A candidate output *passes* when every scorer that applies to it passed (see the report's
method section). Two criteria, both at the policy's confidence:

* quality: the pass rate's lower bound reaches ``required_quality``;
* non-inferiority: the candidate's failure rate exceeds the primary's own noise floor (how
  often the primary, asked the same request again, fails the same scorers against its first
  answer) by at most ``margin``. The upper bound of the candidate's failure rate minus the lower
  bound of the noise floor must stay within the margin; each bound takes half of alpha (one
  bound takes all of it when there are no replays and the noise floor is taken as 0, the
  conservative choice).

With ``sequential`` on (the default) the bounds are always-valid confidence sequences, so the
verdict may be recomputed every night on growing data without raising the chance of a wrong
PROMOTE above alpha; the fixed-sample bound of the current look is reported beside it.
Verdicts: PROMOTE (both criteria met), HOLD (a criterion fails on the point estimate, or can
never be shown), NEED MORE DATA (below ``min_samples``, or the estimates pass but the bounds do
not yet: with how many more samples and days) and CONFIG PROBLEM (the primary fails its own
JSON schema too often for any comparison to mean anything).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ..config import Config
from .bounds import lower_bound, sequential_lower, sequential_upper, upper_bound

__all__ = ["Criterion", "Decision", "Evidence", "Policy", "Verdict", "decide"]

MIN_SCHEMA_CHECKS = 10
"""Schema checks of the primary needed before its failure rate can make a CONFIG PROBLEM."""
MAX_PROJECTED_SAMPLES = 10_000_000


class Verdict(StrEnum):
    PROMOTE = "PROMOTE"
    HOLD = "HOLD"
    NEED_MORE_DATA = "NEED MORE DATA"
    CONFIG_PROBLEM = "CONFIG PROBLEM"


@dataclass(frozen=True, slots=True)
class Policy:
    required_quality: float = 0.95
    margin: float = 0.02
    confidence: float = 0.95
    min_samples: int = 100
    bound: str = "wilson"
    sequential: bool = True
    config_problem_rate: float = 0.1

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @classmethod
    def for_task(cls, config: Config, task: str) -> Policy:
        """``[decision]`` with the task type's own overrides."""
        d, t = config.decision, config.task(task)
        return cls(
            required_quality=(
                t.required_quality if t.required_quality is not None else d.required_quality
            ),
            margin=t.margin if t.margin is not None else d.margin,
            confidence=d.confidence,
            min_samples=t.min_samples if t.min_samples is not None else d.min_samples,
            bound=d.bound,
            sequential=d.sequential,
            config_problem_rate=d.config_problem_rate,
        )


@dataclass(frozen=True, slots=True)
class Evidence:
    """Counts for one task type x candidate (scored outputs that count, ignored ones left out)."""

    n: int
    passed: int
    noise_n: int = 0
    """Scored ``primary@replay`` outputs of the task type."""
    noise_passed: int = 0
    primary_checked: int = 0
    """Schema checks of the primary's own output (0 without a schema scorer)."""
    primary_invalid: int = 0
    samples_per_day: float | None = None
    """Scored outputs of this candidate per day at the current sample rate and traffic."""

    def __post_init__(self) -> None:
        if not (0 <= self.passed <= self.n and 0 <= self.noise_passed <= self.noise_n):
            raise ValueError(f"inconsistent counts: {self!r}")


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    """``quality`` or ``non-inferiority``."""
    met: bool
    estimate: float
    """Pass rate (quality) or excess failure rate over the noise floor (non-inferiority)."""
    bound: float
    """What the verdict compares with the limit: the pass rate's lower bound, or the excess's
    upper bound."""
    limit: float
    """``required_quality`` or ``margin``."""

    detail: str = ""
    """The figures in words, for the verdict's reason."""

    @property
    def estimate_fails(self) -> bool:
        """The observed rate itself misses the limit (more data would not help)."""
        if self.name == "quality":
            return self.estimate < self.limit
        return self.estimate > self.limit


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str
    pass_rate: float | None = None
    lower_bound: float | None = None
    """Fixed-sample lower bound of the pass rate for this look (``[decision] bound``)."""
    sequential_lower: float | None = None
    """Always-valid lower bound of the pass rate (``None`` when ``sequential`` is off)."""
    noise_floor: float | None = None
    """The primary's failure rate against itself (``None`` without replays)."""
    criteria: tuple[Criterion, ...] = ()
    samples_needed: int | None = None
    """More scored outputs needed (NEED MORE DATA)."""
    days_needed: float | None = None
    """``samples_needed`` at the current rate of scored outputs per day."""


def _criteria(
    passed: int, n: int, noise_passed: int, noise_n: int, p: Policy
) -> tuple[Criterion, Criterion]:
    alpha = p.alpha
    rate = passed / n
    fixed = lower_bound(passed, n, p.confidence, p.bound)
    lower = sequential_lower(passed, n, alpha) if p.sequential else fixed
    met = lower >= p.required_quality
    quality = Criterion(
        "quality", met, rate, lower, p.required_quality,
        f"pass rate {rate:.1%}, lower bound {lower:.1%} {'>=' if met else '<'} required "
        f"{p.required_quality:.1%}",
    )

    failures, noise_failures = n - passed, noise_n - noise_passed
    noise = noise_failures / noise_n if noise_n else 0.0
    share = alpha / 2 if noise_n else alpha  # Bonferroni over the two bounds
    if p.sequential:
        upper = sequential_upper(failures, n, share)
        noise_lower = sequential_lower(noise_failures, noise_n, share) if noise_n else 0.0
    else:
        upper = upper_bound(failures, n, 1 - share, p.bound)
        noise_lower = lower_bound(noise_failures, noise_n, 1 - share, p.bound) if noise_n else 0.0
    excess = upper - noise_lower
    met = excess <= p.margin
    floor = f"the primary's noise floor {noise:.1%}" if noise_n else "a noise floor taken as 0"
    inferiority = Criterion(
        "non-inferiority", met, (1 - rate) - noise, excess, p.margin,
        f"fails {1 - rate:.1%} vs {floor}; the excess's upper bound {excess:+.1%} "
        f"{'<=' if met else '>'} margin {p.margin:.1%}",
    )
    return quality, inferiority


def _projected(e: Evidence, p: Policy) -> int | None:
    """About how many scored outputs in all would meet both criteria if the observed rates
    held (replays growing in proportion); ``None`` beyond :data:`MAX_PROJECTED_SAMPLES`."""
    rate = e.passed / e.n
    noise_rate = e.noise_passed / e.noise_n if e.noise_n else 0.0

    def meets(n: int) -> bool:
        noise_n = round(e.noise_n * n / e.n)
        quality, inferiority = _criteria(
            math.floor(rate * n), n, math.floor(noise_rate * noise_n), noise_n, p
        )
        return quality.met and inferiority.met

    return _first(meets, e.n)


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


def _days(samples: int, e: Evidence) -> float | None:
    if e.samples_per_day is None or e.samples_per_day <= 0:
        return None
    return samples / e.samples_per_day


def decide(e: Evidence, p: Policy, *, project: bool = True) -> Decision:
    """The verdict for one task type x candidate (see the module docstring).

    ``project=False`` skips estimating how many more samples an inconclusive case needs
    (simulations that only care about the verdict)."""
    if e.primary_checked >= MIN_SCHEMA_CHECKS:
        invalid = e.primary_invalid / e.primary_checked
        if invalid >= p.config_problem_rate:
            return Decision(
                Verdict.CONFIG_PROBLEM,
                f"the primary fails the task's JSON schema on {invalid:.0%} of checks "
                f"({e.primary_invalid:,} of {e.primary_checked:,}): fix the schema or the "
                "prompt before comparing candidates",
            )
    if e.n == 0:
        return Decision(Verdict.NEED_MORE_DATA, f"no scored outputs yet (need {p.min_samples:,})",
                        samples_needed=p.min_samples, days_needed=_days(p.min_samples, e))
    quality, inferiority = _criteria(e.passed, e.n, e.noise_passed, e.noise_n, p)
    fields = {
        "pass_rate": e.passed / e.n,
        "lower_bound": lower_bound(e.passed, e.n, p.confidence, p.bound),
        "sequential_lower": quality.bound if p.sequential else None,
        "noise_floor": (e.noise_n - e.noise_passed) / e.noise_n if e.noise_n else None,
        "criteria": (quality, inferiority),
    }
    if e.n < p.min_samples:
        needed = p.min_samples - e.n
        return Decision(
            Verdict.NEED_MORE_DATA,
            f"{e.n:,} scored outputs, fewer than the {p.min_samples:,} required",
            samples_needed=needed, days_needed=_days(needed, e), **fields,
        )
    if quality.met and inferiority.met:
        return Decision(Verdict.PROMOTE, f"{quality.detail}; {inferiority.detail}", **fields)
    failing = [c for c in (quality, inferiority) if c.estimate_fails]
    if failing:
        return Decision(Verdict.HOLD, "; ".join(f"{c.name}: {c.detail}" for c in failing),
                        **fields)
    total = _projected(e, p) if project else None
    unmet = "; ".join(f"{c.name}: {c.detail}" for c in (quality, inferiority) if not c.met)
    if total is None and not project:
        return Decision(Verdict.NEED_MORE_DATA, unmet, **fields)
    if total is None:
        return Decision(
            Verdict.HOLD,
            f"{unmet}; too close to the limit to show with fewer than "
            f"{MAX_PROJECTED_SAMPLES:,} samples",
            **fields,
        )
    needed = max(total - e.n, 1)
    return Decision(
        Verdict.NEED_MORE_DATA,
        f"{unmet}; the observed rates pass, the bounds do not yet",
        samples_needed=needed, days_needed=_days(needed, e), **fields,
    )
