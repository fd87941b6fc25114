"""``exact`` / ``label``: normalised exact match, optionally within a label set; answers that
call tools match when they make the same calls with equal arguments (:mod:`.tools`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...formats.chat import parse_answer
from .base import (
    _SETTINGS_VERSION,
    ScoreResult,
    _check_threshold,
    _not_applicable,
    _truncate,
    normalize_label,
)
from .tools import compare_calls, same_json

__all__ = ["ExactScorer"]


class ExactScorer:
    """Normalised exact match of the candidate against the primary (see :func:`normalize_label`).

    With ``labels``, a candidate outside the label set fails (``unknown_label``) even if it equals
    the primary; a primary outside the set is reported (``primary_unknown_label``) but does not
    change the candidate's result. Not applicable when there is no primary output.
    """

    __slots__ = ("_case_sensitive", "_labels", "_threshold", "name")
    hard = False

    def __init__(
        self,
        *,
        name: str = "exact",
        labels: Sequence[str] | None = None,
        case_sensitive: bool = False,
        threshold: float = 1.0,
    ) -> None:
        if name not in ("exact", "label"):
            raise ValueError(f"exact scorer name must be 'exact' or 'label', got {name!r}")
        self.name = name
        self._threshold = _check_threshold(threshold)
        self._case_sensitive = bool(case_sensitive)
        self._labels: frozenset[str] | None = None
        if labels is not None:
            if isinstance(labels, str) or not all(isinstance(x, str) for x in labels):
                raise ValueError(f"labels must be a list of strings, got {labels!r}")
            normalized = frozenset(
                normalize_label(x, case_sensitive=case_sensitive) for x in labels
            )
            if not normalized or "" in normalized:
                raise ValueError("labels must be a non-empty list of non-empty strings")
            self._labels = normalized

    def settings(self) -> dict[str, Any]:
        return {
            "threshold": self._threshold,
            "labels": sorted(self._labels) if self._labels is not None else None,
            "case_sensitive": self._case_sensitive,
            "version": _SETTINGS_VERSION,
        }

    def score(self, primary: str | None, candidate: str) -> ScoreResult:
        if primary is None:
            return _not_applicable()
        p_answer, c_answer = parse_answer(primary), parse_answer(candidate)
        if p_answer.tool_calls or c_answer.tool_calls:
            same = lambda a, b: 1.0 if same_json(a, b) else 0.0  # noqa: E731
            return compare_calls(p_answer, c_answer, same, 1.0)  # calls are actions: exact
        p = normalize_label(primary, case_sensitive=self._case_sensitive)
        c = normalize_label(candidate, case_sensitive=self._case_sensitive)
        match = p == c
        value = 1.0 if match else 0.0
        details: dict[str, Any] = {
            "primary": _truncate(p),
            "candidate": _truncate(c),
            "match": match,
        }
        if self._labels is not None:
            details["unknown_label"] = c not in self._labels
            details["primary_unknown_label"] = p not in self._labels
            if details["unknown_label"]:
                value = 0.0
        return ScoreResult(value, value >= self._threshold, details)
