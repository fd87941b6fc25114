"""Runtime checks: what a cascade can say of a candidate's answer without the primary's, on the
shapes stored answers take (text, tool calls, refusals, cut answers, broken JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shadowroute.scoring.checks import CHECKS, Checks

TOOLS = {"tools": [{"type": "function", "function": {
    "name": "get_order", "parameters": {"type": "object", "properties": {
        "order_id": {"type": "string"}}, "required": ["order_id"]}}}]}


def _calls(*calls: tuple[str, str], content: str | None = None) -> str:
    return json.dumps({"content": content, "tool_calls": [
        {"name": name, "arguments": arguments} for name, arguments in calls]})


@pytest.mark.parametrize(("output", "finish", "failed"), [
    ("Paris.", "stop", None),
    ("", "stop", "empty"),
    ("   \n", "stop", "empty"),
    (None, None, "empty"),
    ("The capital of France is", "length", "truncated"),
    ("I'm sorry, but I can't help with that.", "stop", "refusal"),
    ("I don't know the answer to that.", "stop", "refusal"),
    ("As an AI language model, I cannot browse.", "stop", "refusal"),
    ("I know the answer: Paris.", "stop", None),  # "know", not "don't know"
    ("The customer said: I cannot log in.", "stop", None),  # quoting, not refusing
])
def test_text_checks(output: str | None, finish: str | None, failed: str | None) -> None:
    checks = Checks(("empty", "truncated", "refusal"))
    assert checks.failed(output, finish) == failed


def test_a_failed_call_always_escalates() -> None:
    assert Checks(()).failed("Paris.", "stop", error=True) == "error"


def test_tool_arguments_are_checked_against_the_request_s_tools() -> None:
    checks = Checks(("empty", "tool_args"))
    good = _calls(("get_order", '{"order_id": "AA-12"}'))
    assert checks.failed(good, "tool_calls", TOOLS) is None
    assert checks.failed(_calls(("get_order", '{"order_id": 12}')), None, TOOLS) == "tool_args"
    assert checks.failed(_calls(("get_order", '{"order_id": ')), None, TOOLS) == "tool_args"
    assert checks.failed(_calls(("cancel_order", '{"order_id": "AA-12"}')), None,
                         TOOLS) == "tool_args"
    assert checks.failed(_calls(("get_order", "{}")), None, TOOLS) == "tool_args"
    # Tool calls only is an answer: not empty.
    assert Checks(("empty",)).failed(good, "tool_calls") is None


def test_schema_and_extract_use_the_task_s_settings(tmp_path: Path, make_config,
                                                     scoring_preset) -> None:
    config = make_config("sqlite+aiosqlite:///unused.db", scoring_preset)
    checks = Checks.for_task(config, "extract", ["schema", "refusal"])
    assert checks.names == ("refusal", "schema")  # the order checks run in
    order = {"sku": "AA-12345", "qty": 2}
    assert checks.failed(json.dumps(order), "stop") is None
    assert checks.failed(json.dumps({**order, "qty": "2"}), "stop") == "schema"
    assert checks.failed("Sure! " + json.dumps(order), "stop") == "schema"
    with pytest.raises(ValueError, match="json_schema"):
        Checks.for_task(config, "classify", ["schema"])
    with pytest.raises(ValueError, match="unknown check 'spelling'"):
        Checks.for_task(config, "classify", ["spelling"])
    assert Checks.available(config, "classify") == ("empty", "truncated", "refusal",
                                                     "tool_args")
    assert "schema" in Checks.available(config, "extract")
    numbers = Checks.for_task(config, "classify", ["extract"])  # default: the final number
    assert numbers.failed("It costs $18.", "stop") is None
    assert numbers.failed("It costs eighteen dollars.", "stop") == "extract"
    assert set(CHECKS) >= set(Checks.available(config, "extract"))
