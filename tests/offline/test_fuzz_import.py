"""Property tests (hypothesis) of ``shadowroute import``: JSONL lines written by other tools,
candidate answers of every shape included. Every line is imported or reported bad; only the
documented errors leave ``import_file``.

Bugs these found keep an ``@example`` of the input that found them.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import anyio.from_thread
from hypothesis import example, given
from hypothesis import strategies as st

from shadowroute import load_config
from support.fuzz import (
    DEEP,
    anthropic_requests,
    anthropic_responses,
    fuzz,
    json_values,
    openai_requests,
    openai_responses,
    shaped,
    texts,
)

# ---- import (JSONL lines written by other tools)

responses_responses = shaped(
    {"object": st.just("response"), "output": st.lists(json_values | shaped(
        {"type": st.sampled_from(["message", "function_call", "reasoning"])},
        {"content": st.lists(shaped({"type": st.just("output_text")}, {"text": texts}), max_size=2),
         "name": texts, "arguments": texts}), max_size=3)},
    {"status": st.sampled_from(["completed", "incomplete", "failed"]) | json_values,
     "usage": shaped({}, {"input_tokens": st.integers(), "output_tokens": st.integers()}),
     "error": json_values, "incomplete_details": json_values},
)
"""An OpenAI Responses API response, as a candidate's answer."""
answers = openai_responses | anthropic_responses | responses_responses | texts | json_values
chat_lines = shaped(
    {"request": openai_requests | anthropic_requests,
     "response": openai_responses | anthropic_responses | texts},
    {"task": texts, "metadata": json_values, "latency_ms": st.floats() | st.integers(),
     "created_at": st.sampled_from(["2024-05-01T12:00:00Z", "9999-12-31T23:59:59-12:00",
                                    "0001-01-01T00:00:00+14:00", "2024-13-01", "now"]) | json_values,
     "candidates": st.dictionaries(st.sampled_from(["small", "m", "", "primary@replay"]) | texts,
                                   answers, max_size=3)},
)
jsonl_lines = st.one_of(
    chat_lines.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=60).filter(lambda b: b"\n" not in b),
    st.just(b"[" * DEEP), st.just(b'{"request": ' + b"1" * 5000 + b"}"),
    json_values.map(lambda v: json.dumps(v).encode()),
)


def test_import_never_crashes_on_a_bad_line(tmp_path: Path) -> None:
    """Every line is imported or reported bad with a reason; only ConfigError / StoreError (the
    documented errors) ever leave ``import_file``."""
    from shadowroute.offline.importer import import_file
    from shadowroute.store import Store

    config = load_config(data={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'import.db'}"})
    with anyio.from_thread.start_blocking_portal() as portal:
        store = portal.call(Store.open, config.database_url)
        try:
            @fuzz(15)
            @given(lines=st.lists(jsonl_lines, min_size=1, max_size=4))
            @example(lines=[b"[" * DEEP])
            @example(lines=[b'{"request": ' + b"1" * 5000 + b"}"])
            @example(lines=[json.dumps({
                "request": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                "response": {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 1e999}},
            }).encode()])
            @example(lines=[json.dumps({
                "request": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                "response": {"choices": [{"message": {"content": "x"}}]},
                "created_at": "9999-12-31T23:59:59-12:00",
            }).encode()])
            def run(lines: list[bytes]) -> None:
                path = tmp_path / "lines.jsonl"
                path.write_bytes(b"\n".join(lines) + b"\n")
                report = portal.call(lambda: import_file(config, store, path, fmt="chat"))
                accounted = report.imported + report.already_stored + report.bad + report.redaction_errors
                assert report.lines == accounted, report.summary()
                assert all(bad.reason for bad in report.bad_lines)

            run()
        finally:
            portal.call(store.close)
