"""The ``exact`` and ``label`` scorers, branch by branch, on crafted (primary, candidate) pairs."""

from __future__ import annotations

import json

import pytest

from shadowroute.scoring.scorers.base import ScoreResult
from shadowroute.scoring.scorers.exact import ExactScorer
from support.scorers import NOT_APPLICABLE

# --- exact / label -------------------------------------------------------------------------------


def test_exact_match_after_normalization() -> None:
    result = ExactScorer().score("Positive", '  "positive." \n')
    assert result == ScoreResult(
        1.0, True, {"primary": "positive", "candidate": "positive", "match": True}
    )


@pytest.mark.parametrize(
    ("primary", "candidate"),
    [
        ("New York City", "new  york\ncity"),
        ("`spam`", "SPAM!"),
        ("'Yes'", "yes?"),
        ("", "  ..."),
    ],
)
def test_exact_normalized_matches(primary: str, candidate: str) -> None:
    result = ExactScorer().score(primary, candidate)
    assert (result.value, result.passed, result.details["match"]) == (1.0, True, True)


def test_exact_mismatch() -> None:
    result = ExactScorer().score("positive", "negative")
    assert result == ScoreResult(
        0.0, False, {"primary": "positive", "candidate": "negative", "match": False}
    )
    assert ExactScorer().score("positive", "").passed is False


def test_exact_case_sensitive() -> None:
    scorer = ExactScorer(case_sensitive=True)
    assert scorer.score("Positive", "positive").passed is False
    assert scorer.score("Positive", ' "Positive!" ').passed is True


def test_exact_without_primary_is_not_applicable() -> None:
    assert ExactScorer().score(None, "positive") == NOT_APPLICABLE
    assert ExactScorer(name="label", labels=["a"]).score(None, "zzz") == NOT_APPLICABLE


def test_exact_details_are_truncated() -> None:
    details = ExactScorer().score("a" * 500, "b" * 300).details
    assert details["primary"] == "a" * 200
    assert details["candidate"] == "b" * 200


def test_label_known_labels() -> None:
    scorer = ExactScorer(name="label", labels=["Positive.", "NEGATIVE", "neutral"])
    result = scorer.score("negative", "Negative!")
    assert result == ScoreResult(
        1.0,
        True,
        {
            "primary": "negative",
            "candidate": "negative",
            "match": True,
            "unknown_label": False,
            "primary_unknown_label": False,
        },
    )
    assert scorer.score("positive", "neutral").passed is False


def test_label_unknown_candidate_fails() -> None:
    scorer = ExactScorer(name="label", labels=["positive", "negative"])
    result = scorer.score("positive", "mixed")
    assert (result.value, result.passed) == (0.0, False)
    assert result.details["unknown_label"] is True
    assert result.details["primary_unknown_label"] is False


def test_label_unknown_candidate_fails_even_when_it_matches_the_primary() -> None:
    scorer = ExactScorer(name="label", labels=["positive", "negative"])
    result = scorer.score("Mixed", "mixed")
    assert (result.value, result.passed) == (0.0, False)
    assert result.details["match"] is True
    assert result.details["unknown_label"] is True
    assert result.details["primary_unknown_label"] is True


def test_label_unknown_primary_does_not_change_the_candidate_result() -> None:
    scorer = ExactScorer(name="label", labels=["positive", "negative"])
    result = scorer.score("mixed", "positive")
    assert (result.value, result.passed) == (0.0, False)
    assert result.details["unknown_label"] is False
    assert result.details["primary_unknown_label"] is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "similarity"}, "'exact' or 'label'"),
        ({"labels": "positive"}, "list of strings"),
        ({"labels": ["a", 3]}, "list of strings"),
        ({"labels": []}, "non-empty"),
        ({"labels": ["a", " ... "]}, "non-empty"),
    ],
)
def test_exact_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExactScorer(**kwargs)  # type: ignore[arg-type]


def test_exact_settings() -> None:
    base = ExactScorer().settings()
    assert base["threshold"] == 1.0
    assert base["labels"] is None
    assert base["case_sensitive"] is False
    labelled = ExactScorer(labels=["Negative", "positive."]).settings()
    assert labelled["labels"] == ["negative", "positive"]
    assert ExactScorer(labels=["positive", "negative"]).settings() == labelled
    assert ExactScorer(labels=["positive"]).settings() != labelled
    assert ExactScorer(case_sensitive=True).settings() != base
    assert ExactScorer(threshold=0.5).settings() != base
    json.dumps(labelled)
