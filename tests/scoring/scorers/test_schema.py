"""The ``schema`` scorer, branch by branch, on crafted (primary, candidate) pairs."""

from __future__ import annotations

import hashlib
import json

import pytest

from shadowroute.scoring.scorers.base import ScoreResult
from shadowroute.scoring.scorers.schema import SchemaScorer
from support.scorers import ORDER_SCHEMA

GOOD_ORDER = '{"customer": "Jane", "items": [{"sku": "A", "qty": 2}]}'


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
