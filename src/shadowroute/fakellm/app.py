"""The fake LLM server as a Starlette ASGI app.

Routes::

    POST /v1/chat/completions    OpenAI chat completions (stream or not; tools, n, reasoning)
    POST /v1/responses           OpenAI Responses (stream or not; tools, reasoning, stored
                                 responses for previous_response_id)
    POST /v1/messages            Anthropic Messages (stream or not; tools, thinking)
    GET  /v1/models[/{name}]     the roster, with prices
    POST /_fake/models/{name}    change (or add) a model at runtime; returns its new settings
    GET  /_fake/settings         seed, latency scale and every model's settings
    GET  /_fake/stats            per-model call counts;  POST /_fake/reset clears them

The first answer to a request is a pure function of (seed, model, messages) -- see
:func:`~shadowroute.fakellm.tasks.simulate` -- and does not depend on the API it came through
(requests are made canonical first, see ``fakellm/_wire.py``; the answer is built in
``fakellm/_answer.py`` and shaped by ``_openai.py``, ``_responses.py`` or ``_anthropic.py``). The
server counts answered repeats of each identical (model, messages) request (an LRU of
:attr:`FakeState.REPEAT_MEMORY` keys); a repeat keeps the first answer with the model's
``consistency`` and is otherwise drawn afresh, so a replay of the primary can disagree with it
(``n`` choices count as ``n`` repeats). A request holding a judge prompt is answered by the
simulated judge instead (:mod:`shadowroute.fakellm._judge`, task ``"judge"`` in the stats; no
repeat counting). Faults and latency jitter are drawn per call from (seed, model, call number),
so a retry of a failed call can succeed.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._answer import build_completion
from ._anthropic import (
    AnthropicRequest,
    anthropic_ask,
    anthropic_body,
    anthropic_error,
    anthropic_events,
)
from ._judge import JUDGE_TASK, find_judge_prompt
from ._openai import OpenAIRequest, openai_ask, openai_body, openai_chunks, openai_error
from ._responses import (
    ResponsesRequest,
    responses_ask,
    responses_body,
    responses_events,
    stored_after,
)
from ._state import FakeState
from ._wire import Api, Ask, describe_validation_error
from .models import DEFAULT_SETTINGS, FakeLLMSettings, FakeModel
from .tasks import task_name

__all__ = ["FakeState", "create_app"]

_CREATED = 1_700_000_000


def _call_rng(seed: int, model: str, seq: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{model}\x00call\x00{seq}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _latency_s(model: FakeModel, scale: float, rng: random.Random) -> float:
    jitter = rng.uniform(-model.latency_jitter_ms, model.latency_jitter_ms)
    return max(0.0, model.latency_ms + jitter) * scale / 1000.0


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


_GARBAGE_BODIES = (
    b'{"id": "chatcmpl-garbage", "object": "chat.completion", "choices": [{"message": {"con',
    b"<html><head><title>502 Bad Gateway</title></head><body>upstream hiccup</body></html>",
    b"OK",
    b'{"status": "ok", "result": null}',  # valid JSON, but not a completion
)


class _Handler:
    """One API flavour's request handling; the flavours differ only in wire format."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def error(self, status: int, message: str, headers: dict[str, str] | None = None, *,
              param: str | None = None, code: str | None = None) -> Response:
        body = (anthropic_error(status, message) if self.api == "anthropic"
                else openai_error(status, message, param=param, code=code))
        return JSONResponse(body, status_code=status, headers=headers)

    def parse(self, data: dict[str, Any], state: FakeState) -> Ask:
        """The body as an :class:`Ask` (raises ``ValidationError`` or :class:`_BadRequest`)."""
        if self.api == "openai":
            return openai_ask(OpenAIRequest.model_validate(data))
        if self.api == "anthropic":
            return anthropic_ask(AnthropicRequest.model_validate(data))
        req = ResponsesRequest.model_validate(data)
        previous = None
        if req.previous_response_id is not None:
            previous = state.stored_response(req.previous_response_id)
            if previous is None:
                raise _BadRequest(404, f"Previous response with id '{req.previous_response_id}' "
                                  "not found.", param="previous_response_id",
                                  code="previous_response_not_found")
        elif not req.input:
            raise _BadRequest(400, "Missing required parameter: 'input'.", param="input",
                              code="missing_required_parameter")
        return responses_ask(req, previous)

    async def handle(self, request: Request) -> Response:
        state: FakeState = request.app.state.fake
        try:
            data = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self.error(400, "We could not parse the JSON body of your request.")
        if not isinstance(data, dict):
            return self.error(400, "The request body must be a JSON object.")
        try:
            ask = self.parse(data, state)
        except ValidationError as exc:
            return self.error(400, f"Invalid request: {describe_validation_error(exc)}")
        except _BadRequest as exc:
            return self.error(exc.status, exc.message, param=exc.param, code=exc.code)

        model = state.model(ask.model)
        if model is None:
            return self.error(404, f"The model `{ask.model}` does not exist or you do not have "
                                   "access to it.")
        judge = find_judge_prompt(ask.messages)
        task = JUDGE_TASK if judge is not None else task_name(ask.messages)
        seq = state.begin_call(model.name, self.api, task)
        rng = _call_rng(state.seed, model.name, seq)
        delay = _latency_s(model, state.latency_scale, rng)
        call_id = hashlib.sha256(f"{state.seed}:{model.name}:{seq}".encode()).hexdigest()[:24]
        headers = {"x-request-id": f"req_{call_id}", "request-id": f"req_{call_id}"}

        if model.hang:
            state.record(model.name, "hangs")
            with anyio.move_on_after(state.hang_seconds):
                while not state.closing.is_set() and not await request.is_disconnected():
                    await anyio.sleep(0.05)
            return self.error(504, "The simulated model hung.", headers)
        if rng.random() < model.error_rate:
            state.record(model.name, "errors")
            await anyio.sleep(delay)
            status = model.error_status
            if model.retry_after is not None and status in (429, 503, 529):
                headers["retry-after"] = _format_seconds(model.retry_after)
                headers["retry-after-ms"] = str(int(model.retry_after * 1000))
            return self.error(status, f"Simulated error {status} from model `{model.name}`.",
                              headers)
        await anyio.sleep(delay)
        if model.garbage:
            state.record(model.name, "garbage")
            return self._garbage(rng, ask.stream, headers)

        completion = build_completion(state, model, ask, api=self.api, call_id=call_id,
                                      task=task, judge=judge)
        state.record(model.name, "ok")
        if self.api == "responses" and ask.extra["request"].store is not False:
            state.store_response(f"resp_{call_id}", stored_after(ask, completion))
        if not ask.stream:
            if self.api == "openai":
                body = openai_body(completion)
            elif self.api == "anthropic":
                body = anthropic_body(completion)
            else:
                body = responses_body(ask, completion)
            return JSONResponse(body, headers=headers)
        if self.api == "openai":
            events = openai_chunks(completion, include_usage=ask.include_usage)
        elif self.api == "anthropic":
            events = anthropic_events(completion)
        else:
            events = responses_events(ask, completion)
        return StreamingResponse(_paced(events), media_type="text/event-stream",
                                 headers=headers | {"cache-control": "no-cache"})

    def _garbage(self, rng: random.Random, stream: bool, headers: dict[str, str]) -> Response:
        if stream:
            if self.api == "openai":
                body = 'data: {"id": "chatcmpl-garbage", "choices": [{"delta": {"cont\n\n'
                body += "data: [DONE]\n\n"
            elif self.api == "anthropic":
                body = "event: message_start\ndata: {\"type\": \"message_start\", \"mess\n\n"
            else:
                body = ("event: response.created\ndata: {\"type\": \"response.created\", "
                        "\"resp\n\n")
            return Response(body, media_type="text/event-stream", headers=headers)
        return Response(rng.choice(_GARBAGE_BODIES), media_type="application/json",
                        headers=headers)


async def _paced(events: Any) -> Any:
    for event in events:
        yield event
        await anyio.sleep(0)  # let other requests run between chunks


def _model_entry(m: FakeModel) -> dict[str, Any]:
    return {
        "id": m.name, "object": "model", "type": "model", "created": _CREATED,
        "created_at": "2023-11-14T22:13:20Z", "display_name": m.name, "owned_by": m.owned_by,
        "input_price": m.input_price, "output_price": m.output_price,
    }


async def _list_models(request: Request) -> Response:
    entries = [_model_entry(m) for m in request.app.state.fake.models()]
    return JSONResponse({
        "object": "list", "data": entries, "has_more": False,
        "first_id": entries[0]["id"] if entries else None,
        "last_id": entries[-1]["id"] if entries else None,
    })


async def _get_model(request: Request) -> Response:
    name = request.path_params["name"]
    model = request.app.state.fake.model(name)
    if model is None:
        return JSONResponse(openai_error(404, f"The model `{name}` does not exist."), 404)
    return JSONResponse(_model_entry(model))


async def _update_model(request: Request) -> Response:
    try:
        changes = json.loads(await request.body() or b"{}")
        if not isinstance(changes, dict):
            raise ValueError("body must be a JSON object")
        model = request.app.state.fake.update_model(request.path_params["name"], changes)
    except ValidationError as exc:
        return JSONResponse(openai_error(400, describe_validation_error(exc)), 400)
    except (ValueError, UnicodeDecodeError) as exc:
        return JSONResponse(openai_error(400, f"Invalid JSON body: {exc}"), 400)
    return JSONResponse(model.model_dump())


async def _settings(request: Request) -> Response:
    return JSONResponse(request.app.state.fake.settings().model_dump())


async def _stats(request: Request) -> Response:
    return JSONResponse(request.app.state.fake.stats())


async def _reset(request: Request) -> Response:
    request.app.state.fake.reset_stats()
    return JSONResponse({"ok": True})


def create_app(settings: FakeLLMSettings | None = None) -> Starlette:
    """The ASGI app; its state (roster copy, stats) is ``app.state.fake`` (a :class:`FakeState`)."""
    app = Starlette(routes=[
        Route("/v1/chat/completions", _Handler("openai").handle, methods=["POST"]),
        Route("/v1/responses", _Handler("responses").handle, methods=["POST"]),
        Route("/v1/messages", _Handler("anthropic").handle, methods=["POST"]),
        Route("/v1/models", _list_models, methods=["GET"]),
        Route("/v1/models/{name:path}", _get_model, methods=["GET"]),
        Route("/_fake/models/{name:path}", _update_model, methods=["POST"]),
        Route("/_fake/settings", _settings, methods=["GET"]),
        Route("/_fake/stats", _stats, methods=["GET"]),
        Route("/_fake/reset", _reset, methods=["POST"]),
    ])
    app.state.fake = FakeState(settings if settings is not None else DEFAULT_SETTINGS)
    return app
