"""Hypothesis settings and strategies shared by the property tests of every parser that reads
what a client or an upstream sends (tests/formats, tests/capture, tests/offline, tests/sidecar).

The contract checked everywhere: bad input is answered with the documented error -- ValueError
from the parsers, a 4xx in the API's JSON error shape from the sidecar -- never with another
exception type or a 500. Bugs these found keep an ``@example`` of the input that found them.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def fuzz(examples: int) -> settings:
    """Bounded runs (the file stays well under 20 s); no example database left in the tree: the
    inputs that found bugs are kept as explicit ``@example``s instead."""
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


DEEP = 50_000
"""Nesting far past the interpreter's recursion limit (json.loads raises RecursionError)."""


# =========================================================================== strategies

# Text that survives UTF-8 (no lone surrogates).
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=10)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=8,
)
"""Any JSON value (NaN and infinities included: Python's json reads and writes them)."""


junk = scalars | st.lists(scalars, max_size=2) | st.dictionaries(texts, scalars, max_size=2)
"""A value of the wrong JSON type, cheaply (shallow: wrong types matter here, not depth)."""


def junk_or(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right shape, sometimes a value of another JSON type in its place."""
    return st.one_of(good, good, junk)


def shaped(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict of the given shape; every value may be replaced by junk, extra keys appear."""
    return st.builds(
        lambda base, extra: {**extra, **base},
        st.fixed_dictionaries({k: junk_or(v) for k, v in required.items()},
                              optional={k: junk_or(v) for k, v in optional.items()}),
        st.one_of(st.just({}), st.just({}), st.just({}), st.dictionaries(texts, junk, max_size=1)),
    )


# ---- OpenAI / Anthropic requests and responses, with wrong types mixed in

o_part = shaped({"type": st.sampled_from(["text", "image_url", "input_audio", "file"])},
                {"text": texts, "image_url": shaped({}, {"url": st.sampled_from(
                    ["data:image/png;base64,AAAA", "https://x.test/a.png", "data:", ""])})})
o_content = st.none() | texts | st.lists(o_part | texts, max_size=3)
o_tool_call = shaped({"id": texts, "type": st.just("function")},
                     {"function": shaped({}, {"name": texts, "arguments": texts | st.just('{"a": 1}')})})
o_message = shaped(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"])},
    {"content": o_content, "tool_calls": st.lists(o_tool_call, max_size=2), "tool_call_id": texts},
)
o_tool = shaped({"type": st.just("function")},
                {"function": shaped({"name": texts}, {"description": texts, "parameters": json_values})})
openai_requests = shaped(
    {"model": texts, "messages": st.lists(o_message, max_size=4)},
    {"max_tokens": st.integers(), "max_completion_tokens": st.integers(),
     "temperature": st.floats() | st.integers() | texts, "top_p": st.floats(),
     "stream": st.booleans(), "stop": texts | st.lists(texts, max_size=2),
     "tools": st.lists(o_tool, max_size=2),
     "tool_choice": st.sampled_from(["auto", "none", "required"]) | shaped({}, {"function": shaped({}, {"name": texts})}),
     "parallel_tool_calls": st.booleans(), "user": texts},
)

a_source = shaped({"type": st.sampled_from(["base64", "url"])},
                  {"media_type": texts, "data": texts, "url": texts})
a_block = shaped(
    {"type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "document"])},
    {"text": texts, "source": a_source, "id": texts, "name": texts, "input": json_values,
     "tool_use_id": texts, "content": texts | st.lists(shaped({"type": st.just("text")}, {"text": texts}), max_size=2)},
)
a_message = shaped({"role": st.sampled_from(["user", "assistant"])},
                   {"content": texts | st.lists(a_block | texts, max_size=3)})
a_tool = shaped({"name": texts}, {"description": texts, "input_schema": json_values})
anthropic_requests = shaped(
    {"model": texts, "messages": st.lists(a_message, max_size=4)},
    {"system": texts | st.lists(shaped({"type": st.just("text")}, {"text": texts}) | texts, max_size=2),
     "max_tokens": st.integers(), "temperature": st.floats(), "top_p": st.floats(),
     "stream": st.booleans(), "stop_sequences": st.lists(texts, max_size=2),
     "tools": st.lists(a_tool, max_size=2),
     "tool_choice": shaped({"type": st.sampled_from(["auto", "any", "none", "tool"])},
                           {"name": texts, "disable_parallel_tool_use": st.booleans()}),
     "metadata": shaped({}, {"user_id": texts})},
)

token_counts = st.integers(0, 10**6) | st.floats() | texts | st.none()
a_usage = shaped({}, {k: token_counts for k in (
    "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")})
anthropic_responses = shaped(
    {"type": st.just("message"), "content": st.lists(a_block, max_size=4)},
    {"id": texts, "model": texts, "role": st.just("assistant"), "usage": a_usage,
     "stop_reason": st.sampled_from(["end_turn", "max_tokens", "tool_use", "refusal"]) | json_values,
     "error": json_values},
)
o_usage = shaped({}, {"prompt_tokens": token_counts, "completion_tokens": token_counts})
openai_responses = shaped(
    {"choices": st.lists(shaped({"index": st.integers(0, 3)}, {
        "message": shaped({"role": st.just("assistant")}, {"content": o_content,
                                                             "tool_calls": st.lists(o_tool_call, max_size=2)}),
        "finish_reason": st.sampled_from(["stop", "length", "tool_calls"])}), max_size=2)},
    {"id": texts, "model": texts, "usage": o_usage, "object": st.just("chat.completion")},
)


def call_or_value_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args)``, or ``None`` when it raised ValueError (the documented error); any other
    exception type fails the test."""
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return None


def finite(value: Any) -> bool:
    """No NaN anywhere (NaN != NaN would make equality checks meaningless)."""
    return value == value if isinstance(value, float) else (
        all(finite(v) for v in value) if isinstance(value, list) else
        all(finite(v) for v in value.values()) if isinstance(value, dict) else True)


# ---- bodies as they come over the wire

a_completion = {"id": "c", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Bytes as a body might carry them: anything, JSON of any shape, a valid completion, gzipped
    or not, cut short or not."""
    kind = draw(st.sampled_from(["bytes", "json", "shaped", "completion", "deep"]))
    if kind == "bytes":
        raw = draw(st.binary(max_size=200))
    elif kind == "json":
        raw = json.dumps(draw(json_values)).encode()
    elif kind == "shaped":
        raw = json.dumps(draw(anthropic_responses | openai_responses | anthropic_requests | openai_requests)).encode()
    elif kind == "completion":
        raw = json.dumps(a_completion).encode()
    else:
        depth = draw(st.integers(900, 3000))  # around the interpreter's recursion limit
        raw = b'{"a":' * depth + b"1" + b"}" * depth
    wrap = draw(st.sampled_from(["none", "gzip", "deflate", "raw-deflate", "cut"]))
    if wrap == "gzip":
        raw = gzip.compress(raw)
    elif wrap == "deflate":
        raw = zlib.compress(raw)
    elif wrap == "raw-deflate":
        deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        raw = deflate.compress(raw) + deflate.flush()
    elif wrap == "cut":
        raw = raw[:draw(st.integers(0, len(raw)))]
    return raw


COMPLETION = json.dumps(a_completion).encode()
"""A valid chat completion, as bytes."""
MESSAGE = json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                      "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                      "usage": {"input_tokens": 2, "output_tokens": 1}}).encode()
"""A valid Messages API response, as bytes."""
