"""The scorers' shared pieces: label normalization, JSON parsing, results, the protocol, and
thresholds."""

from __future__ import annotations

import dataclasses
import math

import pytest

from shadowroute.scoring.scorers.base import Scorer, ScoreResult, normalize_label, parse_json_output
from shadowroute.scoring.scorers.exact import ExactScorer
from shadowroute.scoring.scorers.schema import SchemaScorer
from shadowroute.scoring.scorers.similarity import SimilarityScorer
from support.scorers import ORDER_SCHEMA

# --- shared pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('  "Positive." ', "positive"),
        ("`Spam`", "spam"),
        ("'Yes'!", "yes"),
        ("\u201cOK\u201d", "ok"),
        ("Hello,\n   World!", "hello, world"),
        ("New  York\tCity", "new york city"),
        (" . Neutral ; ", "neutral"),
        ("Straße", "strasse"),
        ("", ""),
        ("?!", ""),
    ],
)
def test_normalize_label(text: str, expected: str) -> None:
    assert normalize_label(text) == expected


def test_normalize_label_case_sensitive_keeps_case() -> None:
    assert normalize_label('  "Positive." ', case_sensitive=True) == "Positive"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', (True, {"a": 1})),
        (" \n [1, 2] \n", (True, [1, 2])),
        ("{}", (True, {})),
        ("3", (False, None)),
        ('"x"', (False, None)),
        ("true", (False, None)),
        ("", (False, None)),
        ('```json\n{"a": 1}\n```', (False, None)),
        ('Sure: {"a": 1}', (False, None)),
        ('{"a": 1', (False, None)),
        ("[NaN]", (False, None)),
        ('{"a": Infinity}', (False, None)),
        ("[" * 5000 + "]" * 5000, (False, None)),
    ],
)
def test_parse_json_output(text: str, expected: tuple[bool, object]) -> None:
    assert parse_json_output(text) == expected


def test_score_result_is_frozen_and_free_by_default() -> None:
    result = ScoreResult(1.0, True, {})
    assert result.cost_usd == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.value = 0.0  # type: ignore[misc]


def test_scorers_satisfy_the_protocol() -> None:
    scorers = [
        SchemaScorer(ORDER_SCHEMA),
        ExactScorer(),
        ExactScorer(name="label"),
        SimilarityScorer(),
    ]
    assert all(isinstance(s, Scorer) for s in scorers)
    assert [(s.name, s.hard) for s in scorers] == [
        ("schema", True),
        ("exact", False),
        ("label", False),
        ("similarity", False),
    ]


@pytest.mark.parametrize("threshold", [-0.1, 1.5, math.nan, True, "0.5", None])
@pytest.mark.parametrize(
    "make",
    [
        lambda t: SchemaScorer(ORDER_SCHEMA, threshold=t),
        lambda t: ExactScorer(threshold=t),
        lambda t: SimilarityScorer(threshold=t),
    ],
)
def test_threshold_outside_0_1_is_rejected(make: object, threshold: object) -> None:
    with pytest.raises(ValueError, match="threshold"):
        make(threshold)  # type: ignore[operator]
