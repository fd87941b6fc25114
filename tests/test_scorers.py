"""The deterministic scorers, branch by branch, on crafted (primary, candidate) pairs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import pytest
from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from shadowroute.scoring.scorers.similarity import SIMILARITY_METHODS, SimilarityScorer
from shadowroute.scoring.scorers.exact import ExactScorer
from shadowroute.scoring.scorers.schema import SchemaScorer
from shadowroute.scoring.scorers.base import Scorer, ScoreResult, normalize_label, parse_json_output

ORDER_SCHEMA = {
    "type": "object",
    "required": ["customer", "items"],
    "properties": {
        "customer": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["qty"],
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
            },
        },
    },
}
GOOD_ORDER = '{"customer": "Jane", "items": [{"sku": "A", "qty": 2}]}'
NOT_APPLICABLE = ScoreResult(None, None, {"skipped": "no primary output"})


def expected_fuzz(method: str, a: str, b: str) -> float:
    return round(getattr(fuzz, method)(a, b, processor=default_process) / 100, 6)


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


# --- schema --------------------------------------------------------------------------------------


def test_schema_valid_candidate_and_primary() -> None:
    result = SchemaScorer(ORDER_SCHEMA).score(GOOD_ORDER, "\n  " + GOOD_ORDER + "  \n")
    assert result == ScoreResult(
        1.0, True, {"valid": True, "errors": [], "primary_valid": True, "primary_errors": []}
    )


def test_schema_violation_reports_the_json_path() -> None:
    result = SchemaScorer(ORDER_SCHEMA).score(
        GOOD_ORDER, '{"customer": "Jane", "items": [{"qty": "x"}]}'
    )
    assert result.value == 0.0
    assert result.passed is False
    assert result.details["valid"] is False
    assert result.details["errors"] == ["$.items[0].qty: 'x' is not of type 'integer'"]
    assert result.details["primary_valid"] is True


def test_schema_errors_are_sorted_by_path_with_numeric_indexes() -> None:
    items = [{"qty": 1} for _ in range(11)]
    items[10] = {"qty": "ten"}
    items[2] = {}
    result = SchemaScorer(ORDER_SCHEMA).score(None, json.dumps({"items": items}))
    assert result.details["errors"] == [
        "$: 'customer' is a required property",
        "$.items[2]: 'qty' is a required property",
        "$.items[10].qty: 'ten' is not of type 'integer'",
    ]


def test_schema_errors_are_capped_at_five() -> None:
    candidate = json.dumps({"customer": "Jane", "items": [{"qty": str(i)} for i in range(8)]})
    errors = SchemaScorer(ORDER_SCHEMA).score(None, candidate).details["errors"]
    assert len(errors) == 5
    assert errors[0] == "$.items[0].qty: '0' is not of type 'integer'"
    assert errors[4] == "$.items[4].qty: '4' is not of type 'integer'"


def test_schema_error_path_quotes_keys_that_are_not_plain_words() -> None:
    schema = {"type": "object", "properties": {"a.b": {"type": "string"}}}
    result = SchemaScorer(schema).score(None, '{"a.b": 2}')
    assert result.details["errors"] == ["$[\"a.b\"]: 2 is not of type 'string'"]


@pytest.mark.parametrize(
    ("candidate", "error"),
    [
        ("", "not valid JSON: Expecting value at line 1 column 1"),
        ("Sure! Here it is.", "not valid JSON: Expecting value at line 1 column 1"),
        (
            '```json\n{"customer": "J", "items": []}\n```',
            "not valid JSON: Expecting value at line 1 column 1",
        ),
        ("{} extra", "not valid JSON: Extra data at line 1 column 4"),
        ('{"customer": NaN, "items": []}', "not valid JSON: NaN is not allowed in JSON"),
        ("[" * 5000 + "]" * 5000, "not valid JSON: nested too deeply"),
    ],
)
def test_schema_candidate_that_is_not_json_fails(candidate: str, error: str) -> None:
    result = SchemaScorer(ORDER_SCHEMA).score(GOOD_ORDER, candidate)
    assert (result.value, result.passed) == (0.0, False)
    assert result.details["errors"] == [error]
    assert result.details["primary_valid"] is True


def test_schema_wrong_root_type() -> None:
    result = SchemaScorer(ORDER_SCHEMA).score(None, "[1]")
    assert result.details["errors"] == ["$: [1] is not of type 'object'"]


def test_schema_without_primary_reports_primary_valid_none() -> None:
    result = SchemaScorer(ORDER_SCHEMA).score(None, GOOD_ORDER)
    assert result.passed is True
    assert result.details["primary_valid"] is None
    assert result.details["primary_errors"] == []


def test_schema_primary_failing_is_reported_but_candidate_still_passes() -> None:
    result = SchemaScorer(ORDER_SCHEMA).score('{"customer": 7, "items": []}', GOOD_ORDER)
    assert (result.value, result.passed) == (1.0, True)
    assert result.details["primary_valid"] is False
    assert result.details["primary_errors"] == ["$.customer: 7 is not of type 'string'"]


def test_schema_primary_not_json_is_reported() -> None:
    result = SchemaScorer(ORDER_SCHEMA).score("Here is your order", '{"items": []}')
    assert result.passed is False
    assert result.details["errors"] == ["$: 'customer' is a required property"]
    assert result.details["primary_valid"] is False
    assert result.details["primary_errors"] == [
        "not valid JSON: Expecting value at line 1 column 1"
    ]


def test_schema_primary_changes_between_calls() -> None:
    scorer = SchemaScorer(ORDER_SCHEMA)
    bad_primary = '{"items": []}'
    first = scorer.score(GOOD_ORDER, GOOD_ORDER)
    first.details["primary_errors"].append("mutated by a caller")
    assert scorer.score(bad_primary, GOOD_ORDER).details["primary_valid"] is False
    again = scorer.score(GOOD_ORDER, GOOD_ORDER)
    assert again.details["primary_valid"] is True
    assert again.details["primary_errors"] == []
    assert scorer.score(bad_primary, GOOD_ORDER).details["primary_errors"] == [
        "$: 'customer' is a required property"
    ]


def test_schema_threshold_zero_passes_everything() -> None:
    result = SchemaScorer(ORDER_SCHEMA, threshold=0.0).score(None, "nope")
    assert (result.value, result.passed) == (0.0, True)


def test_schema_format_is_an_annotation_only() -> None:
    scorer = SchemaScorer({"type": "string", "format": "email"})
    assert scorer.score(None, '"not an email"').passed is True


def test_schema_refs_and_anchors_resolve() -> None:
    schema = {
        "$defs": {"qty": {"$anchor": "qty", "type": "integer"}, "sku": {"type": "string"}},
        "type": "object",
        "properties": {"qty": {"$ref": "#qty"}, "sku": {"$ref": "#/$defs/sku"}},
    }
    scorer = SchemaScorer(schema)
    assert scorer.score(None, '{"qty": 1, "sku": "A"}').passed is True
    assert scorer.score(None, '{"qty": "1", "sku": 2}').details["errors"] == [
        "$.qty: '1' is not of type 'integer'",
        "$.sku: 2 is not of type 'string'",
    ]


def test_schema_refs_relative_to_nested_ids_resolve() -> None:
    schema = {
        "$id": "https://example.com/order.json",
        "$defs": {"qty": {"$id": "qty.json", "type": "integer"}},
        "properties": {"qty": {"$ref": "qty.json"}, "n": {"$ref": "https://example.com/qty.json"}},
    }
    result = SchemaScorer(schema).score(None, '{"qty": "2", "n": 1}')
    assert result.details["errors"] == ["$.qty: '2' is not of type 'integer'"]


def test_schema_dialect_follows_dollar_schema() -> None:
    draft4 = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "number",
        "minimum": 5,
        "exclusiveMinimum": True,  # a boolean only in draft 4
    }
    result = SchemaScorer(draft4).score(None, "5")
    assert result.details["errors"] == ["$: 5 is less than or equal to the minimum of 5"]
    without_dialect = {k: v for k, v in draft4.items() if k != "$schema"}
    with pytest.raises(ValueError, match=r"invalid JSON schema at \$\.exclusiveMinimum"):
        SchemaScorer(without_dialect)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "integr"}, r"invalid JSON schema at \$\.type: 'integr' is not valid"),
        (
            {"properties": {"qty": {"minimum": "zero"}}},
            r"invalid JSON schema at \$\.properties\.qty\.minimum: 'zero' is not of type 'number'",
        ),
        ({"properties": {"a": {"$ref": "#/$defs/missing"}}}, "points to nothing in the schema"),
        ({"$ref": "https://example.com/order.json"}, "remote schemas are not fetched"),
        ({"$schema": "http://example.com/my-draft"}, "not a known JSON Schema draft"),
        ({"$schema": 4}, r"\$schema must be a string"),
        ({"enum": {1, 2}}, "not JSON-serialisable"),
        ([{"type": "object"}], "must be an object"),
    ],
)
def test_schema_invalid_schema_raises_value_error(schema: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SchemaScorer(schema)  # type: ignore[arg-type]


def test_schema_is_copied_at_construction() -> None:
    schema = {"type": "object", "properties": {"qty": {"type": "integer"}}}
    scorer = SchemaScorer(schema)
    settings = scorer.settings()
    schema["properties"]["qty"]["type"] = "string"
    assert scorer.score(None, '{"qty": 1}').passed is True
    assert scorer.settings() == settings


def test_schema_settings() -> None:
    canonical = json.dumps(ORDER_SCHEMA, sort_keys=True, separators=(",", ":"))
    settings = SchemaScorer(ORDER_SCHEMA).settings()
    assert settings["threshold"] == 1.0
    assert settings["schema_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    json.dumps(settings)
    reordered = dict(reversed(list(ORDER_SCHEMA.items())))
    assert SchemaScorer(reordered).settings() == settings
    assert SchemaScorer(ORDER_SCHEMA, threshold=0.5).settings() != settings
    assert SchemaScorer({**ORDER_SCHEMA, "required": ["items"]}).settings() != settings


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
    assert SimilarityScorer().score("the cat sat", "The cat sat on the mat.").value == 1.0
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


@pytest.mark.parametrize(
    ("primary", "candidate"),
    [
        ('{"a": 1}', "a: 1"),
        ("a: 1", '{"a": 1}'),
        ("3", "3.0"),
        ('```json\n{"a": 1}\n```', '{"a": 1}'),
    ],
)
def test_similarity_falls_back_to_text_unless_both_are_json_containers(
    primary: str, candidate: str
) -> None:
    result = SimilarityScorer(method="ratio").score(primary, candidate)
    assert result.details == {"mode": "text", "method": "ratio"}
    assert result.value == expected_fuzz("ratio", primary, candidate)


def test_similarity_bad_method() -> None:
    with pytest.raises(ValueError, match="choose one of: ratio, token_set_ratio"):
        SimilarityScorer(method="levenshtein")


def test_similarity_settings() -> None:
    settings = SimilarityScorer().settings()
    assert (settings["method"], settings["threshold"]) == ("token_set_ratio", 0.8)
    assert SimilarityScorer(method="ratio").settings() != settings
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
    name_raw = fuzz.token_set_ratio("Jane Doe", "Joan Doe", processor=default_process) / 100
    name_score = round(name_raw, 6)
    assert 0.0 < name_score < 1.0
    assert result.value == round((3 + name_raw + 0.0) / 7, 6)
    assert result.passed is True
    assert result.details == {
        "mode": "json",
        "method": "token_set_ratio",
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
