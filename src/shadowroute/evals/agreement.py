"""How far a scorer's "pass" agrees with the truth: a 2x2 table and its rates (pure).

"Pass" is the positive class; the truth says whether the candidate's answer is as good as the
primary's::

                       truth: as good     truth: worse
    scorer passes            tp                fp
    scorer fails             fn                tn

    pass rate = (tp + fp) / n       how often the scorer passes (what the report would count)
    precision = tp / (tp + fp)      of the pairs it passed, the share truly as good: a scorer
                                    with low precision passes bad answers, and PROMOTEs wrongly
    recall    = tp / (tp + fn)      of the pairs truly as good, the share it passed
    accuracy  = (tp + tn) / n
    kappa     = (p_o - p_e) / (1 - p_e),   p_o = accuracy,
                p_e = ((tp + fp)(tp + fn) + (fn + tn)(fp + tn)) / n^2

Cohen's kappa is agreement corrected for chance: 0 is what a scorer passing at random (at its
pass rate) would get, 1 perfect agreement, below 0 worse than chance. A rate is ``None`` when
its denominator is 0, kappa when ``n = 0`` or ``p_e = 1``. Pairs a scorer does not apply to
(``passed`` is ``None``) are counted apart (``not_applicable``) and left out of ``n``, as the
report leaves "ignored" outputs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..scoring.validity import Metrics, metrics

__all__ = ["HEADER", "Agreement", "aligned"]


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


@dataclass(slots=True)
class Agreement:
    """One scorer (as configured) on one source of pairs with a known truth."""

    source: str
    scorer: str
    """The row's label: ``similarity ratio >= 0.8``, ``extract``, ``default: ...``."""
    settings: list[dict[str, Any]]
    """``{"name", "version", "settings"}`` of each scorer the row runs (the default may be
    several: a pair passes when every one that applies passes)."""
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    not_applicable: int = 0

    def add(self, passed: bool | None, truth: bool) -> None:
        """Count one pair: the scorer's ``passed`` (``None``: does not apply) and the truth."""
        if passed is None:
            self.not_applicable += 1
        elif passed:
            if truth:
                self.tp += 1
            else:
                self.fp += 1
        elif truth:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def pass_rate(self) -> float | None:
        return _ratio(self.tp + self.fp, self.n)

    @property
    def metrics(self) -> Metrics:
        """Precision, recall, accuracy and kappa of the table (:func:`scoring.validity.metrics`,
        the arithmetic ``shadowroute calibrate`` uses)."""
        return metrics(self.tp, self.fp, self.fn, self.tn)

    @property
    def precision(self) -> float | None:
        return self.metrics.precision

    @property
    def recall(self) -> float | None:
        return self.metrics.recall

    @property
    def accuracy(self) -> float | None:
        return self.metrics.accuracy

    @property
    def kappa(self) -> float | None:
        return self.metrics.kappa

    def cells(self) -> tuple[str, ...]:
        """The row as the table prints it."""
        return (self.source, self.scorer, f"{self.n:,}", f"{self.not_applicable:,}",
                _pct(self.pass_rate), _pct(self.precision), _pct(self.recall),
                _pct(self.accuracy), "-" if self.kappa is None else f"{self.kappa:.2f}")

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "scorer": self.scorer, "scorers": self.settings,
                "n": self.n, "not_applicable": self.not_applicable, "tp": self.tp,
                "fp": self.fp, "fn": self.fn, "tn": self.tn, "pass_rate": self.pass_rate,
                "precision": self.precision, "recall": self.recall, "accuracy": self.accuracy,
                "kappa": self.kappa}


HEADER = ("source", "scorer", "n", "n/a", "pass rate", "precision", "recall", "accuracy",
          "kappa")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def aligned(table: list[tuple[str, ...]]) -> list[str]:
    """Rows of cells as text columns two spaces apart (the last column is not padded)."""
    if not table:
        return []
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    return ["  ".join([*(row[i].ljust(w) for i, w in enumerate(widths)), row[-1]]).rstrip()
            for row in table]
