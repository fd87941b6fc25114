"""Property tests (hypothesis) of request / response translation: shaped JSON with wrong types
mixed in, round trips, and nesting around the recursion limit in every field the parsers touch.
Bad input is a ValueError, never another exception.

Bugs these found keep an ``@example`` of the input that found them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from shadowroute.capture.capture import Capture
from shadowroute.formats.anthropic import (
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
from shadowroute.formats.chat import completion_text, completion_usage
from shadowroute.formats.sse import reassemble
from support.fuzz import (
    DEEP,
    MESSAGE,
    anthropic_requests,
    anthropic_responses,
    call_or_value_error,
    finite,
    fuzz,
    json_values,
    openai_requests,
    openai_responses,
    texts,
)

# =========================================================================== translation


@fuzz(80)
@given(body=anthropic_requests | st.dictionaries(texts, json_values, max_size=4))
@example(body={"messages": "hi"})
@example(body={"messages": [1]})
@example(body={"system": [1], "messages": []})
@example(body={"metadata": [], "messages": [], "tool_choice": {"type": []}})
def test_anthropic_request_to_openai_is_a_dict_or_a_value_error(body: dict[str, Any]) -> None:
    out = call_or_value_error(anthropic_request_to_openai, body)
    assert out is None or isinstance(out["messages"], list)


@fuzz(80)
@given(body=openai_requests | st.dictionaries(texts, json_values, max_size=4))
@example(body={"messages": [{"role": "assistant", "tool_calls": "x"}]})
@example(body={"temperature": [1]})
@example(body={"temperature": 10**400})
@example(body={"stop": 1})
@example(body={"tools": [{"type": "function", "function": "f"}], "tool_choice": ["x"]})
@example(body={"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 1}}]}]})
def test_openai_request_to_anthropic_is_a_dict_or_a_value_error(body: dict[str, Any]) -> None:
    out = call_or_value_error(openai_request_to_anthropic, body)
    assert out is None or (isinstance(out["messages"], list) and out["max_tokens"])


@fuzz(80)
@given(body=anthropic_responses | openai_responses | st.dictionaries(texts, json_values, max_size=4))
@example(body={"type": "message", "content": [], "usage": {"input_tokens": "5", "output_tokens": 1}})
@example(body={"type": "message", "content": [], "usage": {"input_tokens": float("inf")}})
@example(body={"type": "message", "content": [], "usage": []})
@example(body={"type": "message", "content": [], "stop_reason": ["end_turn"]})
@example(body={"type": "message", "content": [{"type": "text", "text": 5}]})
@example(body={"choices": [{"message": {"content": None, "tool_calls": "x"}}]})
@example(body={"choices": [{"message": {"tool_calls": [{"function": {"arguments": "[" * DEEP}}]}}]})
@example(body={"choices": [], "usage": {"prompt_tokens": 1e400}})
def test_responses_translate_or_raise_value_error(body: dict[str, Any]) -> None:
    out = call_or_value_error(anthropic_response_to_openai, body)
    assert out is None or out["object"] == "chat.completion"
    for response in (body, out or {}):
        text = completion_text(response)
        assert text is None or isinstance(text, str)
        usage = call_or_value_error(completion_usage, response)
        assert usage is None or all(n is None or isinstance(n, int) for n in usage)


text_blocks = st.builds(lambda t: {"type": "text", "text": t}, texts)
tool_blocks = st.builds(lambda i, n, a: {"type": "tool_use", "id": i, "name": n, "input": a},
                        texts, texts, st.dictionaries(texts, json_values.filter(finite), max_size=3))
other_blocks = st.builds(lambda t: {"type": "thinking", "thinking": t, "signature": "s"}, texts)


@fuzz(50)
@given(blocks=st.lists(text_blocks | tool_blocks | other_blocks, max_size=6),
       usage=st.fixed_dictionaries({"input_tokens": st.integers(0, 10**9), "output_tokens": st.integers(0, 10**9)},
                                   optional={"cache_read_input_tokens": st.integers(0, 10**6)}),
       reason=st.sampled_from(["end_turn", "max_tokens", "tool_use", "stop_sequence", None]))
def test_anthropic_response_text_tools_and_usage_survive_translation(
    blocks: list[dict[str, Any]], usage: dict[str, int], reason: str | None
) -> None:
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": blocks,
            "stop_reason": reason, "usage": usage}
    out = anthropic_response_to_openai(body)
    message = out["choices"][0]["message"]
    texts_in = [b["text"] for b in blocks if b["type"] == "text"]
    tools_in = [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]
    assert message["content"] == ("".join(texts_in) if texts_in or not tools_in else None)
    calls = [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
             for c in message.get("tool_calls", [])]
    assert calls == [(i, n, a or {}) for i, n, a in tools_in]
    prompt = usage["input_tokens"] + usage.get("cache_read_input_tokens", 0)
    assert completion_usage(out) == (prompt, usage["output_tokens"])
    finish = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
    assert out["choices"][0]["finish_reason"] == finish.get(reason)
    joined = "".join(texts_in)
    if not tools_in:
        assert completion_text(out) == joined
    else:  # tool calls, and the text before them: nothing the model said is lost
        assert json.loads(completion_text(out) or "") == {
            "content": joined or None,
            "tool_calls": [{"name": n, "arguments": a or {}} for _, n, a in tools_in]}


chat_turns = st.lists(st.tuples(st.sampled_from(["user", "assistant"]), texts), min_size=1, max_size=5)
request_params = st.fixed_dictionaries({"model": texts, "max_tokens": st.integers(1, 10**6)}, optional={
    "temperature": st.floats(0, 1), "top_p": st.floats(0, 1), "stream": st.booleans(),
    "stop": st.lists(texts.filter(bool), min_size=1, max_size=3), "user": texts.filter(bool),
})
function_tools = st.lists(st.fixed_dictionaries({
    "type": st.just("function"),
    "function": st.fixed_dictionaries(
        {"name": texts, "parameters": st.just({"type": "object", "properties": {"q": {"type": "string"}}})},
        optional={"description": texts}),
}), max_size=2)


@fuzz(60)
@given(system=st.none() | texts.filter(bool), turns=chat_turns, params=request_params, tools=function_tools)
def test_text_requests_round_trip_openai_anthropic_openai(
    system: str | None, turns: list[tuple[str, str]], params: dict[str, Any], tools: list[dict[str, Any]]
) -> None:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": role, "content": content} for role, content in turns]
    request = {**params, "messages": messages, **({"tools": tools} if tools else {})}
    assert anthropic_request_to_openai(openai_request_to_anthropic(request)) == request


def test_nesting_just_under_the_recursion_limit_is_a_result_or_a_value_error() -> None:
    """JSON that json.loads just manages to parse can be too deep to write back (json.dumps) or
    to repr a few frames further down: every depth across the limit, in every nested field the
    parsers touch, is a result or a ValueError. (Found completion_text's RecursionError.)"""
    limit = sys.getrecursionlimit()
    for depth in range(limit - 150, limit + 2):
        nested = "[" * depth + "]" * depth
        cases: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
            (reassemble, (f'data: {{"choices": [{nested}]}}\n\ndata: [DONE]\n\n'.encode(), "openai", True)),
            (reassemble, (f'data: {{"choices": [{{"index": {nested}}}]}}\n\n'.encode(), "openai", True)),
            (reassemble, (f'{{"type": "message", "content": [], "usage": {{"input_tokens": {nested}}}}}'.encode(),
                          "anthropic", False)),
            (reassemble, (f'{{"type": "message", "content": [{{"type": "tool_use", "input": {{"a": {nested}}}}}]}}'
                          .encode(), "anthropic", False)),
            (completion_text, ({"choices": [{"message": {"tool_calls": [{"function": {"arguments": nested}}]}}]},)),
            (openai_request_to_anthropic, ({"messages": [{"role": "assistant", "tool_calls": [
                {"function": {"arguments": nested}}]}]},)),
        ]
        for fn, args in cases:
            call_or_value_error(fn, *args)
        request = f'{{"messages": [{{"role": "user", "content": [{{"type": "tool_use", "input": {nested}}}]}}]}}'
        capture = Capture(task="t", raw_request=request.encode(), raw_response=MESSAGE, api="anthropic")
        call_or_value_error(capture.resolve)
