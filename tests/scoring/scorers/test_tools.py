"""Answers that call tools are compared as calls (name and parsed arguments), not as text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shadowroute.formats import anthropic_response_to_openai, completion_text
from shadowroute.scoring.scorers.exact import ExactScorer
from shadowroute.scoring.scorers.similarity import SimilarityScorer
from shadowroute.scoring.scorers.tools import same_json


def openai_calls(*calls: tuple[str, dict[str, Any]], text: str | None = None) -> str:
    """What shadowroute stores for an OpenAI chat answer making ``calls``."""
    message = {"role": "assistant", "content": text, "tool_calls": [
        {"id": f"call_{i}", "type": "function",
         "function": {"name": name, "arguments": json.dumps(args)}}
        for i, (name, args) in enumerate(calls)]}
    return completion_text({"choices": [{"message": message}]}) or ""


def claude_calls(*calls: tuple[str, dict[str, Any]]) -> str:
    """What shadowroute stores for Claude's usual "Let me look that up." + tool_use blocks."""
    reply = {"type": "message", "role": "assistant", "stop_reason": "tool_use",
             "usage": {"input_tokens": 1, "output_tokens": 1},
             "content": [{"type": "text", "text": "Let me look that up."}, *[
                 {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args}
                 for i, (name, args) in enumerate(calls)]]}
    return completion_text(anthropic_response_to_openai(reply)) or ""


SCORERS = [ExactScorer(), SimilarityScorer()]


@pytest.mark.parametrize("scorer", SCORERS, ids=["exact", "similarity"])
def test_a_claude_candidate_making_the_primarys_calls_passes(scorer: Any) -> None:
    primary = openai_calls(("get_order", {"order_id": "A1"}), ("get_order", {"order_id": "B2"}))
    candidate = claude_calls(("get_order", {"order_id": "B2"}), ("get_order", {"order_id": "A1"}))
    result = scorer.score(primary, candidate)
    assert (result.value, result.passed) == (1.0, True)  # parallel calls: order does not matter
    assert result.details["mode"] == "tool_calls" and result.details["text_ignored"]


@pytest.mark.parametrize("scorer", SCORERS, ids=["exact", "similarity"])
def test_identical_replays_of_a_tool_calling_primary_agree(scorer: Any) -> None:
    answer = openai_calls(("get_order", {"order_id": "A1", "fields": ["status", 2]}),
                          text="Checking.")
    assert scorer.score(answer, answer).passed is True


@pytest.mark.parametrize(("candidate", "value"), [
    (openai_calls(("get_order", {"order_id": "A1"})), 0.5),  # one of two calls missing
    (openai_calls(("get_order", {"order_id": "A1"}), ("get_order", {"order_id": "B2"}),
                  ("cancel_order", {"order_id": "A1"})), 2 / 3),  # an extra call
    (openai_calls(("get_refund", {"order_id": "A1"}), ("get_order", {"order_id": "B2"})), 0.5),
    ("Your orders are on their way.", 0.0),  # answered in text instead of calling the tools
])
def test_missing_extra_and_wrong_calls_fail_exact(candidate: str, value: float) -> None:
    primary = openai_calls(("get_order", {"order_id": "A1"}), ("get_order", {"order_id": "B2"}))
    result = ExactScorer().score(primary, candidate)
    assert result.value == pytest.approx(value, abs=1e-6)
    assert result.passed is False


def test_arguments_are_compared_exactly_even_by_similarity() -> None:
    """A call is an action: a fuzzy match of an argument (an order id one digit off) would pass
    a wrong action, so arguments must be equal; the value keeps partial credit for the report."""
    primary = openai_calls(("ship", {"order_id": "AA-12340", "address": "12 Rue de Lyon"}))
    one_digit_off = openai_calls(("ship", {"order_id": "AA-11340", "address": "12 Rue de Lyon"}))
    result = SimilarityScorer().score(primary, one_digit_off)
    assert (result.value, result.passed) == (0.5, False)
    assert result.details["differing"] == [{"name": "ship", "score": 0.5}]
    reordered = openai_calls(("ship", {"address": "12 Rue de Lyon", "order_id": "AA-12340"}))
    assert SimilarityScorer().score(primary, reordered).passed is True  # key order is not a value
    assert ExactScorer(threshold=0.0).score(primary, one_digit_off).passed is False


def test_a_text_primary_against_a_tool_call_fails_both_ways() -> None:
    calls = openai_calls(("get_order", {"order_id": "A1"}))
    for primary, candidate in (("It shipped.", calls), (calls, "It shipped.")):
        result = SimilarityScorer().score(primary, candidate)
        assert (result.value, result.passed) == (0.0, False)
        assert result.details["reason"] == "one answer called tools, the other did not"


def test_json_equality_keeps_booleans_apart_from_numbers() -> None:
    assert same_json({"n": 1, "x": [1.0]}, {"x": [1], "n": 1.0})
    assert not same_json({"flag": True}, {"flag": 1})
    assert not same_json([1, 2], [2, 1])
