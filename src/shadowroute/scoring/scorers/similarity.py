"""``similarity``: rapidfuzz text similarity, or field by field when both outputs are JSON;
answers that call tools are compared call by call, and pass only when every call matches
exactly (:mod:`.tools`: a fuzzy match of an argument would pass a wrong action).

The default method is ``ratio`` (normalised Indel similarity over the whole text): it is
symmetric and order-sensitive, and it cannot exceed ``2 * min(len) / (len_a + len_b)``, so an
answer that is a few words of the primary's (``'Paris'`` against ``'The capital of France is
not Paris; it is Lyon.'``) scores low. ``token_set_ratio`` (the default before) scores any
subset of the other side's words 1.0, and ``token_sort_ratio`` scores "Lyon, not Paris" and
"Paris, not Lyon" 1.0; both remain available. The choice was measured on real outputs
(GPT-4 vs Mixtral on GSM8K, see the README's Scoring section): at 0.8, ``ratio`` passes 3.9% of
the pairs with precision 0.92, ``token_set_ratio`` 81.6% with precision 0.75 (base rate 0.71).

A JSON object or array is compared only with JSON: when one output is JSON (see
:func:`parse_json_output`) and the other is not, the candidate fails (value 0.0,
``mode: "json_vs_text"`` and a ``reason``), however alike the texts look: ``refund`` is not
``{"intent": "refund", "confidence": 0.9}``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from ...formats.chat import parse_answer
from .base import (
    _MAX_ITEMS,
    _SETTINGS_VERSION,
    ScoreResult,
    _check_threshold,
    _key_segment,
    _not_applicable,
    _truncate,
    parse_json_output,
)
from .tools import argument_agreement, compare_calls

__all__ = ["DEFAULT_METHOD", "SIMILARITY_METHODS", "SimilarityScorer"]


DEFAULT_METHOD = "ratio"
"""Chosen by measurement (module doc)."""

SIMILARITY_METHODS: tuple[str, ...] = (
    "ratio",
    "token_set_ratio",
    "token_sort_ratio",
    "partial_ratio",
    "WRatio",
)


_Fuzz = Callable[..., float]


def _text_similarity(fn: _Fuzz, a: str, b: str) -> float:
    """rapidfuzz score / 100 on ``default_process``-ed text; identical processed text is 1.0.

    (rapidfuzz's token_set_ratio and WRatio give 0 when both processed strings are empty.)
    """
    pa, pb = default_process(a), default_process(b)
    if pa == pb:
        return 1.0
    return fn(pa, pb) / 100.0


def _flatten(value: Any) -> dict[str, Any]:
    """Leaf path -> leaf value, in document order; an empty object or array is a leaf."""
    leaves: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [("$", value)]
    while stack:
        path, node = stack.pop()
        if node and isinstance(node, dict):
            for key in reversed(node):  # pushed in reverse so they pop in document order
                stack.append((path + _key_segment(key), node[key]))
        elif node and isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                stack.append((f"{path}[{i}]", node[i]))
        else:
            leaves[path] = node
    return leaves


def _compare_leaves(fn: _Fuzz, a: Any, b: Any) -> tuple[bool, float]:
    """``(equal, score)`` for two leaf values present on both sides."""
    if type(a) is type(b) and a == b:
        return True, 1.0
    if type(a) in (int, float) and type(b) in (int, float):  # bools are not numbers
        if a == b:
            return True, 1.0
        try:
            close = math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        except OverflowError:  # an integer too large for a float
            close = False
        return False, 1.0 if close else 0.0
    if type(a) is str and type(b) is str:
        return False, _text_similarity(fn, a, b)
    return False, 0.0  # different types (True vs 1: bools are not numbers) or unequal bools


def _detail_value(value: Any) -> Any:
    if isinstance(value, str):
        return _truncate(value)
    if isinstance(value, float) and not math.isfinite(value):  # 1e999 parses to inf
        return repr(value)
    return value


class SimilarityScorer:
    """Fuzzy similarity of candidate and primary with ``rapidfuzz.fuzz.<method>``, in [0, 1].

    Text is compared after ``rapidfuzz.utils.default_process`` (lowercase, non-alphanumerics to
    spaces, trimmed). When both outputs are JSON objects or arrays (see :func:`parse_json_output`)
    they are compared field by field instead; when only one of them is, the candidate fails
    (``mode: "json_vs_text"``, with a ``reason``). Field by field, the value is the mean per-leaf
    score over the union of leaf paths (equal values 1.0; strings by the method; numbers 1.0
    when ``math.isclose``; missing on one side or different types 0.0). ``differing`` lists
    paths present on both sides whose values are not equal; ``missing`` / ``extra`` list paths
    on one side only.
    """

    __slots__ = ("_fn", "_last_primary", "_method", "_threshold")
    name = "similarity"
    hard = False

    def __init__(self, *, method: str = DEFAULT_METHOD, threshold: float = 0.8) -> None:
        if method not in SIMILARITY_METHODS:
            choices = ", ".join(SIMILARITY_METHODS)
            raise ValueError(f"unknown similarity method {method!r}; choose one of: {choices}")
        self._method = method
        self._fn: _Fuzz = getattr(fuzz, method)
        self._threshold = _check_threshold(threshold)
        self._last_primary: tuple[str, dict[str, Any] | None] | None = None

    def settings(self) -> dict[str, Any]:
        return {"method": self._method, "threshold": self._threshold, "version": _SETTINGS_VERSION}

    def score(self, primary: str | None, candidate: str) -> ScoreResult:
        if primary is None:
            return _not_applicable()
        p_answer, c_answer = parse_answer(primary), parse_answer(candidate)
        if p_answer.tool_calls or c_answer.tool_calls:
            # Calls are actions: they pass only when they match exactly (see .tools).
            return compare_calls(p_answer, c_answer, argument_agreement, 1.0)
        p_leaves = self._primary_leaves(primary)
        c_ok, c_value = parse_json_output(candidate)
        if p_leaves is not None and c_ok:
            return self._score_json(p_leaves, _flatten(c_value))
        if p_leaves is not None or c_ok:
            json_side, other = ("candidate", "primary") if c_ok else ("primary", "candidate")
            details = {
                "mode": "json_vs_text",
                "method": self._method,
                "reason": f"the {json_side}'s answer is JSON, the {other}'s is not",
            }
            return ScoreResult(0.0, False, details)
        value = round(_text_similarity(self._fn, primary, candidate), 6)
        details = {"mode": "text", "method": self._method}
        return ScoreResult(value, value >= self._threshold, details)

    def _primary_leaves(self, primary: str) -> dict[str, Any] | None:
        """The primary's JSON leaves, or None when it is not a JSON object or array."""
        # The same primary is usually scored against several candidates in a row: remember one.
        last = self._last_primary
        if last is not None and last[0] == primary:
            return last[1]
        ok, value = parse_json_output(primary)
        leaves = _flatten(value) if ok else None
        self._last_primary = (primary, leaves)
        return leaves

    def _score_json(self, p_leaves: dict[str, Any], c_leaves: dict[str, Any]) -> ScoreResult:
        total = 0.0
        matching = 0
        differing: list[dict[str, Any]] = []
        missing: list[str] = []
        for path, p_value in p_leaves.items():
            if path not in c_leaves:
                if len(missing) < _MAX_ITEMS:
                    missing.append(path)
                continue
            c_value = c_leaves[path]
            equal, field_score = _compare_leaves(self._fn, p_value, c_value)
            total += field_score
            if equal:
                matching += 1
            elif len(differing) < _MAX_ITEMS:
                differing.append(
                    {
                        "path": path,
                        "primary": _detail_value(p_value),
                        "candidate": _detail_value(c_value),
                        "score": round(field_score, 6),
                    }
                )
        n_extra = 0
        extra: list[str] = []
        for path in c_leaves:
            if path not in p_leaves:
                n_extra += 1
                if len(extra) < _MAX_ITEMS:
                    extra.append(path)
        fields = len(p_leaves) + n_extra  # never 0: the root is a leaf when it is empty
        value = round(total / fields, 6)
        details = {
            "mode": "json",
            "method": self._method,
            "fields": fields,
            "matching": matching,
            "differing": differing,
            "missing": missing,
            "extra": extra,
        }
        return ScoreResult(value, value >= self._threshold, details)
