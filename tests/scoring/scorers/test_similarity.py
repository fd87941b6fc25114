"""The ``similarity`` scorer, branch by branch (text mode and JSON mode), on crafted (primary,
candidate) pairs."""

from __future__ import annotations

import json

import pytest
from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from shadowroute.scoring.scorers.base import ScoreResult
from shadowroute.scoring.scorers.similarity import (
    DEFAULT_METHOD,
    SIMILARITY_METHODS,
    SimilarityScorer,
)
from support.scorers import NOT_APPLICABLE


def expected_fuzz(method: str, a: str, b: str) -> float:
    return round(getattr(fuzz, method)(a, b, processor=default_process) / 100, 6)


# --- similarity, text mode -----------------------------------------------------------------------

TEXT_PAIR = (
    "The customer was charged twice for the March invoice and wants a refund.",
    "Customer reports a duplicate March charge; asks for the refund of one payment.",
)


@pytest.mark.parametrize("method", SIMILARITY_METHODS)
def test_similarity_text_matches_rapidfuzz(method: str) -> None:
    primary, candidate = TEXT_PAIR
    result = SimilarityScorer(method=method, threshold=0.0).score(primary, candidate)
    assert result.value == expected_fuzz(method, primary, candidate)
    assert 0.0 < result.value < 1.0  # type: ignore[operator]
    assert result.details == {"mode": "text", "method": method}


@pytest.mark.parametrize("method", SIMILARITY_METHODS)
def test_similarity_identical_and_empty_texts_score_one(method: str) -> None:
    scorer = SimilarityScorer(method=method)
    assert scorer.score(TEXT_PAIR[0], TEXT_PAIR[0]).value == 1.0
    # rapidfuzz's token_set_ratio and WRatio return 0 for two empty strings; identical is 1.0.
    assert scorer.score("", "").value == 1.0
    assert scorer.score("...", "").value == 1.0  # nothing left after default_process
    assert scorer.score("abc", "").value == 0.0


def test_similarity_hand_checked_values() -> None:
    # Indel similarity: 1 - 2 edits / 8 characters.
    assert SimilarityScorer(method="ratio").score("abcd", "ABCE").value == 0.75
    # Token set: every token of the shorter text is in the longer one.
    token_set = SimilarityScorer(method="token_set_ratio")
    assert token_set.score("the cat sat", "The cat sat on the mat.").value == 1.0
    # The default (ratio) sees the rest of the longer text: 2 * 11 / (11 + 22).
    assert SimilarityScorer().score("the cat sat", "The cat sat on the mat.").value == 0.666667
    # Token sort: same words, other order and punctuation.
    assert (
        SimilarityScorer(method="token_sort_ratio").score("world hello", "Hello, World!").value
        == 1.0
    )
    assert SimilarityScorer(method="ratio").score("abc", "xyz").value == 0.0


def test_similarity_threshold_boundary() -> None:
    assert SimilarityScorer(method="ratio", threshold=0.75).score("abcd", "abce").passed is True
    assert (
        SimilarityScorer(method="ratio", threshold=0.750001).score("abcd", "abce").passed is False
    )


def test_similarity_value_is_rounded_to_six_decimals() -> None:
    result = SimilarityScorer(method="ratio").score("abc", "abcdef")  # 6/9
    assert result.value == 0.666667


def test_similarity_without_primary_is_not_applicable() -> None:
    assert SimilarityScorer().score(None, "anything") == NOT_APPLICABLE


def test_similarity_compares_scalars_and_plain_text_as_text() -> None:
    # "3" is JSON, but not an object or array: both sides are text.
    result = SimilarityScorer(method="ratio").score("3", "3.0")
    assert result.details == {"mode": "text", "method": "ratio"}
    assert result.value == expected_fuzz("ratio", "3", "3.0")


@pytest.mark.parametrize("method", SIMILARITY_METHODS)
@pytest.mark.parametrize(
    ("primary", "candidate", "reason"),
    [
        ('{"a": 1}', "a: 1", "the primary's answer is JSON, the candidate's is not"),
        ("a: 1", '{"a": 1}', "the candidate's answer is JSON, the primary's is not"),
        (
            '{"a": 1}',
            '```json\n{"a": 1}\n```',
            "the primary's answer is JSON, the candidate's is not",
        ),
        ("[1, 2]", "1, 2", "the primary's answer is JSON, the candidate's is not"),
        (
            '{"intent": "refund", "confidence": 0.9}',
            "refund",
            "the primary's answer is JSON, the candidate's is not",
        ),
    ],
)
def test_similarity_never_compares_json_with_text(
    method: str, primary: str, candidate: str, reason: str
) -> None:
    # Whatever the method and threshold: a JSON object or array is compared only with JSON.
    result = SimilarityScorer(method=method, threshold=0.0).score(primary, candidate)
    assert result == ScoreResult(
        0.0, False, {"mode": "json_vs_text", "method": method, "reason": reason}
    )


SUBSET_PAIRS = [
    ("The capital of France is not Paris; it is Lyon.", "Paris"),
    ('{"intent": "refund", "confidence": 0.9}', "refund"),
    ("The capital of France is not Paris; it is Lyon.", "The capital of France is Paris."),
]


@pytest.mark.parametrize(("primary", "candidate"), SUBSET_PAIRS)
def test_default_similarity_is_not_fooled_by_a_subset_of_the_words(
    primary: str, candidate: str
) -> None:
    result = SimilarityScorer().score(primary, candidate)
    assert result.passed is False
    assert result.value < 0.8  # type: ignore[operator]
    # ... and in the other direction too: the default is symmetric.
    assert SimilarityScorer().score(candidate, primary).value == result.value


def test_token_set_ratio_was_fooled_by_subsets() -> None:
    # Why the default moved away from it: a subset of the words scores 1.0.
    token_set = SimilarityScorer(method="token_set_ratio")
    assert token_set.score("The capital of France is not Paris; it is Lyon.", "Paris").value == 1.0


def test_default_similarity_sees_word_order() -> None:
    primary, candidate = (
        "Refund the order, do not cancel it.",
        "Cancel the order, do not refund it.",
    )
    assert SimilarityScorer(method="token_sort_ratio").score(primary, candidate).value == 1.0
    assert SimilarityScorer().score(primary, candidate).passed is False


def test_similarity_bad_method() -> None:
    with pytest.raises(ValueError, match="choose one of: ratio, token_set_ratio"):
        SimilarityScorer(method="levenshtein")


def test_similarity_settings() -> None:
    settings = SimilarityScorer().settings()
    assert (settings["method"], settings["threshold"]) == ("ratio", 0.8)
    assert DEFAULT_METHOD == "ratio"
    assert SimilarityScorer(method="token_set_ratio").settings() != settings
    assert SimilarityScorer(threshold=0.9).settings() != settings
    assert SimilarityScorer().settings() == settings


# --- similarity, JSON mode -----------------------------------------------------------------------


def test_similarity_json_field_by_field() -> None:
    primary = {
        "customer": {"name": "Jane Doe", "email": "jane@example.com"},
        "items": [{"sku": "A", "qty": 2}],
        "total": 10,
    }
    candidate = {
        "customer": {"name": "Joan Doe", "email": "jane@example.com"},
        "items": [{"sku": "A", "qty": 3}, {"sku": "B", "qty": 1}],
        "total": 10.0,
    }
    result = SimilarityScorer(threshold=0.5).score(json.dumps(primary), json.dumps(candidate))
    name_raw = fuzz.ratio("Jane Doe", "Joan Doe", processor=default_process) / 100
    name_score = round(name_raw, 6)
    assert 0.0 < name_score < 1.0
    assert result.value == round((3 + name_raw + 0.0) / 7, 6)
    assert result.passed is True
    assert result.details == {
        "mode": "json",
        "method": "ratio",
        "fields": 7,
        "matching": 3,
        "differing": [
            {
                "path": "$.customer.name",
                "primary": "Jane Doe",
                "candidate": "Joan Doe",
                "score": name_score,
            },
            {"path": "$.items[0].qty", "primary": 2, "candidate": 3, "score": 0.0},
        ],
        "missing": [],
        "extra": ["$.items[1].sku", "$.items[1].qty"],
    }


def test_similarity_json_missing_fields() -> None:
    result = SimilarityScorer().score('{"a": 1, "b": {"c": "x"}, "d": null}', '{"a": 1}')
    assert result.value == round(1 / 3, 6)
    assert result.details["missing"] == ["$.b.c", "$.d"]
    assert result.details["extra"] == []
    assert result.details["differing"] == []


def test_similarity_json_numbers_compare_numerically() -> None:
    scorer = SimilarityScorer()
    equal = scorer.score('{"n": 2}', '{"n": 2.0}')
    assert (equal.value, equal.details["matching"], equal.details["differing"]) == (1.0, 1, [])
    close = scorer.score('{"n": 0.30000000000000004}', '{"n": 0.3}')
    assert close.value == 1.0
    assert close.details["matching"] == 0
    assert close.details["differing"] == [
        {"path": "$.n", "primary": 0.30000000000000004, "candidate": 0.3, "score": 1.0}
    ]
    assert scorer.score('{"n": 2}', '{"n": 2.001}').value == 0.0
    assert scorer.score('{"n": 1e400}', '{"n": 1.5}').value == 0.0
    assert scorer.score('{"n": ' + "9" * 400 + "}", '{"n": 1.5}').value == 0.0


def test_similarity_json_bools_are_not_numbers() -> None:
    result = SimilarityScorer().score('{"a": true, "b": false}', '{"a": 1, "b": true}')
    assert result.value == 0.0
    assert result.details["matching"] == 0
    assert result.details["differing"] == [
        {"path": "$.a", "primary": True, "candidate": 1, "score": 0.0},
        {"path": "$.b", "primary": False, "candidate": True, "score": 0.0},
    ]


def test_similarity_json_type_mismatches_and_nulls() -> None:
    scorer = SimilarityScorer()
    assert scorer.score('{"a": null}', '{"a": null}').value == 1.0
    assert scorer.score('{"a": null}', '{"a": "null"}').value == 0.0
    assert scorer.score('{"a": "2"}', '{"a": 2}').value == 0.0


def test_similarity_json_empty_containers_are_leaves() -> None:
    scorer = SimilarityScorer()
    both_empty = scorer.score("{}", " {} ")
    assert (both_empty.value, both_empty.details["fields"], both_empty.details["matching"]) == (
        1.0,
        1,
        1,
    )
    assert scorer.score("[]", "[]").value == 1.0
    assert scorer.score("{}", "[]").value == 0.0
    nested = scorer.score('{"a": {}}', '{"a": {"b": 1}}')
    assert nested.value == 0.0
    assert (nested.details["missing"], nested.details["extra"]) == (["$.a"], ["$.a.b"])
    assert scorer.score('{"a": []}', '{"a": {}}').details["differing"] == [
        {"path": "$.a", "primary": [], "candidate": {}, "score": 0.0}
    ]


def test_similarity_json_nested_arrays() -> None:
    result = SimilarityScorer().score("[[1, 2], [3]]", "[[1, 2], [3, 4]]")
    assert result.value == 0.75
    assert result.details["fields"] == 4
    assert result.details["extra"] == ["$[1][1]"]
    shifted = SimilarityScorer().score('{"xs": [1, 2, 3]}', '{"xs": [2, 3]}')
    assert shifted.value == 0.0  # compared by index, not aligned
    assert shifted.details["missing"] == ["$.xs[2]"]


def test_similarity_json_strings_use_the_method() -> None:
    primary, candidate = '{"s": "Hello World"}', '{"s": "world, hello"}'
    sorted_tokens = SimilarityScorer(method="token_sort_ratio").score(primary, candidate)
    assert sorted_tokens.value == 1.0
    assert sorted_tokens.details["matching"] == 0  # equal for the method, not equal values
    plain = SimilarityScorer(method="ratio").score(primary, candidate)
    assert plain.value == expected_fuzz("ratio", "Hello World", "world, hello")
    assert plain.value < 1.0  # type: ignore[operator]


def test_similarity_json_paths_quote_unusual_keys() -> None:
    result = SimilarityScorer().score('{"a.b": 1, "order-id": 2}', '{"a": {"b": 1}, "order-id": 2}')
    assert result.details["missing"] == ['$["a.b"]']
    assert result.details["extra"] == ["$.a.b"]
    assert result.details["matching"] == 1
    assert result.value == round(1 / 3, 6)


def test_similarity_json_lists_are_capped_and_values_truncated() -> None:
    primary = {f"d{i}": f"p{i}" for i in range(30)} | {f"m{i}": i for i in range(25)}
    candidate = {f"d{i}": i for i in range(30)} | {f"e{i}": i for i in range(25)}
    primary["long"] = "x" * 500
    candidate["long"] = "y" * 500
    result = SimilarityScorer().score(json.dumps(primary), json.dumps(candidate))
    details = result.details
    assert details["fields"] == 31 + 25 + 25
    assert details["matching"] == 0
    assert result.value == 0.0
    assert len(details["differing"]) == 20
    assert details["differing"][0]["path"] == "$.d0"
    assert details["missing"] == [f"$.m{i}" for i in range(20)]
    assert details["extra"] == [f"$.e{i}" for i in range(20)]
    long_only = SimilarityScorer().score('{"s": "%s"}' % ("x" * 500), '{"s": "%s"}' % ("y" * 500))
    entry = long_only.details["differing"][0]
    assert (entry["primary"], entry["candidate"]) == ("x" * 200, "y" * 200)


def test_similarity_json_details_are_json_serialisable() -> None:
    result = SimilarityScorer().score('{"n": 1e400, "s": "a"}', '{"n": 1, "s": "b"}')
    assert result.details["differing"][0] == {
        "path": "$.n",
        "primary": "inf",
        "candidate": 1,
        "score": 0.0,
    }
    json.dumps(result.details, allow_nan=False)


def test_similarity_json_deep_nesting() -> None:
    depth = 400
    deep = "[" * depth + "1" + "]" * depth
    result = SimilarityScorer().score(deep, deep.replace("1", "2"))
    assert result.details["mode"] == "json"
    assert result.value == 0.0
    assert result.details["differing"][0]["path"] == "$" + "[0]" * depth


def test_similarity_primary_changes_between_calls() -> None:
    scorer = SimilarityScorer(method="ratio")
    assert scorer.score('{"a": 1}', '{"a": 1}').details["mode"] == "json"
    assert scorer.score("abcd", "abce").value == 0.75
    assert scorer.score('{"a": 1}', '{"a": 2}').value == 0.0
    assert scorer.score('{"a": 2}', '{"a": 2}').value == 1.0
