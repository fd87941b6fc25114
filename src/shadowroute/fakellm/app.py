"""The fake LLM server as a Starlette ASGI app.

Routes::

    POST /v1/chat/completions    OpenAI chat completions (stream or not)
    POST /v1/messages            Anthropic Messages (stream or not)
    GET  /v1/models[/{name}]     the roster, with prices
    POST /_fake/models/{name}    change (or add) a model at runtime; returns its new settings
    GET  /_fake/settings         seed, latency scale and every model's settings
    GET  /_fake/stats            per-model call counts;  POST /_fake/reset clears them

The first answer to a request is a pure function of (seed, model, messages) -- see
:func:`~shadowroute.fakellm.tasks.simulate`. The server counts answered repeats of each
identical (model, messages) request (an LRU of :attr:`FakeState.REPEAT_MEMORY` keys); a repeat
keeps the first answer with the model's ``consistency`` and is otherwise drawn afresh, so a
replay of the primary can disagree with it. A request holding a judge prompt is answered by the
simulated judge instead (:mod:`shadowroute.fakellm._judge`, task ``"judge"`` in the stats; no
repeat counting). Faults and latency jitter are drawn per call from (seed, model, call number),
so a retry of a failed call can succeed.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._judge import JUDGE_TASK, find_judge_prompt, judge_reply
from ._wire import (
    AnthropicRequest,
    Completion,
    OpenAIRequest,
    anthropic_body,
    anthropic_error,
    anthropic_events,
    describe_validation_error,
    normalize_anthropic,
    normalize_openai,
    openai_body,
    openai_chunks,
    openai_error,
)
from .models import DEFAULT_SETTINGS, FakeLLMSettings, FakeModel
from .tasks import GENERIC, TASK_SIMULATORS, count_tokens, detect_task, simulate

__all__ = ["FakeState", "create_app"]

Api = Literal["openai", "anthropic"]
_CREATED = 1_700_000_000


class FakeState:
    """The server's mutable state: its copy of the roster and the call statistics.

    Thread-safe, so :class:`~shadowroute.fakellm.server.FakeLLMServer` can update models and
    read stats from the test's thread while the server runs in its own.
    """

    REPEAT_MEMORY = 200_000
    """How many distinct (model, messages) keys the repeat counter remembers (least recently
    seen forgotten first; a forgotten request counts as new again)."""

    def __init__(self, settings: FakeLLMSettings) -> None:
        self.seed = settings.seed
        self.latency_scale = settings.latency_scale
        self.hang_seconds = settings.hang_seconds
        self._models: dict[str, FakeModel] = dict(settings.models)
        self._lock = threading.Lock()
        self._seq: Counter[str] = Counter()
        self._stats: dict[str, dict[str, Any]] = {}
        self._answered: OrderedDict[bytes, int] = OrderedDict()
        self.closing = threading.Event()
        """Set by the server when it stops, so hanging requests end instead of being cancelled."""

    def model(self, name: str) -> FakeModel | None:
        with self._lock:
            return self._models.get(name)

    def models(self) -> list[FakeModel]:
        with self._lock:
            return list(self._models.values())

    def settings(self) -> FakeLLMSettings:
        return FakeLLMSettings(seed=self.seed, models=self.models(),
                               latency_scale=self.latency_scale, hang_seconds=self.hang_seconds)

    def update_model(self, name: str, changes: dict[str, Any]) -> FakeModel:
        """Apply ``changes`` to model ``name`` (created with defaults if unknown); validated."""
        with self._lock:
            current = self._models.get(name) or FakeModel(name=name)
            updated = current.with_changes(**changes)
            self._models[name] = updated
            return updated

    def begin_call(self, model: str, api: Api, task: str) -> int:
        """Count a call; returns its sequence number for this model (never reset)."""
        with self._lock:
            self._seq[model] += 1
            entry = self._stats.setdefault(model, _empty_stats())
            entry["calls"] += 1
            entry[api] += 1
            entry["tasks"][task] = entry["tasks"].get(task, 0) + 1
            return self._seq[model]

    def repeat_index(self, model: str, messages: Sequence[Mapping[str, Any]]) -> int:
        """How many times this exact (model, messages) request was answered before; counts it.

        Not cleared by :meth:`reset_stats`: a repeat stays a repeat.
        """
        canonical = json.dumps([model, list(messages)], sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False)
        key = hashlib.sha256(canonical.encode()).digest()[:16]
        with self._lock:
            seen = self._answered.get(key, 0)
            self._answered[key] = seen + 1
            self._answered.move_to_end(key)
            while len(self._answered) > self.REPEAT_MEMORY:
                self._answered.popitem(last=False)
            return seen

    def record(self, model: str, outcome: str) -> None:
        with self._lock:
            self._stats.setdefault(model, _empty_stats())[outcome] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            models = {name: {**e, "tasks": dict(e["tasks"])} for name, e in self._stats.items()}
        return {"total_calls": sum(e["calls"] for e in models.values()), "models": models}

    def reset_stats(self) -> None:
        with self._lock:
            self._stats.clear()


def _empty_stats() -> dict[str, Any]:
    return {"calls": 0, "openai": 0, "anthropic": 0, "ok": 0, "errors": 0, "garbage": 0,
            "hangs": 0, "tasks": {}}


def _call_rng(seed: int, model: str, seq: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{model}\x00call\x00{seq}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _latency_s(model: FakeModel, scale: float, rng: random.Random) -> float:
    jitter = rng.uniform(-model.latency_jitter_ms, model.latency_jitter_ms)
    return max(0.0, model.latency_ms + jitter) * scale / 1000.0


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


_GARBAGE_BODIES = (
    b'{"id": "chatcmpl-garbage", "object": "chat.completion", "choices": [{"message": {"con',
    b"<html><head><title>502 Bad Gateway</title></head><body>upstream hiccup</body></html>",
    b"OK",
    b'{"status": "ok", "result": null}',  # valid JSON, but not a completion
)


class _Handler:
    """One API flavour's request handling; the two flavours differ only in wire format."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.error_body = openai_error if api == "openai" else anthropic_error

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(self.error_body(status, message), status_code=status, headers=headers)

    async def handle(self, request: Request) -> Response:
        state: FakeState = request.app.state.fake
        try:
            data = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return self.error(400, "We could not parse the JSON body of your request.")
        if not isinstance(data, dict):
            return self.error(400, "The request body must be a JSON object.")
        try:
            if self.api == "openai":
                oreq = OpenAIRequest.model_validate(data)
                name, messages, stream = oreq.model, normalize_openai(oreq), bool(oreq.stream)
                limit = oreq.max_completion_tokens or oreq.max_tokens
                include_usage = bool(oreq.stream_options and oreq.stream_options.include_usage)
            else:
                areq = AnthropicRequest.model_validate(data)
                name, messages, stream = areq.model, normalize_anthropic(areq), bool(areq.stream)
                limit, include_usage = areq.max_tokens, False
        except ValidationError as exc:
            return self.error(400, f"Invalid request: {describe_validation_error(exc)}")

        model = state.model(name)
        if model is None:
            return self.error(404, f"The model `{name}` does not exist or you do not have "
                                   "access to it.")
        judge = find_judge_prompt(messages)
        if judge is not None:
            task = JUDGE_TASK
        else:
            task = detect_task(messages) or ""
            task = task if task in TASK_SIMULATORS else GENERIC.name
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
            return self._garbage(rng, stream, headers)

        if judge is not None:
            text = judge_reply(judge, seed=state.seed, model=model.name,
                               accuracy=model.accuracy_for(JUDGE_TASK),
                               garbage_rate=model.verdict_garbage_rate, n_messages=len(messages))
        else:
            text = simulate(messages, seed=state.seed, model=model.name,
                            accuracy=model.accuracy_for(task),
                            repeat=state.repeat_index(model.name, messages),
                            consistency=model.consistency).text
        truncated = False
        if limit is not None and count_tokens(text) > limit:
            text, truncated = text[: limit * 4].rstrip(), True
        completion = Completion(
            id=call_id, model=model.name, text=text, truncated=truncated,
            prompt_tokens=count_tokens("\n".join(m["content"] for m in messages)),
            completion_tokens=count_tokens(text),
        )
        state.record(model.name, "ok")
        if not stream:
            body = openai_body(completion) if self.api == "openai" else anthropic_body(completion)
            return JSONResponse(body, headers=headers)
        events = (openai_chunks(completion, include_usage=include_usage)
                  if self.api == "openai" else anthropic_events(completion))
        return StreamingResponse(_paced(events), media_type="text/event-stream",
                                 headers=headers | {"cache-control": "no-cache"})

    def _garbage(self, rng: random.Random, stream: bool, headers: dict[str, str]) -> Response:
        if stream:
            if self.api == "openai":
                body = 'data: {"id": "chatcmpl-garbage", "choices": [{"delta": {"cont\n\n'
                body += "data: [DONE]\n\n"
            else:
                body = "event: message_start\ndata: {\"type\": \"message_start\", \"mess\n\n"
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
