"""The ``extract`` scorer: the answer pulled out of each output (the final number by default, a
pattern's group, a JSON pointer's value, one of a closed set of choices), then compared."""

from __future__ import annotations

import json
import math

import pytest

from shadowroute.config import load_config
from shadowroute.errors import ConfigError
from shadowroute.scoring.plan import CODE_VERSIONS, plan_for
from shadowroute.scoring.scorers.base import Scorer, ScoreResult
from shadowroute.scoring.scorers.extract import ExtractScorer, parse_json_pointer
from support.scorers import NOT_APPLICABLE


def answer_of(text: str, **options: object) -> object:
    """The answer ``extract`` reads from ``text`` (as shown in details), None when none."""
    result = ExtractScorer(**options).score("0", text)  # type: ignore[arg-type]
    return result.details["candidate"]


# --- the default: the final number --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She sells 9 eggs at $2 each, so she makes 9 * 2 = $18.", "18"),
        ("3 apples and 4 pears", "4"),  # several numbers: the last one
        ("The total is 1,234.50 dollars.", "1234.5"),
        ("It costs $1,000 in all", "1000"),
        ("The temperature is -3 degrees", "-3"),
        ("(-3)", "-3"),
        ("x=-3", "-3"),
        ("It fell to \u22124", "-4"),  # the typographic minus
        ("-$5", "-5"),
        ("$-5", "-5"),
        ("+7", "7"),
        ("50% of them", "50"),  # a percent reads as its number
        ("0.5", "0.5"),
        (".5 of a cup", "0.5"),
        ("18.", "18"),
        ("18.00", "18"),
        ("about 1e3 of them", "1000"),
        ("12345678901234567890", "12345678901234567890"),
        # A hyphen after a word or a digit is a dash or a minus sign between terms.
        ("16 - 3 = 13", "13"),
        ("pages 10-12", "12"),
        ("5-3", "3"),
        ("3,000-4,000", "4000"),
        ("GPT-4", "4"),
        ("1,2345", "2345"),  # not a thousands separator: two numbers
        # GSM8K's final line, and LaTeX's box, are where the final number is read.
        ("So 9 * 2 = 18\n#### 18", "18"),
        ("#### -15\n\n(Note: it is negative because of the fees.)", "-15"),
        ("#### 18\n#### 19", "19"),
        ("#### 18 eggs, 3 dozen\n", "3"),  # the last number on the line
        # A markdown heading is followed by more text: the final number comes after it.
        ("#### Step 3: add them\nThe total is 42.", "42"),
        ("#### 1. Count\n2 + 2 = 4\n#### 2. Answer\nSo 4 in all.", "4"),
        ("The answer is $\\boxed{18}$, over 3 days.", "18"),
        ("\\boxed{1{,}000}", "1000"),
        ("\\boxed{1\\,000}", "1000"),
        ("\\boxed{\\$5}", "5"),
        ("\\boxed{7} first, then \\boxed{x = 8} at last", "8"),
        ("\\boxed{\\text{18 dollars}}", "18"),
    ],
)
def test_the_default_answer_is_the_final_number(text: str, expected: str) -> None:
    assert answer_of(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I cannot say.", "no number in the output"),
        ("v1.2.3", "no number in the output"),  # a version is not a number
        ("abc123", "no number in the output"),
        ("12 eggs, 3 days\n#### Cannot share them equally.", "no number in the #### line"),
        ("I think \\boxed{x}", "no number in the \\boxed{}"),
        ("", "it is empty"),
        ('[{"name": "lookup", "arguments": {"id": 7}}]', "it has no text (tool calls only)"),
    ],
)
def test_a_candidate_without_an_answer_fails_and_says_so(text: str, reason: str) -> None:
    result = ExtractScorer().score("The answer is 18.", text)
    assert result == ScoreResult(
        0.0,
        False,
        {
            "mode": "number",
            "primary": "18",
            "candidate": None,
            "no_answer": "candidate",
            "reason": f"no answer in the candidate's output: {reason}",
        },
    )


def test_a_primary_without_an_answer_makes_the_pair_not_applicable() -> None:
    result = ExtractScorer().score("I cannot say.", "It is 18.")
    assert result == ScoreResult(
        None,
        None,
        {
            "skipped": "no answer in the primary's output: no number in the output",
            "no_answer": "primary",
            "candidate": "18",
        },
    )
    assert ExtractScorer().score(None, "18") == NOT_APPLICABLE


def test_numbers_are_compared_as_numbers_not_as_text() -> None:
    scorer = ExtractScorer()
    same = scorer.score("She makes $18 every day.", "9 * 2 = <<9*2=18>>18\n#### 18.00")
    assert same == ScoreResult(
        1.0, True, {"mode": "number", "primary": "18", "candidate": "18", "match": True}
    )
    assert scorer.score("$1,000", "1000").passed is True
    assert scorer.score("so 18", "so 19").passed is False
    assert scorer.score("-3", "3").passed is False
    assert scorer.score("12345678901234567890", "12345678901234567891").passed is False
    assert scorer.score("1e400", "1e400").passed is True  # beyond float, exact as decimals
    assert scorer.score("1e999999999", "1").passed is False


def test_answers_of_tool_calls_are_read_from_their_text() -> None:
    with_text = json.dumps(
        {"content": "The total is 18.", "tool_calls": [{"name": "save", "arguments": {"n": 3}}]}
    )
    assert ExtractScorer().score("18", with_text).passed is True


# --- tolerance ----------------------------------------------------------------------------------


def test_abs_tolerance() -> None:
    scorer = ExtractScorer(abs_tolerance=0.5)
    assert scorer.score("18", "18.5").passed is True
    assert scorer.score("18", "17.5").passed is True
    assert scorer.score("18", "18.51").passed is False
    assert ExtractScorer().score("18", "18.0000001").passed is False  # exact by default


def test_rel_tolerance_is_relative_to_the_larger_number() -> None:
    scorer = ExtractScorer(rel_tolerance=0.01)
    assert scorer.score("1000", "1010").passed is True  # 10 <= 0.01 * 1010
    assert scorer.score("1000", "1011").passed is False
    assert scorer.score("0", "0.001").passed is False
    both = ExtractScorer(abs_tolerance=0.01, rel_tolerance=0.01)
    assert both.score("0", "0.01").passed is True  # the larger allowance wins
    assert both.score("1000", "1010").passed is True


# --- pattern ------------------------------------------------------------------------------------


def test_pattern_first_group_of_the_last_match() -> None:
    scorer = ExtractScorer(pattern=r"(?i)answer:\s*(\w+)")
    result = scorer.score("Answer: Paris. Final answer: Lyon", "answer: LYON")
    assert result == ScoreResult(
        1.0, True, {"mode": "text", "primary": "lyon", "candidate": "lyon", "match": True}
    )


def test_pattern_without_a_group_is_the_whole_match() -> None:
    assert answer_of("Ticket TCK-12 then TCK-40", pattern=r"TCK-\d+") == "tck-40"


def test_pattern_skips_matches_whose_group_did_not_take_part() -> None:
    assert answer_of("answer: 5; none", pattern=r"answer: (\d+)|none") == "5"


def test_pattern_answers_that_are_numbers_compare_as_numbers() -> None:
    scorer = ExtractScorer(pattern=r"Total: (.+)")
    assert scorer.score("Total: $1,000.", "Total: 1000").passed is True
    assert answer_of("Total: 18 eggs", pattern=r"Total: (.+)") == "18 eggs"  # not only a number
    mixed = scorer.score("Total: 18", "Total: eighteen")
    assert mixed.passed is False
    assert mixed.details["reason"] == "the primary's answer is number, the candidate's is text"


def test_pattern_text_answers_are_normalised() -> None:
    scorer = ExtractScorer(pattern=r"City: (.+)")
    assert scorer.score("City:  New   York.", 'City: "new york"').passed is True
    strict = ExtractScorer(pattern=r"City: (.+)", case_sensitive=True)
    assert strict.score("City: New York", "City: new york").passed is False
    assert strict.score("City: New York", "City: New  York!").passed is True


def test_pattern_not_found_is_no_answer() -> None:
    result = ExtractScorer(pattern=r"Answer: (\d+)").score("Answer: 3", "I think 3")
    assert result.details["no_answer"] == "candidate"
    assert result.details["reason"] == (
        "no answer in the candidate's output: no match of the pattern 'Answer: (\\\\d+)'"
    )
    empty = ExtractScorer(pattern=r"Answer:(.*)").score("Answer: 3", "Answer: ...")
    assert empty.details["reason"].endswith("the answer found is empty")


# --- json_pointer -------------------------------------------------------------------------------


def test_json_pointer_values() -> None:
    scorer = ExtractScorer(json_pointer="/intent")
    primary = '{"intent": "Refund", "confidence": 0.9}'
    assert scorer.score(primary, '{"intent": "refund ", "confidence": 0.2}').passed is True
    assert scorer.score(primary, '{"intent": "cancel"}').passed is False
    qty = ExtractScorer(json_pointer="/items/1/qty")
    both = qty.score('{"items": [{"qty": 1}, {"qty": 2}]}', '{"items": [{}, {"qty": "2.0"}]}')
    assert both == ScoreResult(
        1.0, True, {"mode": "number", "primary": "2", "candidate": "2", "match": True}
    )
    assert answer_of("[10, 20]", json_pointer="/1") == "20"
    assert answer_of("3.5", json_pointer="") == "3.5"  # the whole document


@pytest.mark.parametrize(
    ("pointer", "document", "expected"),
    [
        ("/a~1b", '{"a/b": 1, "a": {"b": 2}}', "1"),
        ("/m~0n", '{"m~n": 3}', "3"),
        ("/", '{"": 4}', "4"),
        ("/a/", '{"a": {"": 5}}', "5"),
    ],
)
def test_json_pointer_escapes(pointer: str, document: str, expected: str) -> None:
    assert answer_of(document, json_pointer=pointer) == expected


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ('{"b": 1}', "nothing at the JSON pointer '/a/0'"),
        ('{"a": [] }', "nothing at the JSON pointer '/a/0'"),
        ('{"a": {"1": 2}}', "nothing at the JSON pointer '/a/0'"),
        ('{"a": "xyz"}', "nothing at the JSON pointer '/a/0'"),
        ("The answer is 3", "it is not JSON (Expecting value at line 1 column 1)"),
        ('```json\n{"a": [1]}\n```', "it is not JSON (Expecting value at line 1 column 1)"),
    ],
)
def test_json_pointer_missing(document: str, reason: str) -> None:
    result = ExtractScorer(json_pointer="/a/0").score('{"a": [1]}', document)
    assert result.passed is False
    assert result.details["reason"] == f"no answer in the candidate's output: {reason}"


@pytest.mark.parametrize("token", ["01", "-", "1"])
def test_json_pointer_array_indexes(token: str) -> None:
    assert answer_of('{"a": [7]}', json_pointer=f"/a/{token}") is None


def test_json_pointer_non_scalar_values_compare_as_json() -> None:
    scorer = ExtractScorer(json_pointer="/tags")
    same = scorer.score('{"tags": ["a", 1]}', '{"tags": ["a", 1.0]}')
    assert same == ScoreResult(
        1.0, True, {"mode": "json", "primary": '["a", 1]', "candidate": '["a", 1.0]', "match": True}
    )
    assert scorer.score('{"tags": null}', '{"tags": null}').passed is True
    flag = ExtractScorer(json_pointer="/ok").score('{"ok": true}', '{"ok": "true"}')
    assert flag.passed is False
    assert flag.details["reason"] == "the primary's answer is json, the candidate's is text"
    assert ExtractScorer(json_pointer="/ok").score('{"ok": true}', '{"ok": 1}').passed is False


def test_json_pointer_then_pattern_or_choices() -> None:
    choices = ExtractScorer(json_pointer="/answer", choices=["A", "B", "C"])
    assert choices.score('{"answer": "(B)"}', '{"answer": "I pick B."}').passed is True
    pattern = ExtractScorer(json_pointer="/answer", pattern=r"= (\d+)")
    assert pattern.score('{"answer": "2 + 2 = 4"}', '{"answer": "3 + 1 = 4"}').passed is True
    numeric = ExtractScorer(json_pointer="/n", choices=["1", "2"])
    assert numeric.score('{"n": 2}', '{"n": "2"}').passed is True


# --- choices ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is (B).", "B"),
        ("A robe takes two bolts, so the answer is C", "C"),  # the last one found
        ("Not A, it is D", "D"),
        ("It is a good one: E", "E"),  # the article "a" is not choice A
        ("answer: b", None),  # nor is "b" choice B: one letter matches as written
        ("Both options, Bob", None),  # inside a word
        ("B\n", "B"),
    ],
)
def test_letter_choices(text: str, expected: str | None) -> None:
    assert answer_of(text, choices=["A", "B", "C", "D", "E"]) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sentiment: POSITIVE", "positive"),
        ("Very   Positive!", "very positive"),  # the longest choice, whitespace collapsed
        ("Not positive, rather negative.", "negative"),
        ("It is positively fine", None),
    ],
)
def test_label_choices(text: str, expected: str | None) -> None:
    assert answer_of(text, choices=["positive", "negative", "very positive"]) == expected


def test_case_sensitive_choices() -> None:
    options = {"choices": ["Yes", "No"], "case_sensitive": True}
    assert answer_of("yes, I think so. Yes.", **options) == "Yes"
    assert answer_of("no", **options) is None


def test_choices_compare_the_choice_found() -> None:
    scorer = ExtractScorer(choices=["A", "B", "C", "D"])
    assert scorer.score("Let's see... (A) is wrong; the answer is B.", "B").details == {
        "mode": "choice",
        "primary": "B",
        "candidate": "B",
        "match": True,
    }
    assert scorer.score("B", "C").passed is False
    missing = scorer.score("B", "none of these")
    assert missing.details["reason"] == "no answer in the candidate's output: none of the choices"


def test_pattern_then_choices() -> None:
    scorer = ExtractScorer(pattern=r"Final: (.*)", choices=["A", "B"])
    assert scorer.score("A seems right. Final: B", "Final: (B) not A").passed is False  # last
    assert scorer.score("A seems right. Final: B", "Maybe A. Final: B").passed is True


# --- settings and validation --------------------------------------------------------------------


def test_the_scorer_satisfies_the_protocol() -> None:
    scorer = ExtractScorer()
    assert isinstance(scorer, Scorer)
    assert (scorer.name, scorer.hard) == ("extract", False)


def test_settings_hold_every_option() -> None:
    default = ExtractScorer().settings()
    assert default == {
        "pattern": None,
        "json_pointer": None,
        "choices": None,
        "abs_tolerance": 0.0,
        "rel_tolerance": 0.0,
        "case_sensitive": False,
        "version": 1,
    }
    variants = [
        {"pattern": r"(\d+)"},
        {"json_pointer": "/a"},
        {"choices": ["A", "B"]},
        {"abs_tolerance": 0.5},
        {"rel_tolerance": 0.01},
        {"case_sensitive": True},
    ]
    scorers = [ExtractScorer(**v) for v in variants]  # type: ignore[arg-type]
    seen = [json.dumps(s.settings(), sort_keys=True) for s in scorers]
    assert len(set(seen) | {json.dumps(default, sort_keys=True)}) == len(variants) + 1
    assert (
        ExtractScorer(choices=["B", "A"]).settings() == ExtractScorer(choices=["A", "B"]).settings()
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pattern": "("}, "invalid pattern"),
        ({"pattern": ""}, "non-empty regular expression"),
        ({"json_pointer": "a"}, "must be empty or start with '/'"),
        ({"json_pointer": "/a~2"}, "'~' must be followed by 0 or 1"),
        ({"choices": []}, "non-empty list"),
        ({"choices": ["A", " "]}, "non-empty list"),
        ({"choices": "AB"}, "list of strings"),
        ({"choices": ["yes", "YES"]}, "are the same choice"),
        ({"abs_tolerance": -1}, "abs_tolerance must be a number >= 0"),
        ({"rel_tolerance": math.nan}, "rel_tolerance must be a number >= 0"),
        ({"abs_tolerance": True}, "abs_tolerance must be a number >= 0"),
    ],
)
def test_bad_options_are_rejected(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExtractScorer(**options)  # type: ignore[arg-type]


def test_one_letter_choices_differ_by_case() -> None:
    # "a" and "A" are two choices (one letter matches as written); "yes" and "YES" are one.
    assert ExtractScorer(choices=["a", "A"]).settings()["choices"] == ["A", "a"]


def test_parse_json_pointer() -> None:
    assert parse_json_pointer("") == ()
    assert parse_json_pointer("/a/0/~01") == ("a", "0", "~1")


def test_details_are_json_serialisable() -> None:
    for result in (
        ExtractScorer().score("1e400", "x"),
        ExtractScorer(json_pointer="/a").score('{"a": {"b": [1, null]}}', '{"a": 1e999}'),
    ):
        json.dumps(result.details, allow_nan=False)


# --- configuration ------------------------------------------------------------------------------


def test_configured_from_the_task_and_versioned_by_its_options() -> None:
    options = {
        "pattern": r"Answer: (\w+)",
        "choices": ["A", "B"],
        "abs_tolerance": 0.5,
        "rel_tolerance": 0.01,
        "json_pointer": "/a",
        "case_sensitive": True,
    }
    config = load_config(
        data={
            "tasks": {
                "mcq": {"scorers": {"extract": options}},
                "math": {"scorers": ["extract"]},
            }
        }
    )
    (mcq,) = plan_for(config, "mcq").scorers
    (math_,) = plan_for(config, "math").scorers
    assert (mcq.name, mcq.hard) == ("extract", False)
    settings = mcq.scorer.settings()
    assert {k: settings[k] for k in options} == options
    assert math_.scorer.settings() == ExtractScorer().settings()
    assert mcq.version.startswith(CODE_VERSIONS["extract"] + "-")
    assert mcq.version != math_.version


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pattern": "("}, "tasks.t.scorers.extract.pattern: invalid regular expression"),
        (
            {"json_pointer": "answer"},
            "tasks.t.scorers.extract.json_pointer: 'answer' is not a JSON",
        ),
        ({"choices": []}, "tasks.t.scorers.extract.choices: must be a non-empty list"),
        ({"abs_tolerance": -1}, "tasks.t.scorers.extract.abs_tolerance"),
        ({"threshold": 0.5}, "scorer 'extract' takes no option 'threshold'"),
        ({"tolerance": 0.5}, "scorer 'extract' takes no option 'tolerance'"),
    ],
)
def test_bad_options_in_the_config(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(data={"tasks": {"t": {"scorers": {"extract": options}}}})


def test_options_the_scorer_refuses_are_config_errors_naming_the_key() -> None:
    config = load_config(
        data={"tasks": {"t": {"scorers": {"extract": {"choices": ["yes", "YES"]}}}}}
    )
    with pytest.raises(ConfigError, match="tasks.t.scorers.extract.*are the same choice"):
        plan_for(config, "t")


def test_other_scorers_refuse_the_extract_options() -> None:
    with pytest.raises(ConfigError, match="scorer 'similarity' takes no option 'pattern'"):
        load_config(data={"tasks": {"t": {"scorers": {"similarity": {"pattern": "x"}}}}})
