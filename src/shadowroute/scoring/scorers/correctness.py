"""The ``correctness`` scorer: compare *recorded* outcomes, not texts.

Some traffic comes with ground truth: a test suite ran on the answer, a grader or a person
graded it, an offline benchmark marked it right or wrong. The exchange's ``metadata`` then
carries one outcome per model under ``"outcomes"``::

    metadata = {
        "outcomes": {
            "gpt-4-1106-preview": {"correct": true},    # the exchange's primary_model
            "mixtral":            {"correct": false},   # a candidate output's model
        }
    }

An outcome is ``{"correct": bool}`` or ``{"grade": number}`` (a bare ``true`` / ``false`` or a
bare number is read the same way). A model is found under the name stored with its output (the
``[models]`` key for a candidate, ``primary_model`` for the primary), or under the upstream id
that a candidate's ``[models.X] model`` declares (so data keyed by provider ids needs no
renaming).

Pass rules ("as good as the primary"):

* correct / wrong: the candidate passes when it is correct, or when the primary is wrong too.
  Value 1.0 when it passes, else 0.0.
* grades: the candidate passes when ``candidate >= primary - tolerance`` (``tolerance``, default
  0). Value ``min(1, candidate / primary)`` (1.0 when the primary's grade is 0 or less).

The scorer does not apply (``passed`` is ``None``, the "ignored" bucket) when the outcome of the
candidate or of the primary is missing, unreadable, or of a different kind than the other's.
The scores go through the normal scoring job: the runner hands context-aware scorers (those
with ``uses_context = True``) a :class:`ScoreContext` with the exchange's metadata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import ScoreResult

__all__ = ["OUTCOMES_KEY", "CorrectnessScorer", "ScoreContext", "read_outcome"]

OUTCOMES_KEY = "outcomes"
"""The ``metadata`` key that holds the per-model outcomes."""

_SETTINGS_VERSION = 1


@dataclass(frozen=True, slots=True)
class ScoreContext:
    """What a context-aware scorer sees besides the two texts: whose output it is, and the
    exchange's recorded metadata."""

    model: str
    """The candidate output's model (as stored: the ``[models]`` key)."""
    primary_model: str
    task_type: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


def read_outcome(value: Any) -> tuple[str, float | bool] | None:
    """``("correct", bool)`` or ``("grade", float)`` from a recorded outcome, ``None`` when it
    is neither."""
    if isinstance(value, Mapping):
        if isinstance(value.get("correct"), bool):
            return "correct", value["correct"]
        value = value.get("grade")
        if isinstance(value, bool):
            return None
    if isinstance(value, bool):
        return "correct", value
    if isinstance(value, int | float) and math.isfinite(value):
        return "grade", float(value)
    return None


def _not_applicable(reason: str, **details: Any) -> ScoreResult:
    return ScoreResult(None, None, {"skipped": reason, **details})


class CorrectnessScorer:
    """Pass when the candidate's recorded outcome is as good as the primary's (module doc)."""

    __slots__ = ("_aliases", "_tolerance")
    name = "correctness"
    hard = False
    uses_context = True

    def __init__(
        self, *, tolerance: float = 0.0, aliases: Mapping[str, str] | None = None
    ) -> None:
        if not (isinstance(tolerance, int | float) and math.isfinite(tolerance) and tolerance >= 0):
            raise ValueError(f"tolerance must be a number >= 0, got {tolerance!r}")
        self._tolerance = float(tolerance)
        self._aliases = dict(sorted((aliases or {}).items()))
        """Model name -> the other name its outcome may be recorded under (upstream id)."""

    def settings(self) -> dict[str, Any]:
        return {"tolerance": self._tolerance, "aliases": self._aliases,
                "version": _SETTINGS_VERSION}

    def _outcome(self, outcomes: Mapping[str, Any], model: str) -> tuple[str | None, Any]:
        """(the name the outcome was found under, the outcome) for ``model``."""
        for name in (model, self._aliases.get(model)):
            if name is not None and name in outcomes:
                return name, outcomes[name]
        return None, None

    def score(
        self, primary: str | None, candidate: str, context: ScoreContext | None = None
    ) -> ScoreResult:
        """``primary`` and ``candidate`` texts are not compared: only the recorded outcomes."""
        if context is None:
            return _not_applicable("no exchange metadata")
        outcomes = context.metadata.get(OUTCOMES_KEY) if context.metadata else None
        if not isinstance(outcomes, Mapping):
            return _not_applicable("no recorded outcomes")
        c_name, c_raw = self._outcome(outcomes, context.model)
        p_name, p_raw = self._outcome(outcomes, context.primary_model)
        if c_name is None:
            return _not_applicable(f"no recorded outcome for the candidate {context.model!r}")
        if p_name is None:
            return _not_applicable(
                f"no recorded outcome for the primary {context.primary_model!r}"
            )
        c, p = read_outcome(c_raw), read_outcome(p_raw)
        if c is None or p is None:
            which = "candidate" if c is None else "primary"
            return _not_applicable(f"the {which}'s outcome is neither correct/wrong nor a grade")
        if c[0] != p[0]:
            return _not_applicable(f"outcomes of different kinds ({c[0]} vs {p[0]})")
        details: dict[str, Any] = {"kind": c[0], "candidate": c[1], "primary": p[1]}
        if c[0] == "correct":
            passed = bool(c[1]) or not p[1]
            return ScoreResult(1.0 if passed else 0.0, passed, details)
        c_grade, p_grade = float(c[1]), float(p[1])
        passed = c_grade >= p_grade - self._tolerance
        value = 1.0 if p_grade <= 0 else max(0.0, min(1.0, c_grade / p_grade))
        details["tolerance"] = self._tolerance
        return ScoreResult(round(value, 6), passed, details)
