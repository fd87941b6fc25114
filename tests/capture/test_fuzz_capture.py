"""Property tests (hypothesis) of capture resolution: raw bodies in any content encoding, and
Python objects of any shape. Bad input is a ValueError, never another exception.

Bugs these found keep an ``@example`` of the input that found them.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shadowroute import load_config
from shadowroute.capture.capture import Capture, decode_body
from shadowroute.config import Config
from support.fuzz import (
    DEEP,
    anthropic_requests,
    anthropic_responses,
    bodies,
    call_or_value_error,
    fuzz,
    json_values,
    openai_requests,
    openai_responses,
    texts,
)

# =========================================================================== captures

ENCODINGS = ["gzip", "x-gzip", "deflate", "br", "zstd", "identity", "compress", "gzip, identity",
             "deflate, gzip", "", " , ", "GZIP", "chunked"]


@pytest.fixture(scope="module")
def fuzz_config() -> Config:
    return load_config(data={"database_url": "sqlite+aiosqlite:///unused.db",
                             "models": {"m": {"base_url": "http://127.0.0.1:9/v1",
                                              "input_price": 1.0, "output_price": 2.0}}})


@fuzz(60)
@given(request=bodies(), response=bodies(), encoding=st.sampled_from(ENCODINGS) | texts,
       api=st.sampled_from(["openai", "anthropic"]), streamed=st.booleans())
@example(request=b'{"messages": []}', response=b"not gzip at all", encoding="gzip", api="openai", streamed=False)
@example(request=b"[" * DEEP, response=b"{}", encoding="", api="openai", streamed=False)
@example(request=b'{"messages": []}', response=b"\x78\x9c garbage", encoding="deflate", api="openai", streamed=False)
def test_capture_resolution_raises_only_value_error(
    fuzz_config: Config, request: bytes, response: bytes, encoding: str, api: Any, streamed: bool
) -> None:
    capture = Capture(task="t", raw_request=request, raw_response=response, content_encoding=encoding,
                      api=api, streamed=streamed)
    try:
        capture.resolve()
    except ValueError:
        return
    record = capture.to_record(fuzz_config)
    assert record.request is capture.request and isinstance(record.request, dict)
    assert record.primary_output is None or isinstance(record.primary_output, str)


@fuzz(60)
@given(request=anthropic_requests | openai_requests | st.dictionaries(texts, json_values, max_size=3),
       result=anthropic_responses | openai_responses | json_values, api=st.sampled_from(["openai", "anthropic"]))
def test_capture_of_python_objects_raises_only_value_error(
    fuzz_config: Config, request: dict[str, Any], result: Any, api: Any
) -> None:
    capture = Capture(task="t", request=request, result=result, api=api)
    try:
        capture.resolve()
    except ValueError:
        return
    assert capture.to_record(fuzz_config).task_type == "t"


@fuzz(150)
@given(body=st.binary(max_size=100), encoding=st.sampled_from(ENCODINGS) | texts)
def test_decode_body_raises_only_value_error(body: bytes, encoding: str) -> None:
    out = call_or_value_error(decode_body, body, encoding)
    assert out is None or isinstance(out, bytes)
