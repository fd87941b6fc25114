"""How far a scorer's "pass" agrees with labels: the arithmetic of ``shadowroute calibrate``.

    items = [LabelledScore(value=0.92, passed=True, label=True), ...]
    agreement = scorer_agreement(items, threshold=0.8)
    agreement.configured.kappa, agreement.best.threshold, agreement.sweep

Every function here is pure. A *label* says whether the candidate's answer is acceptable; the
scorer *passes* an output when its stored ``passed`` is true (the scorer as configured) or, in
the threshold sweep, when its stored value is at or above the threshold (a score without a
value counts as 1 when it passed, 0 when it failed). "Pass" is the positive class::

                        label acceptable   label not acceptable
    scorer passes             tp                  fp
    scorer fails              fn                  tn

    precision   = tp / (tp + fp)     of the outputs the scorer passed, the share that are good
    recall      = tp / (tp + fn)     of the good outputs, the share the scorer passed
    specificity = tn / (tn + fp)     of the bad outputs, the share the scorer failed
    accuracy    = (tp + tn) / n
    kappa       = (p_o - p_e) / (1 - p_e),   p_o = accuracy,
                  p_e = ((tp + fp)(tp + fn) + (fn + tn)(fp + tn)) / n^2

A rate is ``None`` when its denominator is 0; kappa is ``None`` when ``n = 0`` or ``p_e = 1``
(scorer and labels both said one and the same thing every time), exactly as
:func:`.calibration.cohens_kappa` computes it from label pairs. With labels of one class only,
kappa is 0 or ``None`` whatever the scorer does: such labels cannot measure agreement, and
:attr:`Metrics.informative` is false (the report does not flag a scorer on them).

The sweep tries every distinct stored value as a threshold (each possible split of the
outputs) and the configured threshold; the *best* threshold is the one with the highest kappa
(:data:`CRITERION`), ties broken by accuracy, then by closeness to the configured threshold
(so a configured threshold that splits the outputs as well as any is the best), then the
lower threshold.
:func:`shown_thresholds` picks the few thresholds a table shows.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "CRITERION",
    "MIN_KAPPA",
    "LabelledScore",
    "Metrics",
    "ScorerAgreement",
    "metrics",
    "scorer_agreement",
    "shown_thresholds",
    "sweep",
]

CRITERION = "max kappa"
"""How the best threshold is chosen (stored with every calibration)."""
MIN_KAPPA = 0.4
"""Below this kappa against labels a scorer's verdicts are flagged (Landis and Koch: up to 0.4
is "fair" agreement at best; 0.41-0.60 "moderate")."""
_GRID = tuple(i / 10 for i in range(11))
"""Thresholds a table shows when the stored values are too many to list."""
_MAX_LISTED = 12


@dataclass(frozen=True, slots=True)
class LabelledScore:
    """One labelled output and one scorer's stored score of it."""

    value: float | None
    passed: bool
    label: bool
    """The answer is acceptable."""

    @property
    def level(self) -> float:
        """The value the sweep compares with a threshold (1/0 by ``passed`` without a value)."""
        if self.value is None or not math.isfinite(self.value):
            return 1.0 if self.passed else 0.0
        return float(self.value)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Agreement of "the scorer passes" with the labels, at one threshold."""

    threshold: float | None
    """``None``: the scorer as configured, read from its stored ``passed``."""
    n: int
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    specificity: float | None
    accuracy: float | None
    kappa: float | None

    @property
    def passes(self) -> int:
        return self.tp + self.fp

    @property
    def informative(self) -> bool:
        """The labels hold both classes: kappa says something about the scorer."""
        return self.tp + self.fn > 0 and self.fp + self.tn > 0

    @property
    def youden(self) -> float | None:
        """Youden's J = recall + specificity - 1 (shown in the stored sweep)."""
        if self.recall is None or self.specificity is None:
            return None
        return self.recall + self.specificity - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "youden": self.youden}


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def metrics(tp: int, fp: int, fn: int, tn: int, threshold: float | None = None) -> Metrics:
    """The rates of a 2x2 table (see the module docstring)."""
    n = tp + fp + fn + tn
    kappa = None
    if n:
        observed = (tp + tn) / n
        expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
        if not math.isclose(expected, 1.0):
            kappa = (observed - expected) / (1.0 - expected)
    return Metrics(
        threshold=threshold, n=n, tp=tp, fp=fp, fn=fn, tn=tn,
        precision=_ratio(tp, tp + fp), recall=_ratio(tp, tp + fn),
        specificity=_ratio(tn, tn + fp), accuracy=_ratio(tp + tn, n), kappa=kappa,
    )


def _count(pairs: Iterable[tuple[bool, bool]], threshold: float | None = None) -> Metrics:
    """Metrics of (scorer passes, label) pairs."""
    tp = fp = fn = tn = 0
    for passes, label in pairs:
        if passes:
            tp, fp = (tp + 1, fp) if label else (tp, fp + 1)
        else:
            fn, tn = (fn + 1, tn) if label else (fn, tn + 1)
    return metrics(tp, fp, fn, tn, threshold)


class _Sorted:
    """The items sorted by level, with prefix counts of acceptable labels: the metrics at any
    threshold in ``O(log n)``."""

    def __init__(self, items: Sequence[LabelledScore]) -> None:
        ordered = sorted(items, key=lambda item: item.level)
        self.levels = [item.level for item in ordered]
        self.good_before = [0]
        for item in ordered:
            self.good_before.append(self.good_before[-1] + item.label)

    def at(self, threshold: float) -> Metrics:
        n = len(self.levels)
        first = bisect.bisect_left(self.levels, threshold)  # levels[first:] >= threshold pass
        good = self.good_before[-1]
        tp = good - self.good_before[first]
        fp = (n - first) - tp
        fn = good - tp
        return metrics(tp, fp, fn, n - good - fp, threshold)


def sweep(items: Sequence[LabelledScore], thresholds: Iterable[float]) -> list[Metrics]:
    """The metrics of "level >= t" for each threshold ``t`` (ascending, duplicates dropped)."""
    table = _Sorted(items)
    return [table.at(t) for t in sorted(set(thresholds))]


def _best(candidates: Sequence[Metrics], configured: float | None) -> Metrics | None:
    """The highest kappa; ties: higher accuracy, closer to ``configured``, lower threshold."""
    scored = [m for m in candidates if m.kappa is not None]
    if not scored:
        return None

    def rank(m: Metrics) -> tuple[float, float, float, float]:
        assert m.kappa is not None and m.threshold is not None
        distance = abs(m.threshold - configured) if configured is not None else 0.0
        return (-round(m.kappa, 12), -round(m.accuracy or 0.0, 12), distance, m.threshold)

    return min(scored, key=rank)


def shown_thresholds(levels: Iterable[float], *extra: float | None) -> list[float]:
    """The thresholds a table shows: every distinct stored level when there are at most a
    dozen, else 0, 0.1, ..., 1; plus ``extra`` (the configured and the best threshold)."""
    distinct = sorted(set(levels))
    chosen = set(distinct) if len(distinct) <= _MAX_LISTED else set(_GRID)
    chosen.update(t for t in extra if t is not None)
    return sorted(chosen)


@dataclass(frozen=True, slots=True)
class ScorerAgreement:
    """One scorer against the labels: as configured, over the sweep, and at its best."""

    threshold: float | None
    """The configured threshold (``None`` when the scorer has none)."""
    configured: Metrics
    """From the stored ``passed``: what the verdicts use."""
    sweep: list[Metrics]
    """At the :func:`shown_thresholds` (from the stored values)."""
    best: Metrics | None
    """The best threshold over every distinct stored value (:data:`CRITERION`)."""

    @property
    def n(self) -> int:
        return self.configured.n

    @property
    def low(self) -> bool:
        """Kappa as configured is below :data:`MIN_KAPPA` on labels of both classes."""
        kappa = self.configured.kappa
        return self.configured.informative and kappa is not None and kappa < MIN_KAPPA


def scorer_agreement(
    items: Sequence[LabelledScore], threshold: float | None = None
) -> ScorerAgreement:
    """How ``items`` (one scorer's scores of labelled outputs) agree with their labels."""
    configured = _count(((item.passed, item.label) for item in items), None)
    table = _Sorted(items)
    distinct = sorted(set(table.levels))
    tried = distinct if threshold is None else sorted({*distinct, threshold})
    best = _best([table.at(t) for t in tried], threshold) if items else None
    shown = shown_thresholds(distinct, threshold, best.threshold if best else None)
    return ScorerAgreement(threshold, configured, [table.at(t) for t in shown] if items else [],
                           best)
