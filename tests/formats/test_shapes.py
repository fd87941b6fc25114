"""Recorded API shapes (``tests/fixtures/shapes/``) and the fake server's answers, checked with the
official SDKs' own types, so both are provably shapes the real APIs send.

For every fixture: the response, stream or error body validates as the SDK's model
(``ChatCompletion`` / ``ChatCompletionChunk``, ``Response`` / ``ResponseStreamEvent``,
``Message`` / ``RawMessageStreamEvent``, the error objects); its request validates as the SDK's
request params; and its ``*.expected.json`` is what the SDK's own readers (its stream
accumulators included) recover from it. Then every fixture request is sent to the fake server
(model swapped for a fake one) and its answer must validate the same way, with the same kind of
content (tool calls where the recording has them, reasoning, truncation, ...).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.shapes.sdk_read import check_request, read_body, read_error, read_stream
from shadowroute.fakellm import (
    EXTRACT_ORDER_SCHEMA,
    LOOKUP_TOOLS,
    TOOL_SIMULATORS,
    FakeLLMServer,
    FakeModel,
    default_settings,
    sample_requests,
    tool_result,
)

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "shapes"
APIS = ("openai_chat", "anthropic", "responses")
REQUIRED = {"text", "tool_calls", "input_tokens", "output_tokens", "finish_reason"}


def fixtures(pattern: str) -> list[Path]:
    return sorted(p for api in APIS for p in (SHAPES / api).glob(pattern))


def ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.name}" for p in paths]


def is_error(path: Path) -> bool:
    return path.name.startswith("error_")


def stem(path: Path) -> str:
    return path.name.split(".")[0]


RESPONSES = [p for p in fixtures("*.json")
             if not p.name.endswith((".request.json", ".expected.json"))]
STREAMS = fixtures("*.sse")
REQUESTS = fixtures("*.request.json")


REJECTED_BY_TYPES = {"openai_chat/error_400", "anthropic/error_400"}
"""Requests recorded for the error they get, which the SDK's request types reject already."""


def matches(view: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        assert view.get(key) == value, (key, view.get(key), value)


# --- the recorded fixtures -------------------------------------------------------------------------
def test_the_folder_holds_every_api_and_feature() -> None:
    names = {f"{p.parent.name}/{p.name}" for p in fixtures("*")}
    for required in (
        "openai_chat/text.json", "openai_chat/tool_calls_parallel.json",
        "openai_chat/text_and_tool_calls.json", "openai_chat/n2.json",
        "openai_chat/stream_text_no_usage.sse", "openai_chat/stream_text_usage.sse",
        "openai_chat/stream_tool_calls.sse", "anthropic/text_and_tool_use.json",
        "anthropic/thinking.json", "anthropic/stream_text_and_tool_use.sse",
        "anthropic/stream_thinking.sse", "responses/text.json", "responses/function_calls.json",
        "responses/reasoning.json", "responses/incomplete.json", "responses/stream_text.sse",
        "responses/stream_function_call.sse",
    ):
        assert required in names
    readme = (SHAPES / "README.md").read_text()
    sections = {part.split("/", 1)[0]: part for part in readme.split("\n## ")[1:]}
    for name in names:  # the README says what each file is, in its API's section
        api, file = name.split("/")
        assert f"| `{file.split('.')[0]}` |" in sections[api], name


@pytest.mark.parametrize("path", RESPONSES + STREAMS, ids=ids(RESPONSES + STREAMS))
def test_fixture_validates_and_gives_what_its_expected_file_says(path: Path) -> None:
    api = path.parent.name
    expected = json.loads(path.with_name(f"{stem(path)}.expected.json").read_text())
    request_path = path.with_name(f"{stem(path)}.request.json")
    request = json.loads(request_path.read_text()) if request_path.exists() else None
    if is_error(path):
        view = read_error(api, json.loads(path.read_text()))
        assert {"status", "error_type", "code", "message"} == set(expected)
        matches(view, {k: v for k, v in expected.items() if k != "status"})
        return
    assert REQUIRED <= set(expected)
    assert request is not None, "a response fixture comes with its request"
    if path.suffix == ".sse":
        assert request.get("stream") is True
        view = read_stream(api, path.read_text(), request)
    else:
        assert not request.get("stream")
        view = read_body(api, json.loads(path.read_text()))
    matches(view, expected)


@pytest.mark.parametrize("path", REQUESTS, ids=ids(REQUESTS))
def test_fixture_request_validates_as_the_sdk_params(path: Path) -> None:
    body = json.loads(path.read_text())
    if f"{path.parent.name}/{stem(path)}" in REJECTED_BY_TYPES:
        with pytest.raises(ValueError):
            check_request(path.parent.name, body)
        return
    check_request(path.parent.name, body)


# --- the fake server: the same requests, and each feature -----------------------------------------
PATHS = {"openai_chat": "/v1/chat/completions", "responses": "/v1/responses",
         "anthropic": "/v1/messages"}
UNKNOWN_MODELS = ("error_404_model",)


@pytest.fixture(scope="module")
def fake() -> Iterator[httpx.Client]:
    settings = default_settings(latency_scale=0.0)
    exact = FakeModel(name="exact", accuracy=1.0, reasoning=True, tool_preamble=0.0)
    claude = FakeModel(name="exact-claude", accuracy=1.0, reasoning=True, tool_preamble=1.0)
    with FakeLLMServer(settings.with_model(exact).with_model(claude)) as server, \
            httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def post(fake: httpx.Client, api: str, body: dict[str, Any]) -> dict[str, Any]:
    """The fake's answer to ``body``, validated and read like a fixture."""
    r = fake.post(PATHS[api], json=body)
    assert r.status_code == 200, r.text
    return read_stream(api, r.text, body) if body.get("stream") else read_body(api, r.json())


@pytest.mark.parametrize("path", REQUESTS, ids=ids(REQUESTS))
def test_fake_answers_each_fixture_request_in_a_valid_shape(fake: httpx.Client,
                                                            path: Path) -> None:
    api = path.parent.name
    body = json.loads(path.read_text())
    expected = json.loads(path.with_name(f"{stem(path)}.expected.json").read_text())
    if stem(path) not in UNKNOWN_MODELS:
        body["model"] = "exact"
    if body.get("previous_response_id", "").startswith("resp_689c7f0c"):  # made by a first call
        first = json.loads((SHAPES / "responses" / "function_calls.request.json").read_text())
        made = fake.post(PATHS[api], json=first | {"model": "exact"}).json()
        body["previous_response_id"] = made["id"]
    if is_error(path):
        r = fake.post(PATHS[api], json=body)
        assert r.status_code == expected["status"], r.text
        assert read_error(api, r.json())["error_type"] == expected["error_type"]
        return
    view = post(fake, api, body)
    assert view.get("error") is None
    if "error" in expected:  # a recorded failure mid-stream; the fake's stream completes
        return
    # The same kind of answer as the recording: usage or not, reasoning, truncation, n, JSON.
    for key in ("input_tokens", "output_tokens"):
        assert (view[key] is None) == (expected[key] is None), key
    if expected["finish_reason"] == "length":
        assert view["finish_reason"] == "length"
    if expected.get("reasoning_tokens"):
        assert view["reasoning_tokens"] > 0
    if expected.get("thinking"):
        assert view["thinking"]
    if expected.get("choices"):
        assert len(view["choices"]) == len(expected["choices"])
    if "json" in expected:
        assert isinstance(view.get("json"), dict) and set(view["json"]) == set(expected["json"])


# Feature requests for the fake: the lookup_order agent with two order ids (parallel calls).
LOOKUP = TOOL_SIMULATORS["lookup_order"]
ASK = "Where are my orders KT-40215 and MP-77310? Neither has arrived."
CALLS = [{"name": "get_shipping", "arguments": {"order_id": "KT-40215"}},
         {"name": "get_shipping", "arguments": {"order_id": "MP-77310"}}]
CHAT_TOOLS = LOOKUP_TOOLS
CLAUDE_TOOLS = [{"name": t["function"]["name"], "description": t["function"]["description"],
                 "input_schema": t["function"]["parameters"]} for t in LOOKUP_TOOLS]
RESPONSES_TOOLS = [{"type": "function", **t["function"]} for t in LOOKUP_TOOLS]
RESULTS = [tool_result(c["name"], c["arguments"]) for c in CALLS]


def chat(model: str = "exact", **extra: Any) -> dict[str, Any]:
    return {"model": model, "tools": CHAT_TOOLS, "messages": [
        {"role": "system", "content": LOOKUP.system_prompt}, {"role": "user", "content": ASK}]
            } | extra


def chat_turn2() -> dict[str, Any]:
    body = chat()
    ids_ = ["call_a", "call_b"]
    body["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": i, "type": "function", "function": {"name": c["name"],
                                                       "arguments": json.dumps(c["arguments"])}}
            for i, c in zip(ids_, CALLS, strict=True)]},
        *({"role": "tool", "tool_call_id": i, "content": r}
          for i, r in zip(ids_, RESULTS, strict=True))]
    return body


def claude(model: str = "exact-claude", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 2048, "system": LOOKUP.system_prompt,
            "tools": CLAUDE_TOOLS, "messages": [{"role": "user", "content": ASK}]} | extra


def claude_turn2() -> dict[str, Any]:
    body = claude()
    body["messages"] += [
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": f"toolu_{k}", "name": c["name"], "input": c["arguments"]}
            for k, c in enumerate(CALLS)]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{k}", "content": r}
            for k, r in enumerate(RESULTS)]}]
    return body


def resp(**extra: Any) -> dict[str, Any]:
    return {"model": "exact", "instructions": LOOKUP.system_prompt, "input": ASK,
            "tools": RESPONSES_TOOLS} | extra


def resp_turn2() -> dict[str, Any]:
    items = [{"type": "function_call", "call_id": f"call_{k}", "name": c["name"],
              "arguments": json.dumps(c["arguments"])} for k, c in enumerate(CALLS)]
    items += [{"type": "function_call_output", "call_id": f"call_{k}", "output": r}
              for k, r in enumerate(RESULTS)]
    return resp(input=[{"role": "user", "content": ASK}, *items])


PLAIN = [{"role": "user", "content": "How should I plan a weekend trip to Lyon?"}]
ORDER = sample_requests(1, seed=3, tasks=["extract_order"])[0].request["messages"]
SCHEMA = EXTRACT_ORDER_SCHEMA
THINK = {"type": "enabled", "budget_tokens": 1024}

FEATURES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # name: (api, request, what the SDK's reading of the answer must show)
    "chat/text": ("openai_chat", {"model": "exact", "messages": PLAIN},
                  {"finish_reason": "stop", "tool_calls": []}),
    "chat/tool_calls_parallel": ("openai_chat", chat(),
                                 {"text": None, "tool_calls": CALLS, "finish_reason": "tool_calls"}),
    "chat/text_and_tool_calls": ("openai_chat", chat("exact-claude"),
                                 {"text": "Let me look that up.", "tool_calls": CALLS}),
    "chat/tool_results": ("openai_chat", chat_turn2(), {"tool_calls": [], "finish_reason": "stop"}),
    "chat/n2": ("openai_chat", {"model": "exact", "messages": PLAIN, "n": 2}, {}),
    "chat/reasoning": ("openai_chat", {"model": "exact", "messages": PLAIN,
                                       "reasoning_effort": "low"}, {}),
    "chat/length": ("openai_chat", {"model": "exact", "messages": PLAIN, "max_tokens": 5},
                    {"finish_reason": "length"}),
    "chat/structured_output": ("openai_chat", {"model": "exact", "messages": ORDER,
                               "response_format": {"type": "json_schema", "json_schema": {
                                   "name": "order", "strict": True, "schema": SCHEMA}}}, {}),
    "chat/stream_text_no_usage": ("openai_chat", {"model": "exact", "messages": PLAIN,
                                                  "stream": True}, {"input_tokens": None}),
    "chat/stream_text_usage": ("openai_chat", {"model": "exact", "messages": PLAIN, "stream": True,
                               "stream_options": {"include_usage": True}}, {}),
    "chat/stream_tool_calls": ("openai_chat", chat(stream=True, stream_options={
        "include_usage": True}), {"text": None, "tool_calls": CALLS}),
    "chat/stream_text_and_tool_calls": ("openai_chat", chat("exact-claude", stream=True),
                                        {"text": "Let me look that up.", "tool_calls": CALLS}),
    "chat/stream_n2": ("openai_chat", {"model": "exact", "messages": PLAIN, "n": 2,
                                       "stream": True}, {}),
    "anthropic/text": ("anthropic", {"model": "exact", "max_tokens": 300, "messages": PLAIN},
                       {"finish_reason": "stop"}),
    "anthropic/text_and_tool_use": ("anthropic", claude(),
                                    {"text": "Let me look that up.", "tool_calls": CALLS,
                                     "native_finish_reason": "tool_use"}),
    "anthropic/tool_use_only": ("anthropic", claude("exact"), {"text": None, "tool_calls": CALLS}),
    "anthropic/tool_result": ("anthropic", claude_turn2(), {"native_finish_reason": "end_turn"}),
    "anthropic/thinking": ("anthropic", {"model": "exact", "max_tokens": 2048, "messages": PLAIN,
                                         "thinking": THINK}, {}),
    "anthropic/thinking_tool_use": ("anthropic", claude(thinking=THINK), {"tool_calls": CALLS}),
    "anthropic/max_tokens": ("anthropic", {"model": "exact", "max_tokens": 5, "messages": PLAIN},
                             {"native_finish_reason": "max_tokens"}),
    "anthropic/structured_output": ("anthropic", {
        "model": "exact", "max_tokens": 300, "system": ORDER[0]["content"], "messages": ORDER[1:],
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}, {}),
    "anthropic/stream_text": ("anthropic", {"model": "exact", "max_tokens": 300,
                                            "messages": PLAIN, "stream": True}, {}),
    "anthropic/stream_text_and_tool_use": ("anthropic", claude(stream=True),
                                           {"text": "Let me look that up.", "tool_calls": CALLS}),
    "anthropic/stream_thinking": ("anthropic", claude(thinking=THINK, stream=True),
                                  {"tool_calls": CALLS}),
    "responses/text": ("responses", {"model": "exact", "input": "How should I plan a weekend "
                                                                 "trip to Lyon?"},
                       {"finish_reason": "stop"}),
    "responses/function_calls": ("responses", resp(),
                                 {"text": None, "tool_calls": CALLS, "finish_reason": "tool_calls"}),
    "responses/function_call_output": ("responses", resp_turn2(), {"finish_reason": "stop"}),
    "responses/reasoning": ("responses", resp(reasoning={"effort": "medium", "summary": "auto"}),
                            {"tool_calls": CALLS}),
    "responses/incomplete": ("responses", {"model": "exact", "input": PLAIN,
                                           "max_output_tokens": 16},
                             {"native_finish_reason": "incomplete:max_output_tokens"}),
    "responses/incomplete_reasoning_only": ("responses", {
        "model": "exact", "input": PLAIN, "max_output_tokens": 16, "reasoning": {"effort": "high"}},
        {"text": None, "finish_reason": "length"}),
    "responses/structured_output": ("responses", {
        "model": "exact", "input": ORDER, "text": {"format": {
            "type": "json_schema", "name": "order", "schema": SCHEMA, "strict": True}}}, {}),
    "responses/stream_text": ("responses", {"model": "exact", "input": PLAIN, "stream": True},
                              {"finish_reason": "stop"}),
    "responses/stream_function_call": ("responses", resp(stream=True), {"tool_calls": CALLS}),
    "responses/stream_reasoning": ("responses", resp(stream=True, reasoning={
        "effort": "low", "summary": "detailed"}), {"tool_calls": CALLS}),
    "responses/stream_incomplete": ("responses", {"model": "exact", "input": PLAIN, "stream": True,
                                                  "max_output_tokens": 16},
                                    {"finish_reason": "length"}),
}


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_fake_answers_each_feature_in_the_real_shape(fake: httpx.Client, name: str) -> None:
    api, body, wanted = FEATURES[name]
    view = post(fake, api, body)
    matches(view, wanted)
    streamed_without_usage = api == "openai_chat" and body.get("stream") and not body.get(
        "stream_options")
    assert (view["input_tokens"] is None) == bool(streamed_without_usage)
    if "n" in body:
        assert [c["index"] for c in view["choices"]] == [0, 1]
    if "reasoning_effort" in body or "reasoning" in body:
        assert view["reasoning_tokens"] > 0
    if name.startswith("responses/") and "reasoning" in body:
        assert bool(view["reasoning_summary"]) == ("summary" in body["reasoning"])
    if "thinking" in body:
        assert view["thinking"]
    if "schema" in json.dumps(body.get("response_format") or body.get("output_config")
                              or body.get("text") or {}):
        data = view["json"]
        assert set(data) == set(SCHEMA["properties"])
