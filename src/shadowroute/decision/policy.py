"""What a decision is asked (:class:`Policy`) and what it is given (:class:`Evidence`).

Both are plain frozen dataclasses of numbers: the report builds them from ``[decision]`` and
from stored counts; a simulation builds thousands of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..config import Config

__all__ = ["Evidence", "Policy", "Verdict"]


class Verdict(StrEnum):
    PROMOTE = "PROMOTE"
    HOLD = "HOLD"
    NEED_MORE_DATA = "NEED MORE DATA"
    CONFIG_PROBLEM = "CONFIG PROBLEM"


@dataclass(frozen=True, slots=True)
class Policy:
    """The bar and the error budget of one task type x candidate.

    ``confidence`` is the *family-wise* confidence of the report: with ``family_size`` (K)
    the number of decisions in the report (task types x candidates), each decision runs at
    ``level = (1 - confidence) / K``; as every decision's evidence is an always-valid
    e-process, the chance that the report *ever* shows a wrong PROMOTE, for any of its K
    decisions, over unlimited nightly re-runs on growing data, is at most ``1 - confidence``
    (Bonferroni over time-uniform tests needs no correction for the looks)."""

    required_quality: float = 0.95
    margin: float = 0.02
    confidence: float = 0.95
    min_samples: int = 100
    bound: str = "wilson"
    """The fixed-sample bound shown beside the always-valid one (and used when not
    ``sequential``)."""
    sequential: bool = True
    config_problem_rate: float = 0.1
    family_size: int = 1
    """K: the decisions the report makes (task types x candidates); the report passes it."""
    unscored_fail: bool = True
    """Outputs on which no scorer applied count as failures for the quality criterion
    (``[decision] unscored_count_as_failures``)."""
    max_judge_flip_rate: float = 0.1
    """Above this share of verdicts that flip when the two answers swap places, or above
    ``1 - required_quality`` when lower (shown by a lower bound), the judge gives no verdict:
    CONFIG PROBLEM, calibrate or change it."""
    horizon_days: int = 365
    """How far the NEED MORE DATA projection looks ahead."""
    drift_false_alarm: float = 0.01
    """Chance that the drift detector ever flags a promoted model that still meets the bar,
    within ``drift_horizon_days`` (``[routes] drift_false_alarm``)."""
    drift_horizon_days: int = 365

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be strictly between 0 and 1: {self.confidence}")
        if self.family_size < 1:
            raise ValueError(f"family_size must be at least 1: {self.family_size}")
        if not 0.0 < self.drift_false_alarm < 1.0 or self.drift_horizon_days < 1:
            raise ValueError("drift_false_alarm must be in (0, 1), drift_horizon_days >= 1")

    @property
    def alpha(self) -> float:
        """The family-wise error budget, ``1 - confidence``."""
        return 1.0 - self.confidence

    @property
    def level(self) -> float:
        """The per-decision error budget: ``alpha / family_size``."""
        return self.alpha / self.family_size

    @classmethod
    def for_task(cls, config: Config, task: str, *, family_size: int = 1) -> Policy:
        """``[decision]`` and ``[routes]`` with the task type's own overrides; ``family_size``
        is the number of decisions in the report."""
        d, t, r = config.decision, config.task(task), config.routes
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
            family_size=family_size,
            unscored_fail=d.unscored_count_as_failures,
            max_judge_flip_rate=d.max_judge_flip_rate,
            drift_false_alarm=r.drift_false_alarm,
            drift_horizon_days=r.drift_horizon_days,
        )


@dataclass(frozen=True, slots=True)
class Evidence:
    """Counts for one task type x candidate: cumulative since the candidate started (the
    decision's guarantee holds for growing counts, not for a window that slides).

    A *pass* is an output on which every scorer that applies passed. New fields default to
    zero / ``None`` so that older callers keep working; what each changes is in its doc."""

    n: int
    """Counted outputs (at least one scorer applied)."""
    passed: int
    noise_n: int = 0
    """Counted ``primary@replay`` outputs of the task type (the noise floor)."""
    noise_passed: int = 0
    primary_checked: int = 0
    """Schema checks of the primary's own output (0 without a schema scorer)."""
    primary_invalid: int = 0
    samples_per_day: float | None = None
    """Counted outputs of this candidate per day at the current sample rate and traffic."""
    noise_per_day: float | None = None
    """Counted replays per day (``None``: they keep their share ``noise_n / n``)."""
    unscored: int = 0
    """Scored outputs on which no scorer applied (the report's ``ignored``): failures for the
    quality criterion unless ``Policy.unscored_fail`` is off; never in non-inferiority."""
    judged: int = 0
    """Counted outputs the judge scored."""
    flipped: int = 0
    """Of ``judged``, those whose verdict flipped when the two answers swapped places."""
    flipped_passed: int = 0
    """Of ``flipped``, those counted in ``passed`` (a flip read as "same"). A flipped verdict
    is a failure: the decision moves them from passes to failures. 0 when ``passed`` already
    counts flips as failures."""
    noise_flipped_passed: int = 0
    """The same for the replays: flipped verdicts counted in ``noise_passed``."""
    pairs: int | None = None
    """Exchanges with both a counted output of this candidate and a counted replay
    (``None``: no paired counts, the unpaired test is used)."""
    pairs_both_failed: int = 0
    pairs_candidate_failed: int = 0
    """Candidate failed, replay passed (on the ``pairs`` exchanges)."""
    pairs_replay_failed: int = 0
    """Candidate passed, replay failed."""

    def __post_init__(self) -> None:
        ok = (0 <= self.passed <= self.n and 0 <= self.noise_passed <= self.noise_n
              and 0 <= self.primary_invalid <= self.primary_checked and self.unscored >= 0
              and 0 <= self.flipped <= self.judged
              and 0 <= self.flipped_passed <= min(self.flipped, self.passed)
              and 0 <= self.noise_flipped_passed <= self.noise_passed)
        if ok and self.pairs is not None:
            cells = (self.pairs_both_failed, self.pairs_candidate_failed, self.pairs_replay_failed)
            fails = self.n - self.effective_passed
            noise_fails = self.noise_n - self.effective_noise_passed
            ok = (min(cells) >= 0 and sum(cells) <= self.pairs <= min(self.n, self.noise_n)
                  and cells[0] + cells[1] <= fails and cells[0] + cells[2] <= noise_fails
                  and fails - cells[0] - cells[1] <= self.n - self.pairs
                  and noise_fails - cells[0] - cells[2] <= self.noise_n - self.pairs)
        if not ok:
            raise ValueError(f"inconsistent counts: {self!r}")

    @property
    def effective_passed(self) -> int:
        """Passes with every flipped judge verdict counted as a failure."""
        return self.passed - self.flipped_passed

    @property
    def effective_noise_passed(self) -> int:
        return self.noise_passed - self.noise_flipped_passed
