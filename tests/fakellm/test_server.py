"""The fake LLM server: simulators, determinism, both wire APIs through the official SDKs, faults."""

from __future__ import annotations

import json
import random
import time

import anthropic
import anyio
import httpx
import openai
import pytest

import shadowroute.fakellm as fakellm
from shadowroute.fakellm import (
    DEFAULT_SETTINGS,
    TASK_SIMULATORS,
    FakeLLMServer,
    FakeLLMSettings,
    FakeModel,
    create_app,
    default_settings,
    ground_truth,
    sample_requests,
    simulate,
)

USER = [{"role": "user", "content": "How should I plan a weekend trip to Lyon?"}]


def demo(task: str, seed: int = 1) -> fakellm.DemoRequest:
    return sample_requests(1, seed=seed, tasks=[task])[0]


# --- public API, settings ---------------------------------------------------------------------
def test_public_api_is_importable() -> None:
    for name in fakellm.__all__:
        assert getattr(fakellm, name) is not None, name
    assert {"FakeModel", "FakeLLMSettings", "create_app", "FakeLLMServer", "DEFAULT_SETTINGS",
            "TASK_SIMULATORS", "sample_requests"} <= set(fakellm.__all__)


def test_default_roster() -> None:
    s = DEFAULT_SETTINGS
    assert s.seed == 7
    assert set(s.models) == {"frontier", "small", "tiny", "claude-small", "judge"}
    assert s.models["frontier"].consistency == 1.0 and s.models["small"].consistency == 1.0
    assert s.models["judge"].accuracy_for("judge") == 0.92
    assert s.models["frontier"].output_price > s.models["small"].output_price
    assert s.models["small"].accuracy_for("classify_intent") > s.models["small"].accuracy_for(
        "extract_order")


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        FakeModel(name="x", accuracy=1.5)
    with pytest.raises(ValueError):
        FakeModel(name="x", task_accuracy={"sentiment": -0.1})
    s = FakeLLMSettings(models=[FakeModel(name="a")], latency_scale=0)
    assert s.models["a"].accuracy == 0.9
    assert FakeLLMSettings(models={"b": {"accuracy": 0.5}}).models["b"].name == "b"


# --- simulators --------------------------------------------------------------------------------
@pytest.mark.parametrize("task", sorted(TASK_SIMULATORS))
def test_ground_truth_is_derivable_and_wrong_answers_differ(task: str) -> None:
    sim = TASK_SIMULATORS[task]
    rng = random.Random(0)
    for _ in range(500):
        text, truth = sim.generate(rng)
        assert sim.expected(text) == truth, text
        for _ in range(3):
            assert sim.answer(text, rng, correct=False) != truth, text
        assert sim.answer(text, rng, correct=True) == truth


def test_make_request_shape_and_ground_truth() -> None:
    for d in sample_requests(40, seed=3):
        msgs = d.request["messages"]
        assert msgs[0]["role"] == "system" and msgs[0]["content"].startswith(f"[task:{d.task}]")
        assert "model" not in d.request and ground_truth(d.request) == d.expected
    weighted = sample_requests(50, seed=3, tasks={"sentiment": 1, "classify_intent": 0})
    assert {d.task for d in weighted} == {"sentiment"}
    assert sample_requests(5, seed=9) == sample_requests(5, seed=9)


def test_extract_order_wrong_answers_include_every_kind() -> None:
    sim = TASK_SIMULATORS["extract_order"]
    rng = random.Random(5)
    kinds: set[str] = set()
    for _ in range(400):
        text, truth = sim.generate(rng)
        wrong = sim.answer(text, rng, correct=False)
        try:
            data = json.loads(wrong)
        except json.JSONDecodeError:
            kinds.add("malformed")
            continue
        good = json.loads(truth)
        if set(data) != set(good):
            kinds.add("missing")
        elif isinstance(data["quantity"], str):
            kinds.add("type")
        else:
            kinds.add("value")
    assert kinds == {"malformed", "missing", "type", "value"}


@pytest.mark.parametrize("task", sorted(TASK_SIMULATORS))
def test_accuracy_is_roughly_honoured(task: str) -> None:
    for accuracy in (0.6, 0.95):
        hits = 0
        for d in sample_requests(300, seed=11, tasks=[task]):
            msgs = d.request["messages"]
            answer = simulate(msgs, seed=7, model="m", accuracy=accuracy)
            assert answer.task == task
            hits += answer.text == d.expected
            assert (answer.text == d.expected) == answer.correct
        assert abs(hits / 300 - accuracy) < 0.08, (task, accuracy, hits)


def test_simulate_is_deterministic_and_seeded() -> None:
    requests = [d.request["messages"] for d in sample_requests(60, seed=2)]
    first = [simulate(m, seed=7, model="small", accuracy=0.5).text for m in requests]
    again = [simulate(m, seed=7, model="small", accuracy=0.5).text for m in requests]
    other_seed = [simulate(m, seed=8, model="small", accuracy=0.5).text for m in requests]
    other_model = [simulate(m, seed=7, model="tiny", accuracy=0.5).text for m in requests]
    assert first == again
    assert first != other_seed and first != other_model


def test_generic_fallback_without_marker() -> None:
    answer = simulate(USER, seed=7, model="small", accuracy=1.0)
    assert answer.task == "generic" and "lyon" in answer.text.lower()
    unknown = [{"role": "system", "content": "[task:poetry] Be brief."}, *USER]
    assert simulate(unknown, seed=7, model="small", accuracy=1.0).task == "generic"


# --- OpenAI API through the official SDK --------------------------------------------------------
def test_openai_non_stream(oai: openai.OpenAI) -> None:
    d = demo("classify_intent")
    reply = oai.chat.completions.create(model="frontier", **d.request)
    assert reply.id.startswith("chatcmpl-") and reply.object == "chat.completion"
    assert reply.model == "frontier"
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert choice.message.content in TASK_SIMULATORS["classify_intent"].labels  # type: ignore[attr-defined]
    assert reply.usage is not None
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    again = oai.chat.completions.create(model="frontier", **d.request)
    assert again.choices[0].message.content == choice.message.content


def test_openai_stream_matches_non_stream(oai: openai.OpenAI) -> None:
    d = demo("summarize_ticket")
    whole = oai.chat.completions.create(model="small", **d.request)
    chunks = list(oai.chat.completions.create(
        model="small", stream=True, stream_options={"include_usage": True}, **d.request))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len(chunks) > 5  # split by words
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    no_usage = list(oai.chat.completions.create(model="small", stream=True, **d.request))
    assert all(c.usage is None for c in no_usage)


def test_openai_max_tokens_truncates(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="small", messages=USER, max_tokens=5)  # type: ignore[arg-type]
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens <= 5


@pytest.mark.anyio
async def test_openai_async_client(srv: FakeLLMServer) -> None:
    client = openai.AsyncOpenAI(base_url=srv.base_url + "/v1", api_key="fake", max_retries=0)
    d = demo("sentiment")
    reply = await client.chat.completions.create(model="tiny", **d.request)
    stream = await client.chat.completions.create(model="tiny", stream=True, **d.request)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == reply.choices[0].message.content
    models = [m.id async for m in client.models.list()]
    assert "frontier" in models
    await client.close()


# --- Anthropic API through the official SDK -----------------------------------------------------
def test_anthropic_non_stream_and_same_answer_as_openai(
    ant: anthropic.Anthropic, oai: openai.OpenAI
) -> None:
    d = demo("extract_order")
    system, *messages = d.request["messages"]
    msg = ant.messages.create(model="claude-small", max_tokens=200, system=system["content"],
                              messages=messages)
    assert msg.id.startswith("msg_") and msg.type == "message" and msg.role == "assistant"
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    text = msg.content[0].text  # type: ignore[union-attr]
    via_openai = oai.chat.completions.create(model="claude-small", **d.request)
    assert via_openai.choices[0].message.content == text


def test_anthropic_stream(ant: anthropic.Anthropic) -> None:
    d = demo("summarize_ticket")
    system, *messages = d.request["messages"]
    kwargs = dict(model="claude-small", max_tokens=300, system=system["content"],
                  messages=messages)
    whole = ant.messages.create(**kwargs)  # type: ignore[call-overload]
    events = [e.type for e in ant.messages.create(stream=True, **kwargs)]  # type: ignore[call-overload]
    assert events[:2] == ["message_start", "content_block_start"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events.count("content_block_delta") > 5
    with ant.messages.stream(**kwargs) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == whole.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens


@pytest.mark.anyio
async def test_anthropic_async_stream(srv: FakeLLMServer) -> None:
    client = anthropic.AsyncAnthropic(base_url=srv.base_url, api_key="fake", max_retries=0)
    async with client.messages.stream(model="small", max_tokens=50, messages=USER) as stream:
        text = "".join([t async for t in stream.text_stream])
    assert "lyon" in text.lower()
    await client.close()


# --- errors and faults -------------------------------------------------------------------------
def test_unknown_model_is_404_in_each_native_shape(
    oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    with pytest.raises(openai.NotFoundError) as o:
        oai.chat.completions.create(model="nope", messages=USER)  # type: ignore[arg-type]
    assert o.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as a:
        ant.messages.create(model="nope", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert a.value.body == {"type": "error", "error": {"type": "not_found_error",
                                                       "message": a.value.body["error"]["message"]}}  # type: ignore[index]


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", b"{not json"),
    ("/v1/chat/completions", b"[1, 2]"),
    ("/v1/chat/completions", b'{"model": "small"}'),
    ("/v1/chat/completions", b'{"model": "small", "messages": [{"role": "x"}]}'),
    ("/v1/chat/completions", b'{"model": "small", "messages": [{"role": "user", "content": 3}]}'),
    ("/v1/messages", b"\xff\xfe"),
    ("/v1/messages", b'{"model": "small", "messages": [{"role": "user", "content": "hi"}]}'),
    ("/v1/messages", b'{"model": "small", "max_tokens": 5, "messages": []}'),
])
def test_bad_input_is_400_never_500(srv: FakeLLMServer, path: str, body: bytes) -> None:
    r = httpx.post(srv.base_url + path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    data = r.json()
    if path.startswith("/v1/messages"):
        assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    else:
        assert set(data["error"]) == {"message", "type", "param", "code"}


def test_error_status_and_retry_after(srv: FakeLLMServer, oai: openai.OpenAI,
                                      ant: anthropic.Anthropic) -> None:
    srv.update_model("limited", error_rate=1.0, error_status=429, retry_after=2)
    with pytest.raises(openai.RateLimitError) as exc:
        oai.chat.completions.create(model="limited", messages=USER)  # type: ignore[arg-type]
    assert exc.value.response.headers["retry-after"] == "2"
    srv.update_model("overloaded", error_rate=1.0, error_status=529)
    with pytest.raises(anthropic.APIStatusError) as aexc:
        ant.messages.create(model="overloaded", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert aexc.value.status_code == 529
    assert aexc.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert "retry-after" not in aexc.value.response.headers


def test_error_rate_is_per_call(srv: FakeLLMServer, http: httpx.Client) -> None:
    srv.update_model("flaky", error_rate=0.5)
    body = {"model": "flaky", "messages": USER}
    statuses = [http.post("/v1/chat/completions", json=body).status_code
                for _ in range(60)]
    assert set(statuses) == {200, 500}
    assert 15 <= statuses.count(500) <= 45
    assert srv.stats()["models"]["flaky"]["errors"] == statuses.count(500)


def test_garbage_is_200_but_not_a_completion(srv: FakeLLMServer, oai: openai.OpenAI) -> None:
    srv.update_model("broken", garbage=True)
    for _ in range(8):
        r = httpx.post(srv.base_url + "/v1/chat/completions",
                       json={"model": "broken", "messages": USER})
        assert r.status_code == 200
        try:
            data = r.json()
        except json.JSONDecodeError:
            continue
        assert "choices" not in data
    with pytest.raises(ValueError):
        list(oai.chat.completions.create(model="broken", messages=USER, stream=True))  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_hang_times_out_without_blocking_other_models(srv: FakeLLMServer) -> None:
    srv.update_model("stuck", hang=True)
    client = openai.AsyncOpenAI(base_url=srv.base_url + "/v1", api_key="fake", max_retries=0)
    elapsed: list[float] = []

    async def hang() -> None:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="stuck", messages=USER, timeout=2.0)  # type: ignore[arg-type]

    async def other() -> None:
        await anyio.sleep(0.1)
        start = time.perf_counter()
        await client.chat.completions.create(model="small", messages=USER)  # type: ignore[arg-type]
        elapsed.append(time.perf_counter() - start)

    async with anyio.create_task_group() as tg:
        tg.start_soon(hang)
        tg.start_soon(other)
    assert elapsed and elapsed[0] < 1.0  # blocked by the hang, it would take until 2.0 s
    assert srv.stats()["models"]["stuck"]["hangs"] == 1
    await client.close()


def test_latency_is_simulated() -> None:
    settings = FakeLLMSettings(models=[FakeModel(name="slow", latency_ms=600)])
    with FakeLLMServer(settings) as server:
        start = time.perf_counter()
        r = httpx.post(server.base_url + "/v1/chat/completions",
                       json={"model": "slow", "messages": USER})
        assert r.status_code == 200 and time.perf_counter() - start >= 0.59
        server.update_model("slow", latency_ms=0)
        start = time.perf_counter()
        httpx.post(server.base_url + "/v1/chat/completions",
                   json={"model": "slow", "messages": USER})
        assert time.perf_counter() - start < 0.4


# --- admin hooks ---------------------------------------------------------------------------------
def test_runtime_update_endpoint_changes_behaviour(srv: FakeLLMServer, http: httpx.Client) -> None:
    requests = [d.request for d in sample_requests(20, seed=4, tasks=["classify_intent"])]

    def hits() -> int:
        return sum(
            http.post("/v1/chat/completions", json={"model": "dial", **req})
            .json()["choices"][0]["message"]["content"] == ground_truth(req)
            for req in requests
        )

    r = httpx.post(srv.base_url + "/_fake/models/dial", json={"accuracy": 1.0})
    assert r.status_code == 200 and r.json()["accuracy"] == 1.0
    assert hits() == 20
    r = httpx.post(srv.base_url + "/_fake/models/dial",
                   json={"task_accuracy": {"classify_intent": 0.0}})
    assert r.json()["accuracy"] == 1.0 and r.json()["task_accuracy"] == {"classify_intent": 0.0}
    assert hits() == 0
    bad = httpx.post(srv.base_url + "/_fake/models/dial", json={"accuracy": 2})
    assert bad.status_code == 400 and "accuracy" in bad.json()["error"]["message"]
    assert httpx.post(srv.base_url + "/_fake/models/dial", content=b"{").status_code == 400
    assert srv.model("dial") == FakeModel(name="dial", accuracy=1.0,
                                          task_accuracy={"classify_intent": 0.0})


def test_stats_count_calls(srv: FakeLLMServer, oai: openai.OpenAI,
                           ant: anthropic.Anthropic) -> None:
    srv.update_model("counted")
    d = demo("sentiment")
    for _ in range(3):
        oai.chat.completions.create(model="counted", **d.request)
    ant.messages.create(model="counted", max_tokens=10, messages=USER)  # type: ignore[arg-type]
    entry = httpx.get(srv.base_url + "/_fake/stats").json()["models"]["counted"]
    assert entry["calls"] == 4 and entry["openai"] == 3 and entry["anthropic"] == 1
    assert entry["tasks"] == {"sentiment": 3, "generic": 1} and entry["ok"] == 4
    assert srv.calls("counted") == 4 and srv.calls("never-called") == 0


def test_models_listing_has_prices(srv: FakeLLMServer) -> None:
    data = httpx.get(srv.base_url + "/v1/models").json()["data"]
    small = next(m for m in data if m["id"] == "small")
    assert (small["input_price"], small["output_price"]) == (0.15, 0.60)
    assert httpx.get(srv.base_url + "/v1/models/nope").status_code == 404


def test_server_copies_settings_and_restarts_cleanly() -> None:
    settings = default_settings(latency_scale=0)
    with FakeLLMServer(settings) as a:
        a.update_model("small", accuracy=0.0)
        url = a.base_url
    assert settings.models["small"].accuracy == 0.88
    assert DEFAULT_SETTINGS.models["small"].accuracy == 0.88
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/v1/models", timeout=1)


@pytest.mark.anyio
async def test_app_works_over_asgi_transport() -> None:
    app = create_app(default_settings(latency_scale=0))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        r = await client.post("/v1/chat/completions", json={"model": "tiny", "messages": USER})
        assert r.status_code == 200 and r.json()["object"] == "chat.completion"
    assert app.state.fake.stats()["models"]["tiny"]["calls"] == 1
