"""Every recorded answer of tests/fixtures/shapes (JSON bodies and SSE streams of OpenAI chat,
Anthropic Messages and the Responses API, written from the providers' references) through the
real sidecar (uvicorn, its aiohttp relay) from a loopback upstream: the client gets the bytes
the upstream sent, and the body the sidecar captures reads as the provider meant it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from shadowroute.formats import completion_text, completion_usage, parse_answer, reassemble
from shadowroute.pipeline.core import Shadow
from shadowroute.serving import BackgroundServer
from support.sidecar import sidecar_server

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "shapes"
PATHS = {"openai_chat": ("openai", "/v1/chat/completions"),
         "anthropic": ("anthropic", "/v1/messages"),
         "responses": ("responses", "/v1/responses")}


def _answers() -> list[Path]:
    found = []
    for folder in PATHS:
        for path in sorted((SHAPES / folder).glob("*")):
            if path.suffix not in (".json", ".sse") or path.name.endswith(
                    (".expected.json", ".request.json")):
                continue
            expected = _expected(path)
            if "status" not in expected and "error" not in expected:  # answers, not errors
                found.append(path)
    return found


def _expected(path: Path) -> dict[str, Any]:
    return json.loads(path.with_name(path.name.split(".")[0] + ".expected.json").read_text())


ANSWERS = _answers()


class Recording(Shadow):
    """A Shadow that keeps what the sidecar offers it instead of mirroring it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.offered: list[dict[str, Any]] = []

    def offer_raw(self, task: str, **fields: Any) -> bool:  # type: ignore[override]
        self.offered.append(fields)
        return True


def upstream_app() -> Starlette:
    """Answers ``POST <api path>`` with the recorded body named by ``x-fixture``: a JSON body
    with its length, an SSE stream event by event (no length; a pause between events, so the
    relay and its capture see them as separate chunks)."""

    async def answer(request: Request) -> Response:
        await request.body()
        path = SHAPES / request.headers["x-fixture"]
        raw = path.read_bytes()
        if path.suffix == ".json":
            return Response(raw, media_type="application/json")

        async def events() -> Any:
            for event in raw.split(b"\n\n"):
                if event.strip():
                    yield event + b"\n\n"
                    await anyio.sleep(0.005)

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route(path, answer, methods=["POST"]) for _, path in PATHS.values()])


@pytest.fixture(scope="module")
def fixture_upstream() -> Any:
    with BackgroundServer(upstream_app(), lifespan="off") as server:
        yield server


def test_the_recorded_answers_are_there() -> None:
    assert {p.parent.name for p in ANSWERS} == set(PATHS)
    assert {p.suffix for p in ANSWERS} == {".json", ".sse"}
    assert len(ANSWERS) >= 25, [p.name for p in ANSWERS]


def test_every_recorded_answer_is_relayed_unchanged_and_captured_whole(
    tmp_path: Path, sqlite_url: str, make_config: Any, sidecar_preset: Any,
    fixture_upstream: BackgroundServer,
) -> None:
    config = make_config(sqlite_url, sidecar_preset(fixture_upstream.base_url))
    shadow = Recording(config)
    with sidecar_server(config, shadow=shadow) as sc, \
            httpx.Client(base_url=sc.base_url, timeout=10) as client:
        for path in ANSWERS:
            api, url = PATHS[path.parent.name]
            recorded = path.with_name(path.name.split(".")[0] + ".request.json")
            request = json.loads(recorded.read_text()) if recorded.exists() else {"model": "m"}
            headers = {"x-fixture": f"{path.parent.name}/{path.name}"}
            if api == "anthropic":
                headers["anthropic-version"] = "2023-06-01"
            before = len(shadow.offered)
            response = client.post(url, json=request, headers=headers)
            assert response.status_code == 200, (path.name, response.text)
            assert response.content == path.read_bytes(), path.name
            assert len(shadow.offered) == before + 1, path.name
            offered = shadow.offered[-1]
            assert offered["api"] == api and offered["source"] == "sidecar"
            assert offered["streamed"] is (path.suffix == ".sse"), path.name
            assert offered["response_body"] == path.read_bytes(), path.name
            expected = _expected(path)
            canonical = reassemble(offered["response_body"], api, offered["streamed"])
            answer = parse_answer(completion_text(canonical))
            assert (answer.content or None) == (
                expected["text"] or expected.get("refusal") or None), path.name
            assert list(answer.tool_calls or []) == (expected["tool_calls"] or []), path.name
            assert completion_usage(canonical) == (
                expected["input_tokens"], expected["output_tokens"]), path.name
