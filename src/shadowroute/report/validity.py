"""The report's scorer validity: which scorer decided each verdict, and how far each scorer of a
task type can be trusted against labels (``shadowroute calibrate``).

Per task type, one :class:`ScorerValidity` per current scorer: the failing outputs it failed
itself (a failed call, or a judge score failed because a hard scorer failed first, is not the
scorer's own failure: see :func:`shadowroute.store.queries.validity.scorer_failures`), how many
of those it alone failed, and its latest calibration at its *current* version (kappa,
precision, recall, n), else "no labels yet". Per candidate: the scorer that *decided* its
verdict (the one that failed the most of its failing outputs) and the scorers the verdict
*rests on* (every scorer that passed or failed one of its outputs: an output passes only when
each of them passes). A verdict resting on a scorer whose kappa against labels is below
:data:`~shadowroute.scoring.validity.MIN_KAPPA` (on labels of both classes) is flagged:
``low_kappa`` on the candidate, a warning on its task type, and a line in the overview.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..scoring.validity import MIN_KAPPA

__all__ = ["ScorerValidity", "apply_validity", "describe_calibration", "flagged_verdicts"]

Failures = Mapping[tuple[str, str], Mapping[str, Mapping[str, int]]]
"""(task, model) -> scorer -> ``failed`` / ``sole`` (see the module docstring)."""
Calibrations = Mapping[tuple[str, str], Mapping[str, Any]]
"""(task, scorer) -> its newest stored calibration (current version first)."""


@dataclass
class ScorerValidity:
    """One current scorer of a task type, as the report shows it."""

    scorer: str
    version: str
    failed: int
    """Failing outputs (every candidate of the task type) this scorer failed itself."""
    sole: int
    """Of them, the outputs no other scorer failed."""
    calibrated: bool
    """A calibration of this version is stored."""
    kappa: float | None
    precision: float | None
    recall: float | None
    accuracy: float | None
    n: int | None
    threshold: float | None
    best_threshold: float | None
    best_kappa: float | None
    label_source: str | None
    calibrated_at: datetime | None
    stale_version: str | None
    """A calibration is stored only for this older version of the scorer (its settings or code
    changed since): it does not count."""
    low: bool
    """Calibrated, labels of both classes, and kappa below ``MIN_KAPPA``."""
    summary: str
    """"kappa 0.62, precision 91.4%, recall 88.0%, n 120 (labels file, 2026-12-05)", or
    "no labels yet"."""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def describe_calibration(
    scorer: str, version: str, row: Mapping[str, Any] | None, failed: int = 0, sole: int = 0,
) -> ScorerValidity:
    """A :class:`ScorerValidity` from the scorer's newest stored calibration ``row`` (a
    ``scorer_calibrations`` row, or ``None``)."""
    current = row is not None and row["scorer_version"] == version
    if not current:
        stale = row["scorer_version"] if row is not None else None
        summary = "no labels yet"
        if row is not None:
            summary += (f" for this version (calibrated {row['created_at']:%Y-%m-%d} at version "
                        f"{stale}: its settings or code changed since)")
        return ScorerValidity(scorer, version, failed, sole, False, None, None, None, None, None,
                              None, None, None, None, None, stale, False, summary)
    assert row is not None
    kappa = row.get("kappa")
    details = row.get("details") or {}
    informative = bool(details.get("informative", True))
    low = informative and kappa is not None and kappa < MIN_KAPPA
    kappa_text = "–" if kappa is None else f"{kappa:.2f}"
    source = "labels file" if row["label_source"] == "file" else "recorded outcomes"
    summary = (f"kappa {kappa_text}, precision {_pct(row.get('precision'))}, recall "
               f"{_pct(row.get('recall'))}, n {row['n']:,} ({source}, "
               f"{row['created_at']:%Y-%m-%d})")
    if not informative:
        summary += "; labels of one class only: kappa cannot measure agreement"
    return ScorerValidity(
        scorer, version, failed, sole, True, kappa, row.get("precision"), row.get("recall"),
        row.get("accuracy"), row["n"], row.get("threshold"), row.get("best_threshold"),
        row.get("best_kappa"), row["label_source"], row["created_at"], None, low, summary)


def apply_validity(
    task: Any, keys: list[tuple[str, str]], failures: Failures, calibrations: Calibrations,
) -> None:
    """Fill in a :class:`~shadowroute.report.build.TaskResult`'s ``validity``, ``decided_by``
    and ``validity_warning``, and each candidate's ``decided_by``, ``failures_by_scorer``,
    ``low_kappa`` and ``low_kappa_scorers``."""
    totals: dict[str, dict[str, int]] = {}
    for c in task.candidates:
        mine = failures.get((task.task, c.model), {})
        for scorer, counts in mine.items():
            total = totals.setdefault(scorer, {"failed": 0, "sole": 0})
            total["failed"] += counts["failed"]
            total["sole"] += counts["sole"]
    order = {name: i for i, (name, _) in enumerate(keys)}
    task.validity = [
        describe_calibration(name, version, calibrations.get((task.task, name)),
                             **totals.get(name, {"failed": 0, "sole": 0}))
        for name, version in keys
    ]
    low = {v.scorer: v for v in task.validity if v.low}
    task.decided_by = _decider({s: t["failed"] for s, t in totals.items()}, order)
    flagged = []
    for c in task.candidates:
        mine = failures.get((task.task, c.model), {})
        c.failures_by_scorer = {s: mine[s]["failed"] for s in sorted(mine, key=order.get)
                                if s in order}
        c.decided_by = _decider(c.failures_by_scorer, order)
        rests_on = [s.name for s in c.scorers if s.passed + s.failed > 0]
        c.low_kappa_scorers = [name for name in sorted(rests_on, key=order.get) if name in low]
        c.low_kappa = bool(c.low_kappa_scorers)
        if c.low_kappa:
            flagged.append(c)
    if flagged:
        names = sorted({s for c in flagged for s in c.low_kappa_scorers}, key=order.get)
        scorers = ", ".join(f"{s} (kappa {low[s].kappa:.2f})" for s in names)
        task.validity_warning = (
            f"the verdicts on {', '.join(c.model for c in flagged)} rest on {scorers}, which "
            f"agree{'s' if len(names) == 1 else ''} with labels below kappa {MIN_KAPPA}: treat "
            f"them with care; see shadowroute calibrate {task.task}")


def _decider(failed: Mapping[str, int], order: Mapping[str, int]) -> str | None:
    """The scorer with the most failing outputs (ties: the plan's order); ``None`` if none."""
    ranked = [(-n, order.get(name, len(order)), name) for name, n in failed.items() if n > 0]
    return min(ranked)[2] if ranked else None


def flagged_verdicts(tasks: list[Any]) -> list[dict[str, Any]]:
    """The overview's list of verdicts resting on a low-kappa scorer."""
    return [{"task": t.task, "model": c.model, "verdict": c.verdict,
             "scorers": list(c.low_kappa_scorers)}
            for t in tasks for c in t.candidates if c.low_kappa]
