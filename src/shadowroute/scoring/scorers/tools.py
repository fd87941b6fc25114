"""Tool calls compared as calls: by name, then by their parsed arguments.

A stored answer that called tools (see :func:`shadowroute.formats.chat.parse_answer`) is judged
on the calls it makes, not on its wording: Claude's "Let me look that up." before the same
calls as an OpenAI primary's bare calls is the same answer. Calls made in parallel have no
order, so the primary's calls are paired with the candidate's calls of the same name so that
their arguments agree best overall (each call used once: an assignment problem). The value is the sum of the matched calls'
argument scores over the larger number of calls, so a missing or an extra call costs as much
as a wrong one. An answer that called tools against one that did not scores 0.

Arguments are compared exactly, leaf by leaf (numbers by value, never a fuzzy string match):
a call is an action, and ``get_order("AA-12340")`` is not ``get_order("AA-11340")`` however
alike the strings look. So a pair passes only when every call matches
(:func:`argument_agreement` gives partial credit in the value, for the report).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...formats.chat import Answer
from .base import _MAX_ITEMS, ScoreResult

__all__ = ["argument_agreement", "compare_calls", "same_json"]

ArgumentScore = Callable[[Any, Any], float]
"""Agreement of two calls' arguments in [0, 1] (1: the same)."""


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values: ``1`` and ``1.0`` are equal, ``true`` and ``1`` are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def argument_agreement(primary: Any, candidate: Any) -> float:
    """The share of leaf paths (over both calls' arguments) whose values are equal JSON."""
    if same_json(primary, candidate):
        return 1.0
    a, b = _leaves(primary), _leaves(candidate)
    paths = a.keys() | b.keys()
    equal = sum(1 for path in paths if path in a and path in b and same_json(a[path], b[path]))
    return equal / len(paths) if paths else 0.0


def _leaves(value: Any, path: str = "$") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{path}.{key}"))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(_leaves(item, f"{path}[{i}]"))
        return out
    return {path: value}


def compare_calls(
    primary: Answer, candidate: Answer, score_arguments: ArgumentScore, threshold: float
) -> ScoreResult:
    """Score ``candidate``'s tool calls against ``primary``'s (at least one of them called
    tools). ``score_arguments`` says how far two calls' arguments agree."""
    p_calls: Sequence[dict[str, Any]] = primary.tool_calls or ()
    c_calls: Sequence[dict[str, Any]] = candidate.tool_calls or ()
    if not p_calls or not c_calls:
        details = {"mode": "tool_calls", "primary_calls": len(p_calls),
                   "candidate_calls": len(c_calls),
                   "reason": "one answer called tools, the other did not"}
        return ScoreResult(0.0, 0.0 >= threshold, details)
    # The pairing of same-named calls that agrees best overall (an assignment problem).
    import numpy as np  # imported on first use: a few hundred ms that most runs never need
    from scipy.optimize import linear_sum_assignment

    scores = np.full((len(p_calls), len(c_calls)), -1.0)
    for i, call in enumerate(p_calls):
        for j, other in enumerate(c_calls):
            if other["name"] == call["name"]:
                scores[i, j] = score_arguments(call["arguments"], other["arguments"])
    rows, cols = linear_sum_assignment(scores, maximize=True)
    paired = {int(i): int(j) for i, j in zip(rows, cols, strict=True) if scores[i, j] >= 0}
    unmatched = sorted(set(range(len(c_calls))) - set(paired.values()))
    total = 0.0
    matching = 0
    missing: list[str] = []
    differing: list[dict[str, Any]] = []
    for i, call in enumerate(p_calls):
        if i not in paired:
            if len(missing) < _MAX_ITEMS:
                missing.append(str(call["name"]))
            continue
        score = float(scores[i, paired[i]])
        total += score
        if score >= 1.0:
            matching += 1
        elif len(differing) < _MAX_ITEMS:
            differing.append({"name": call["name"], "score": round(score, 6)})
    extra = [str(c_calls[j]["name"]) for j in unmatched][:_MAX_ITEMS]
    value = round(total / max(len(p_calls), len(c_calls)), 6)
    details = {"mode": "tool_calls", "calls": len(p_calls), "candidate_calls": len(c_calls),
               "matching": matching, "missing": missing, "extra": extra,
               "differing": differing}
    if primary.content != candidate.content:
        details["text_ignored"] = True  # the words around the calls are not the answer
    return ScoreResult(value, value >= threshold, details)
