"""shadowroute's own parsers against the recorded shapes of tests/fixtures/shapes (written from the
providers' references and checked against the official SDKs by test_shapes.py): every answer,
stream and error is read as the provider meant it -- text, tool calls, usage, finish reason --
and every request translates to the canonical shape, or is named not shadowable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shadowroute.formats import (
    NotShadowable,
    anthropic_request_to_openai,
    completion_text,
    completion_usage,
    openai_request_to_anthropic,
    openai_request_to_responses,
    parse_answer,
    reassemble,
    responses_request_to_openai,
)
from shadowroute.formats.chat import chat_request

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "shapes"
APIS = {"openai_chat": "openai", "anthropic": "anthropic", "responses": "responses"}


def _bodies() -> list[tuple[str, Path]]:
    found = []
    for folder, api in APIS.items():
        for path in sorted((SHAPES / folder).glob("*")):
            if path.suffix in (".json", ".sse") and not path.name.endswith(
                    (".expected.json", ".request.json")):
                found.append((api, path))
    return found


def _expected(path: Path) -> dict[str, Any]:
    return json.loads(path.with_name(path.name.split(".")[0] + ".expected.json").read_text())


BODIES = _bodies()


def test_the_fixtures_are_there() -> None:
    assert len(BODIES) >= 40, [p.name for _, p in BODIES]
    assert {api for api, _ in BODIES} == set(APIS.values())


@pytest.mark.parametrize(("api", "path"), BODIES, ids=[f"{p.parent.name}/{p.name}" for _, p in BODIES])
def test_each_recorded_answer_is_read_as_the_provider_meant_it(api: str, path: Path) -> None:
    expected = _expected(path)
    streamed = path.suffix == ".sse"
    if "status" in expected or "error" in expected:  # an error body, or a stream that failed
        with pytest.raises(ValueError):
            reassemble(path.read_bytes(), api, streamed)  # type: ignore[arg-type]
        return
    canonical = reassemble(path.read_bytes(), api, streamed)  # type: ignore[arg-type]
    answer = parse_answer(completion_text(canonical))
    # An OpenAI refusal (``message.refusal``) is stored as what the model said.
    assert (answer.content or None) == (expected["text"] or expected.get("refusal") or None)
    assert list(answer.tool_calls or []) == (expected["tool_calls"] or [])
    assert completion_usage(canonical) == (expected["input_tokens"], expected["output_tokens"])
    assert canonical["choices"][0]["finish_reason"] == expected["finish_reason"]
    for choice in expected.get("choices") or []:  # n > 1: every choice was read
        (got,) = [c for c in canonical["choices"] if c["index"] == choice["index"]]
        assert (got["message"]["content"] or None) == (choice["text"] or None)


REQUESTS = [(APIS[p.parent.name], p) for p in sorted(SHAPES.glob("*/*.request.json"))]


@pytest.mark.parametrize(("api", "path"), REQUESTS, ids=[f"{p.parent.name}/{p.name}" for _, p in REQUESTS])
def test_each_recorded_request_becomes_canonical_and_reaches_every_api(
    api: str, path: Path
) -> None:
    body = json.loads(path.read_text())
    dropped: list[str] = []
    try:
        if api == "anthropic":
            canonical = anthropic_request_to_openai(body, dropped)
        elif api == "responses":
            canonical = responses_request_to_openai(body, dropped)
        else:
            canonical = dict(body)
    except NotShadowable as exc:
        assert body.get(exc.feature.split()[0]) or exc.feature.endswith(("tool", "input item"))
        return
    assert canonical["messages"], "a request with nothing to mirror"
    # Every candidate API gets a body without crashing; what it cannot carry is named, once.
    for translate in (chat_request, openai_request_to_responses,
                      lambda b, d: openai_request_to_anthropic(b, dropped=d)):
        names: list[str] = []
        out = translate(canonical, names)
        assert out and len(names) == len(set(names))
