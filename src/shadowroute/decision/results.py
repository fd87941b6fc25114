"""What a decision returns: its :class:`Decision`, with one :class:`Criterion` per criterion."""

from __future__ import annotations

from dataclasses import dataclass

from .policy import Verdict

__all__ = ["Criterion", "Decision"]


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    """``quality`` or ``non-inferiority``."""
    met: bool
    estimate: float
    """Pass rate (quality) or excess failure rate over the noise floor (non-inferiority)."""
    bound: float
    """What shows it met: the pass rate's lower bound, or the excess's upper bound."""
    limit: float
    """``required_quality`` or ``margin``."""
    detail: str = ""
    """The figures in words, for the verdict's reason."""
    refuted: bool = False
    """Shown to fail (more data would not help): the reason for a HOLD."""
    opposite: float | None = None
    """What shows it failed: the pass rate's upper bound, or the excess's lower bound."""

    @property
    def estimate_fails(self) -> bool:
        """The observed rate itself misses the limit (not a reason for HOLD on its own)."""
        if self.name == "quality":
            return self.estimate < self.limit
        return self.estimate > self.limit


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str
    pass_rate: float | None = None
    lower_bound: float | None = None
    """Fixed-sample lower bound of the pass rate for this look (``[decision] bound``, at
    ``1 - level``): for reference, not what decides."""
    sequential_lower: float | None = None
    """Always-valid lower bound of the pass rate (``None`` when ``sequential`` is off)."""
    noise_floor: float | None = None
    """The primary's failure rate against itself (``None`` without replays)."""
    criteria: tuple[Criterion, ...] = ()
    samples_needed: int | None = None
    """More counted outputs needed: NEED MORE DATA below ``min_samples``, or the projection's
    median."""
    days_needed: float | None = None
    """Days to a verdict: the projection's median (NEED MORE DATA)."""
    days_needed_80: float | None = None
    """80% of the projected paths reach a verdict by then."""
    verdict_chance: float | None = None
    """Share of projected paths with a verdict within ``Policy.horizon_days``."""
    promote_chance: float | None = None
    """Share of projected paths whose verdict is PROMOTE."""
    level: float | None = None
    """The per-decision error level: ``(1 - confidence) / family_size``."""
    family_size: int = 1
    method: str = ""
    """One line for the report's method section."""
    flip_rate: float | None = None
    """Share of the judge's verdicts that flipped with the order (``None``: nothing judged)."""
