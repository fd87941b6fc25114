"""The sidecar (``shadowroute serve``) run for real: uvicorn on loopback, the official SDKs and
curl in front, the fake LLM server behind.

Byte-for-byte comparisons use *twin* fake servers: two servers with the same settings, one called
directly and one behind the sidecar, called in the same order. The fake's answers and ids are
functions of (seed, model, call number), so the twins answer identically; only ``created`` (wall
clock seconds) may differ, and it is blanked before comparing.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text

from shadowroute import load_config
from shadowroute.config import Config
from shadowroute.fakellm import (
    FakeLLMServer,
    FakeModel,
    default_settings,
    make_request,
    sample_requests,
)
from shadowroute.serving import BackgroundServer, tcp_socket
from shadowroute.sidecar import Sidecar, create_app
from shadowroute.store import CandidateOutput, Exchange, Spool, Store

OPENAI_KEY = "sk-live-SIDECAR-openai-5f1c"
ANTHROPIC_KEY = "sk-ant-SIDECAR-anthropic-9d2e"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY)
TASK = "X-Shadowroute-Task"
ROUTE = "x-shadowroute-route"
CREATED = re.compile(rb'"created": ?\d+')


# --------------------------------------------------------------------------- helpers


def make_config(
    tmp_path: Path,
    db_url: str,
    upstream: str | None,
    *,
    candidates: str | None = None,
    sidecar: dict[str, Any] | None = None,
    mirror: dict[str, Any] | None = None,
    models: dict[str, Any] | None = None,
    tasks: dict[str, Any] | None = None,
    store: dict[str, Any] | None = None,
) -> Config:
    """A sidecar config: classify_intent -> small + claude-small, sentiment -> tiny (also named
    by a rule: model ``front*`` with metadata feature=reviews), everything else ``default``
    (sampled at 1.0, no candidates). Candidates live on ``candidates`` (default: upstream)."""
    base = candidates or upstream or "http://127.0.0.1:9"
    return load_config(data={
        "database_url": db_url,
        "default_sample_rate": 1.0,
        "models": models or {
            "small": {"base_url": base + "/v1", "max_retries": 0},
            "tiny": {"base_url": base + "/v1", "max_retries": 0},
            "claude-small": {"base_url": base, "api": "anthropic", "max_retries": 0},
        },
        "tasks": tasks or {
            "classify_intent": {"candidates": ["small", "claude-small"], "sample_rate": 1.0},
            "sentiment": {"candidates": ["tiny"], "sample_rate": 1.0},
        },
        "sidecar": {
            "upstream": upstream,
            "rules": [{"task": "sentiment", "model": "front*", "metadata": {"feature": "reviews"}}],
            **(sidecar or {}),
        },
        "store": {
            "spool_dir": str(tmp_path / "spool"),
            "flush_interval_s": 0.05,
            "retry_interval_s": 0.2,
            **(store or {}),
        },
        "mirror": {"shutdown_deadline_s": 5.0, **(mirror or {})},
    })


def sidecar_server(config: Config, **kwargs: Any) -> BackgroundServer:
    """The sidecar app under uvicorn on a free loopback port, as ``shadowroute serve`` runs it."""
    return BackgroundServer(
        create_app(config, **kwargs),
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=1.0,
    )


def state(server: BackgroundServer) -> Sidecar:
    sidecar: Sidecar = server.app.state.sidecar
    return sidecar


@contextmanager
def twin_fakes(settings: Any = None) -> Iterator[tuple[FakeLLMServer, FakeLLMServer]]:
    """(direct, upstream): two fake servers with the same settings."""
    settings = settings or default_settings(latency_scale=0.0)
    with FakeLLMServer(settings) as direct, FakeLLMServer(settings) as upstream:
        yield direct, upstream


class RecordingTransport(httpx.AsyncBaseTransport):
    """The sidecar's real upstream transport, keeping every request it puts on the wire."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def request_for(task: str, seed: int) -> dict[str, Any]:
    return make_request(task, random.Random(seed))


def anthropic_kwargs(request: dict[str, Any]) -> dict[str, Any]:
    system, messages = request["messages"][0]["content"], request["messages"][1:]
    return {"model": "frontier", "max_tokens": 400, "system": system, "messages": messages}


async def stored(url: str) -> tuple[list[Exchange], list[CandidateOutput]]:
    async with await Store.open(url) as store, store.session() as session:
        exchanges = list((await session.scalars(select(Exchange))).all())
        outputs = list((await session.scalars(select(CandidateOutput))).all())
    return exchanges, outputs


async def stored_text(url: str) -> str:
    """Every row of every table, as text (to look for secrets)."""
    async with await Store.open(url) as store, store.session() as session:
        parts = []
        for table in ("exchanges", "candidate_outputs", "traffic_daily"):
            parts.append(repr((await session.execute(text(f"SELECT * FROM {table}"))).all()))
    return "\n".join(parts)


async def traffic_total(url: str) -> int:
    async with await Store.open(url) as store, store.session() as session:
        total = (await session.execute(text("SELECT SUM(requests) FROM traffic_daily"))).scalar()
    return int(total or 0)


def spool_text(directory: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in directory.glob("*") if p.is_file())


def metrics(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(base_url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


async def await_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


def curl(url: str, body: bytes, *headers: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """``curl -sN -i``: (status line, headers, body bytes)."""
    args = ["curl", "-sN", "-i", "-X", "POST", url, "--data-binary", "@-", "-H", "content-type: application/json"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run(args, input=body, capture_output=True, timeout=30, check=True).stdout
    head, _, payload = out.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    parsed = [(k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines)]
    return status, parsed, payload


def sse_payloads(body: bytes) -> list[bytes]:
    return [line for line in body.split(b"\n") if line.startswith((b"data:", b"event:"))]


def error_shape_ok(api: str, body: dict[str, Any]) -> bool:
    if api == "anthropic":
        return body.get("type") == "error" and isinstance(body["error"]["message"], str) and bool(body["error"]["type"])
    return set(body["error"]) >= {"message", "type", "param", "code"} and isinstance(body["error"]["message"], str)


# --------------------------------------------------------------------------- 1 + 2: SDKs


@pytest.mark.anyio
async def test_async_sdks_get_what_the_upstream_gives_and_exchanges_are_stored(tmp_path: Path, db_url: str) -> None:
    recorder = RecordingTransport()
    with twin_fakes() as (direct, upstream):
        config = make_config(tmp_path, db_url, upstream.base_url)
        async with sidecar_server(config, upstream_transport=recorder) as sc:
            oa_direct = openai.AsyncOpenAI(base_url=direct.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0)
            oa = openai.AsyncOpenAI(base_url=sc.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0)
            an_direct = anthropic.AsyncAnthropic(base_url=direct.base_url, api_key=ANTHROPIC_KEY, max_retries=0)
            an = anthropic.AsyncAnthropic(base_url=sc.base_url, api_key=ANTHROPIC_KEY, max_retries=0)
            async with oa_direct, oa, an_direct, an:
                # 1. OpenAI, not streamed, task from the header.
                req1 = request_for("classify_intent", 1)
                expected1 = await oa_direct.chat.completions.create(model="frontier", **req1)
                raw1 = await oa.chat.completions.with_raw_response.create(
                    model="frontier", **req1, extra_headers={TASK: "classify_intent"}
                )
                got1 = raw1.parse()
                assert got1.model_dump(exclude={"created"}) == expected1.model_dump(exclude={"created"})
                assert got1.id == expected1.id and got1.choices[0].message.content
                assert raw1.headers[ROUTE] == "model=frontier; route=primary; task=classify_intent"

                # 2. OpenAI, streamed, task from a [sidecar] rule (model glob + metadata).
                req2 = request_for("sentiment", 2)
                expected2 = [
                    c.model_dump(exclude={"created"})
                    async for c in await oa_direct.chat.completions.create(model="frontier", stream=True, **req2)
                ]
                raw2 = await oa.chat.completions.with_raw_response.create(
                    model="frontier", stream=True, metadata={"feature": "reviews"}, **req2
                )
                got2 = [c.model_dump(exclude={"created"}) async for c in raw2.parse()]
                assert got2 == expected2 and len(got2) > 2
                text2 = "".join(c["choices"][0]["delta"].get("content") or "" for c in got2 if c["choices"])
                assert text2
                assert raw2.headers[ROUTE] == "model=frontier; route=primary; task=sentiment"

                # 3. Anthropic, not streamed, no header and no rule: the default task.
                req3 = request_for("extract_order", 3)
                expected3 = await an_direct.messages.create(**anthropic_kwargs(req3))
                raw3 = await an.messages.with_raw_response.create(**anthropic_kwargs(req3))
                got3 = await raw3.parse()  # anthropic's raw response parses asynchronously
                assert got3.model_dump() == expected3.model_dump()
                text3 = got3.content[0].text
                assert text3 and raw3.headers[ROUTE] == "model=frontier; route=primary; task=default"

                # 4. Anthropic, streamed, task from the header.
                req4 = request_for("classify_intent", 4)
                async with an_direct.messages.stream(**anthropic_kwargs(req4)) as s:
                    expected4_text = "".join([t async for t in s.text_stream])
                    expected4 = (await s.get_final_message()).model_dump()
                async with an.messages.stream(
                    **anthropic_kwargs(req4), extra_headers={TASK: "classify_intent"}
                ) as s:
                    text4 = "".join([t async for t in s.text_stream])
                    got4 = (await s.get_final_message()).model_dump()
                    route4 = s.response.headers[ROUTE]
                assert text4 == expected4_text and got4 == expected4 and text4
                assert route4 == "model=frontier; route=primary; task=classify_intent"
    # The sidecar has stopped: everything it captured is written.
    exchanges, outputs = await stored(db_url)
    assert len(exchanges) == 4
    by_last = {json.dumps(e.request["messages"][-1]): e for e in exchanges}
    text1 = got1.choices[0].message.content
    calls = {  # request -> (task, text the SDK got, candidates)
        "1": (req1, "classify_intent", text1, {"small", "claude-small"}),
        "2": (req2, "sentiment", text2, {"tiny"}),
        "3": (req3, "default", text3, set()),
        "4": (req4, "classify_intent", text4, {"small", "claude-small"}),
    }
    outputs_of: dict[str, dict[str, CandidateOutput]] = {}
    for o in outputs:
        outputs_of.setdefault(o.exchange_id, {})[o.model] = o
    for name, (req, task, text_, candidates) in calls.items():
        exchange = by_last[json.dumps(req["messages"][-1])]
        assert (exchange.task_type, exchange.primary_output, exchange.primary_model) == (task, text_, "frontier"), name
        found = outputs_of.get(exchange.id, {})
        assert set(found) == candidates, name
        assert all(o.error_kind is None and o.output for o in found.values()), name
    assert by_last[json.dumps(req1["messages"][-1])].request["messages"] == req1["messages"]
    assert by_last[json.dumps(req2["messages"][-1])].request["messages"] == req2["messages"]
    # Keys went upstream, never into storage; the task header never went upstream.
    assert len(recorder.requests) == 4
    assert all(TASK.lower() not in r.headers for r in recorder.requests)
    assert [r.headers.get("authorization") for r in recorder.requests[:2]] == [f"Bearer {OPENAI_KEY}"] * 2
    # (anthropic 2.x sends its key as a Bearer token; curl below uses x-api-key)
    assert all(ANTHROPIC_KEY in (r.headers.get("x-api-key", "") + r.headers.get("authorization", ""))
               for r in recorder.requests[2:])
    dump = await stored_text(db_url) + spool_text(tmp_path / "spool")
    assert not any(secret in dump for secret in SECRETS)
    calls = upstream.stats()["models"]
    assert calls["frontier"]["calls"] == 4
    assert (calls["small"]["calls"], calls["claude-small"]["calls"], calls["tiny"]["calls"]) == (2, 2, 1)


def test_sync_sdks_get_what_the_upstream_gives_and_exchanges_are_stored(tmp_path: Path, db_url: str) -> None:
    request = request_for("classify_intent", 7)
    headers = {TASK: "classify_intent"}
    with twin_fakes() as (direct, upstream):
        config = make_config(tmp_path, db_url, upstream.base_url)
        with sidecar_server(config) as sc, openai.OpenAI(
            base_url=direct.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0
        ) as oa_direct, openai.OpenAI(
            base_url=sc.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0
        ) as oa, anthropic.Anthropic(
            base_url=direct.base_url, api_key=ANTHROPIC_KEY, max_retries=0
        ) as an_direct, anthropic.Anthropic(
            base_url=sc.base_url, api_key=ANTHROPIC_KEY, max_retries=0
        ) as an:
            expected = oa_direct.chat.completions.create(model="frontier", **request)
            got = oa.chat.completions.create(model="frontier", **request, extra_headers=headers)
            assert got.model_dump(exclude={"created"}) == expected.model_dump(exclude={"created"})

            expected_chunks = [c.model_dump(exclude={"created"}) for c in oa_direct.chat.completions.create(
                model="frontier", stream=True, **request)]
            chunks = [c.model_dump(exclude={"created"}) for c in oa.chat.completions.create(
                model="frontier", stream=True, **request, extra_headers=headers)]
            assert chunks == expected_chunks

            expected_msg = an_direct.messages.create(**anthropic_kwargs(request))
            msg = an.messages.create(**anthropic_kwargs(request), extra_headers=headers)
            assert msg.model_dump() == expected_msg.model_dump()

            with an_direct.messages.stream(**anthropic_kwargs(request)) as s:
                expected_streamed = s.get_final_message().model_dump()
            with an.messages.stream(**anthropic_kwargs(request), extra_headers=headers) as s:
                streamed_text = "".join(s.text_stream)
                streamed = s.get_final_message().model_dump()
            assert streamed == expected_streamed
    text_ = got.choices[0].message.content
    assert text_ and msg.content[0].text == streamed_text == text_  # same answer whatever the API
    exchanges, outputs = anyio.run(stored, db_url)
    assert len(exchanges) == 4
    assert {(e.task_type, e.primary_output) for e in exchanges} == {("classify_intent", text_)}
    assert len(outputs) == 8 and all(o.output and o.error_kind is None for o in outputs)
    dump = anyio.run(stored_text, db_url)
    assert not any(secret in dump for secret in SECRETS)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_curl_gets_the_upstream_bytes(tmp_path: Path, sqlite_url: str, api: str, stream: bool) -> None:
    request = request_for("summarize_ticket", 11)
    if api == "openai":
        path, auth = "/v1/chat/completions", f"authorization: Bearer {OPENAI_KEY}"
        body = {"model": "frontier", **request, "stream": stream}
    else:
        path, auth = "/v1/messages", f"x-api-key: {ANTHROPIC_KEY}"
        body = {**anthropic_kwargs(request), "stream": stream}
    raw = json.dumps(body).encode()
    with twin_fakes() as (direct, upstream), sidecar_server(make_config(tmp_path, sqlite_url, upstream.base_url)) as sc:
        d_status, d_headers, d_body = curl(direct.base_url + path, raw, auth)
        s_status, s_headers, s_body = curl(sc.base_url + path, raw, auth, "x-shadowroute-task: sentiment")
        sidecar = state(sc)
        wait_until(lambda: sidecar.shadow.stats.enqueued == 1, what="capture queued")
    assert d_status == s_status == "HTTP/1.1 200 OK"
    assert dict(s_headers)[ROUTE] == "model=frontier; route=primary; task=sentiment"
    strip = {"date", ROUTE}
    assert [h for h in s_headers if h[0] not in strip] == [h for h in d_headers if h[0] not in strip]
    assert CREATED.sub(b'"created":0', s_body) == CREATED.sub(b'"created":0', d_body)
    if stream:
        payloads = sse_payloads(s_body)
        assert len(payloads) > 3
        assert [CREATED.sub(b"", p) for p in payloads] == [CREATED.sub(b"", p) for p in sse_payloads(d_body)]
    else:
        assert dict(s_headers)["content-length"] == str(len(s_body))


@pytest.mark.anyio
async def test_task_header_and_hop_by_hop_headers_with_a_mock_upstream(tmp_path: Path, sqlite_url: str) -> None:
    """ASGI in-process with an ``httpx.MockTransport`` upstream: what exactly goes up and comes back."""
    seen: list[httpx.Request] = []
    body = json.dumps({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "frontier",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "refund"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201, content=body,
            headers=[("content-type", "application/json"), ("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-upstream", "yes")],
        )

    config = make_config(tmp_path, sqlite_url, "https://upstream.test/base")
    app = create_app(config, upstream_transport=httpx.MockTransport(handler))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sidecar.local"
    ) as client:
        response = await client.post(
            "/v1/chat/completions?api-version=2024-01", content=json.dumps({"model": "frontier", "messages": []}),
            headers={TASK: "classify_intent", "authorization": f"Bearer {OPENAI_KEY}", "x-custom": "kept",
                     "content-type": "application/json"},
        )
        sidecar: Sidecar = app.state.sidecar
        await await_until(lambda: sidecar.shadow.stats.enqueued == 1)
    assert response.status_code == 201 and response.content == body
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"] and response.headers["x-upstream"] == "yes"
    assert response.headers[ROUTE] == "model=frontier; route=primary; task=classify_intent"
    [up] = seen
    assert str(up.url) == "https://upstream.test/base/v1/chat/completions?api-version=2024-01"
    assert up.headers["host"] == "upstream.test"
    assert up.headers["authorization"] == f"Bearer {OPENAI_KEY}" and up.headers["x-custom"] == "kept"
    assert TASK.lower() not in up.headers
    assert up.content == b'{"model": "frontier", "messages": []}'


# --------------------------------------------------------------------------- 3: upstream errors


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 500])
async def test_upstream_errors_are_relayed_exactly(tmp_path: Path, sqlite_url: str, status: int) -> None:
    settings = default_settings(latency_scale=0.0).with_model(
        FakeModel(name="limited", error_rate=1.0, error_status=status, retry_after=2)
    )
    request = request_for("classify_intent", 5)
    with twin_fakes(settings) as (direct, upstream):
        config = make_config(tmp_path, sqlite_url, upstream.base_url,
                             tasks={"classify_intent": {"candidates": ["small"], "sample_rate": 1.0}})
        async with sidecar_server(config) as sc:
            async with openai.AsyncOpenAI(
                base_url=direct.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0
            ) as oa_direct, openai.AsyncOpenAI(
                base_url=sc.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0
            ) as oa, anthropic.AsyncAnthropic(
                base_url=direct.base_url, api_key=ANTHROPIC_KEY, max_retries=0
            ) as an_direct, anthropic.AsyncAnthropic(
                base_url=sc.base_url, api_key=ANTHROPIC_KEY, max_retries=0
            ) as an:
                with pytest.raises(openai.APIStatusError) as want:
                    await oa_direct.chat.completions.create(model="limited", **request)
                with pytest.raises(openai.APIStatusError) as got:
                    await oa.chat.completions.create(model="limited", **request, extra_headers={TASK: "classify_intent"})
                kwargs = {**anthropic_kwargs(request), "model": "limited"}
                with pytest.raises(anthropic.APIStatusError) as a_want:
                    await an_direct.messages.create(**kwargs)
                with pytest.raises(anthropic.APIStatusError) as a_got:
                    await an.messages.create(**kwargs, extra_headers={TASK: "classify_intent"})
            raw = json.dumps({"model": "limited", **request}).encode()
            d_status, d_headers, d_body = await anyio.to_thread.run_sync(curl, direct.base_url + "/v1/chat/completions", raw)
            s_status, s_headers, s_body = await anyio.to_thread.run_sync(curl, sc.base_url + "/v1/chat/completions", raw)
            stats = state(sc).shadow.stats
            await await_until(lambda: stats.primary_errors == 3)
            samples = await anyio.to_thread.run_sync(metrics, sc.base_url)
    for want_, got_ in ((want.value, got.value), (a_want.value, a_got.value)):
        assert type(got_) is type(want_) and got_.status_code == want_.status_code == status
        assert got_.response.content == want_.response.content and got_.body == want_.body
        for header in ("retry-after", "retry-after-ms", "x-request-id", "content-type"):
            assert got_.response.headers.get(header) == want_.response.headers.get(header)
    if status == 429:
        assert got.value.response.headers["retry-after"] == "2" and isinstance(got.value, openai.RateLimitError)
    assert a_got.value.body["type"] == "error"  # Anthropic's error shape, as the upstream sent it
    assert s_status == d_status == f"HTTP/1.1 {status} {httpx.codes.get_reason_phrase(status)}"
    assert s_body == d_body and b"Simulated error" in s_body
    strip = {"date", ROUTE}
    assert [h for h in s_headers if h[0] not in strip] == [h for h in d_headers if h[0] not in strip]
    assert stats.enqueued == 0 and stats.primary_errors == 3
    assert upstream.calls("small") == 0  # failed primary calls are not mirrored
    assert samples[("shadowroute_upstream_requests_total", (("api", "openai"), ("status", str(status))))] == 2
    assert samples[("shadowroute_upstream_requests_total", (("api", "anthropic"), ("status", str(status))))] == 1
    assert samples[("shadowroute_primary_errors_total", ())] == 3


# --------------------------------------------------------------------------- 4: bad requests


def test_bad_requests_get_api_shaped_errors_never_500(tmp_path: Path, sqlite_url: str) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = make_config(tmp_path, sqlite_url, llm.base_url, sidecar={"max_body_bytes": 1024})
        with sidecar_server(config) as sc, httpx.Client(base_url=sc.base_url) as client:
            for path, api in (("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")):
                for bad in (b"{not json", b"", b"\xff\xfe{}", b"[1, 2]", b'"text"', b"null", b"42"):
                    response = client.post(path, content=bad, headers={"content-type": "application/json"})
                    assert response.status_code == 400, (path, bad, response.text)
                    assert error_shape_ok(api, response.json()), response.text
                    assert response.json()["error"]["type"] == "invalid_request_error"
                big = json.dumps({"model": "frontier", "messages": [{"role": "user", "content": "x" * 2000}]}).encode()
                declared = client.post(path, content=big, headers={"content-type": "application/json"})

                def chunks(big: bytes = big) -> Iterator[bytes]:  # no Content-Length: checked while reading
                    for i in range(0, len(big), 256):
                        yield big[i:i + 256]

                streamed = client.post(path, content=chunks(), headers={"content-type": "application/json"})
                for response in (declared, streamed):
                    assert response.status_code == 413, response.text
                    assert error_shape_ok(api, response.json())
            captures = client.post("/v1/captures", content=b"x" * 2048)
            assert captures.status_code == 413
            stats = state(sc).shadow.stats
            assert stats.offered == 0 and stats.enqueued == 0
    assert llm.stats()["total_calls"] == 0  # nothing bad was forwarded


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/captures"])
def test_deeply_nested_json_is_a_400_not_a_500(tmp_path: Path, sqlite_url: str, path: str) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = make_config(tmp_path, sqlite_url, llm.base_url)
        with sidecar_server(config) as sc:
            response = httpx.post(sc.base_url + path, content=b"[" * 20_000 + b"]" * 20_000)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert "error" in response.json()


@pytest.mark.anyio
async def test_unreachable_or_missing_upstream(tmp_path: Path, sqlite_url: str) -> None:
    closed = tcp_socket("127.0.0.1", 0)  # bound, never listening: connections are refused
    try:
        port = closed.getsockname()[1]
        config = make_config(tmp_path, sqlite_url, f"http://127.0.0.1:{port}")
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            chat = await client.post("/v1/chat/completions", json={"model": "frontier", "messages": [{"role": "user", "content": "hi"}]})
            messages = await client.post("/v1/messages", json=anthropic_kwargs(request_for("sentiment", 1)))
            models = await client.get("/v1/models")
            samples = await anyio.to_thread.run_sync(metrics, sc.base_url)
    finally:
        closed.close()
    for response, api in ((chat, "openai"), (messages, "anthropic"), (models, "openai")):
        assert response.status_code == 502, response.text
        assert error_shape_ok(api, response.json())
    assert "unreachable" in chat.json()["error"]["message"]
    assert samples[("shadowroute_upstream_requests_total", (("api", "openai"), ("status", "connection")))] == 1
    assert samples[("shadowroute_upstream_requests_total", (("api", "other"), ("status", "connection")))] == 1

    config = make_config(tmp_path, sqlite_url, None)
    async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
        chat = await client.post("/v1/chat/completions", json={"model": "frontier", "messages": [{"role": "user", "content": "hi"}]})
        messages = await client.post("/v1/messages", content=b"{broken")
        health = await client.get("/healthz")
    assert chat.status_code == messages.status_code == 503
    assert error_shape_ok("openai", chat.json()) and error_shape_ok("anthropic", messages.json())
    assert "--upstream" in chat.json()["error"]["message"]
    assert health.status_code == 200 and health.json()["upstream"] is False


@pytest.mark.anyio
async def test_unreachable_upstream_is_counted_as_a_primary_error(tmp_path: Path, sqlite_url: str) -> None:
    """Stats promise that every offered call ends in exactly one bucket; a chat call that never
    reached the upstream is a failed primary call."""
    closed = tcp_socket("127.0.0.1", 0)
    try:
        config = make_config(tmp_path, sqlite_url, f"http://127.0.0.1:{closed.getsockname()[1]}")
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            response = await client.post("/v1/chat/completions", json={"model": "frontier", "messages": []})
            stats = state(sc).shadow.stats
            samples = await anyio.to_thread.run_sync(metrics, sc.base_url)
    finally:
        closed.close()
    assert response.status_code == 502
    assert stats.offered == 1
    ended = (stats.not_sampled + stats.primary_errors + stats.enqueued + stats.dropped
             + stats.abandoned + stats.oversize + stats.capture_errors)
    assert ended == stats.offered, stats.snapshot()
    assert samples[("shadowroute_primary_errors_total", ())] == 1


# --------------------------------------------------------------------------- 5: other paths


def test_other_paths_pass_through_unshadowed(tmp_path: Path, sqlite_url: str) -> None:
    with twin_fakes() as (direct, upstream), sidecar_server(make_config(tmp_path, sqlite_url, upstream.base_url)) as sc:
        for method, path in (("GET", "/v1/models"), ("GET", "/v1/models/frontier"),
                             ("GET", "/v1/models/nope"), ("POST", "/v1/embeddings")):
            kwargs = {"json": {"model": "frontier", "input": "hi"}} if method == "POST" else {}
            want = httpx.request(method, direct.base_url + path, **kwargs)
            got = httpx.request(method, sc.base_url + path, headers={TASK: "classify_intent"}, **kwargs)
            assert (got.status_code, got.content) == (want.status_code, want.content), path
            assert got.headers["content-type"] == want.headers["content-type"]
            assert ROUTE not in got.headers
        stats = state(sc).shadow.stats
        assert (stats.offered, stats.enqueued) == (0, 0)
        assert httpx.get(sc.base_url + "/v1/models").json()["data"][0]["id"] == "frontier"
        samples = metrics(sc.base_url)
    assert upstream.stats()["total_calls"] == 0
    assert samples[("shadowroute_captured_total", ())] == 0
    assert samples[("shadowroute_upstream_requests_total", (("api", "other"), ("status", "200")))] == 3


# --------------------------------------------------------------------------- 6: /v1/captures


def completion(text_: str) -> dict[str, Any]:
    return {
        "id": "c", "object": "chat.completion", "model": "frontier",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text_}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 2, "total_tokens": 32},
    }


@pytest.mark.anyio
async def test_capture_batches_are_validated_queued_and_stored(tmp_path: Path, db_url: str) -> None:
    good = {"task": "classify_intent", "request": {"model": "frontier", **request_for("classify_intent", 1)},
            "response": completion("refund"), "latency_ms": 12.5, "metadata": {"user": "u1"}}
    anth = {"task": "notes", "api": "anthropic", "sampled": True,
            "request": {"model": "claude-x", "max_tokens": 50, "system": "be brief",
                        "messages": [{"role": "user", "content": "hi"}]},
            "response": "hello there"}
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = make_config(tmp_path, db_url, None, candidates=llm.base_url)
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            accepted = await client.post("/v1/captures", json={"captures": [good, anth]})
            stats = state(sc).shadow.stats
            bad = await client.post("/v1/captures", json={"captures": [
                good,
                {**good, "task": ""},
                {"task": "x", "response": "y"},
                {**good, "bogus": 1},
                {**good, "latency_ms": -1},
            ]})
            others = [
                await client.post("/v1/captures", content=b"{nope"),
                await client.post("/v1/captures", json={"captures": "nope"}),
                await client.post("/v1/captures", json={}),
                await client.post("/v1/captures", json=[good]),
            ]
            offered_after_bad = stats.offered
    assert accepted.status_code == 202
    assert accepted.json() == {"received": 2, "queued": 2, "not_queued": 0}
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["type"] == "invalid_request_error"
    locs = {d["loc"] for d in error["details"]}
    assert {"captures.1.task", "captures.2.request", "captures.3.bogus", "captures.4.latency_ms"} <= locs
    assert not any(loc.startswith("captures.0") for loc in locs)
    for response in others:
        assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    assert offered_after_bad == 2  # the bad batch was refused whole
    exchanges, outputs = await stored(db_url)
    assert sorted((e.task_type, e.primary_output) for e in exchanges) == [
        ("classify_intent", "refund"), ("notes", "hello there")
    ]
    classify = next(e for e in exchanges if e.task_type == "classify_intent")
    assert classify.meta == {"user": "u1"} and classify.latency_ms == 12.5 and classify.input_tokens == 30
    notes = next(e for e in exchanges if e.task_type == "notes")
    assert notes.request["messages"][0] == {"role": "system", "content": "be brief"}
    assert sorted(o.model for o in outputs) == ["claude-small", "small"]
    assert all(o.exchange_id == classify.id and o.output for o in outputs)


# --------------------------------------------------------------------------- 7: health, metrics


def test_healthz_and_metrics_match_what_happened(tmp_path: Path, sqlite_url: str) -> None:
    settings = default_settings(latency_scale=0.0).with_model(FakeModel(name="stuck", hang=True))
    with FakeLLMServer(settings) as llm:
        config = make_config(
            tmp_path, sqlite_url, llm.base_url,
            # The five calls and the readings below must fit in the first timeout (a loaded
            # machine took more than 0.5 s): then one capture is in flight and one waits.
            models={"stuck": {"base_url": llm.base_url + "/v1", "timeout_s": 2.0, "max_retries": 0}},
            tasks={"classify_intent": {"candidates": ["stuck"], "sample_rate": 1.0}},
            mirror={"queue_size": 1, "workers": 1, "circuit_failures": 100},
        )
        with sidecar_server(config) as sc, httpx.Client(base_url=sc.base_url) as client:
            health = client.get("/healthz")
            assert health.status_code == 200
            assert health.json() == {"status": "ok", "upstream": True, "database": "ok",
                                     "queue_depth": 0, "spool_pending": 0}
            stats = state(sc).shadow.stats
            for i in range(5):  # worker 1 hangs on the candidate, 1 waits, 3 are dropped
                if i == 4:
                    response = client.post("/v1/messages", json=anthropic_kwargs(request_for("classify_intent", i)),
                                           headers={TASK: "classify_intent"})
                else:
                    response = client.post("/v1/chat/completions",
                                           json={"model": "frontier", **request_for("classify_intent", i)},
                                           headers={TASK: "classify_intent"})
                assert response.status_code == 200
                wait_until(lambda i=i: stats.enqueued + stats.dropped_queue_full == i + 1)
            wait_until(lambda: metrics(sc.base_url)[
                ("shadowroute_upstream_latency_seconds_count", (("api", "openai"),))] == 4)
            during = metrics(sc.base_url)
            health_during = client.get("/healthz").json()
            # Both mirrored captures time out on the hanging candidate, then are stored.
            wait_until(lambda: stats.stored_exchanges == 2, timeout=15)
            after = metrics(sc.base_url)
    assert during[("shadowroute_captured_total", ())] == 5
    assert during[("shadowroute_sampled_total", ())] == 5
    assert during[("shadowroute_dropped_total", (("reason", "queue_full"),))] == 3 == stats.dropped_queue_full
    assert during[("shadowroute_queue_depth", ())] == 1 and health_during["queue_depth"] == 1
    assert during[("shadowroute_spool_pending", ())] == 0
    assert during[("shadowroute_upstream_latency_seconds_bucket", (("api", "openai"), ("le", "+Inf")))] == 4
    assert during[("shadowroute_upstream_latency_seconds_bucket", (("api", "anthropic"), ("le", "+Inf")))] == 1
    assert during[("shadowroute_upstream_latency_seconds_sum", (("api", "openai"),))] > 0
    assert during[("shadowroute_upstream_requests_total", (("api", "openai"), ("status", "200")))] == 4
    assert after[("shadowroute_candidate_errors_total", (("kind", "timeout"),))] == 2
    assert after[("shadowroute_mirrored_total", ())] == 2
    assert after[("shadowroute_stored_exchanges_total", ())] == 2
    assert after[("shadowroute_queue_depth", ())] == 0
    assert after[("shadowroute_dropped_total", (("reason", "shutdown"),))] == 0
    # The ledger: 2 accepted, 2 stored, none discarded or lost.
    assert after[("shadowroute_accepted_total", ())] == 2
    assert after[("shadowroute_discarded_total", (("reason", "shutdown"),))] == 0
    assert after[("shadowroute_discarded_total", (("reason", "capture_error"),))] == 0
    assert after[("shadowroute_lost_exchanges_total", ())] == 0


# --------------------------------------------------------------------------- 8: done means


def _pg_allow_connections(db_url: str, allow: bool) -> None:
    """Open or shut a Postgres database: ALLOW_CONNECTIONS, and when shutting it, terminate
    every open session (the sidecar's pool included)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    url = make_url(db_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{url.database}" WITH ALLOW_CONNECTIONS {str(allow).lower()}'))
            if not allow:
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = :name AND pid <> pg_backend_pid()"),
                    {"name": url.database},
                )
    finally:
        admin.dispose()


def _answer_text(kind: str, response: httpx.Response) -> str:
    if kind == "openai":
        return response.json()["choices"][0]["message"]["content"]
    if kind == "anthropic":
        return "".join(block["text"] for block in response.json()["content"])
    parts = []
    for line in response.text.splitlines():
        if not line.startswith("data:") or line == "data: [DONE]":
            continue
        event = json.loads(line[5:])
        if kind == "openai-stream":
            parts.extend(c["delta"].get("content") or "" for c in event.get("choices", []))
        elif event.get("type") == "content_block_delta":
            parts.append(event["delta"].get("text", ""))
    return "".join(parts)


@asynccontextmanager
async def _database_outage(db_url: str) -> AsyncIterator[Callable[[], Any]]:
    """Yields ``cut()``; whatever happens, the database is open again afterwards."""
    cut_done = False

    async def cut() -> None:
        nonlocal cut_done
        cut_done = True
        await anyio.to_thread.run_sync(_pg_allow_connections, db_url, False)

    try:
        yield cut
    finally:
        if cut_done:
            await anyio.to_thread.run_sync(_pg_allow_connections, db_url, True)


CANDIDATE_TIMEOUT_S = 4.0
"""Candidates that hang are cut at this; a primary call that waited on one would take longer."""


@pytest.mark.anyio
async def test_done_means_no_primary_call_fails_while_candidates_and_database_fail(
    tmp_path: Path, db_url: str
) -> None:
    """200 calls (concurrent, half streamed, OpenAI and Anthropic) through the sidecar while
    every candidate starts to fail mid-run (one hangs, one answers 500) and the database is
    unreachable (Postgres: shut mid-run; SQLite run: a database server that refuses
    connections from the start). Every primary call succeeds with the right answer; captures
    are spooled; a restarted sidecar with a working database replays them all."""
    postgres = db_url.startswith("postgresql")
    closed = tcp_socket("127.0.0.1", 0)
    outage_url = db_url if postgres else f"postgresql+psycopg://postgres@127.0.0.1:{closed.getsockname()[1]}/gone"
    demos = [d.request for d in sample_requests(20, seed=5)]
    n_calls, kinds = 200, ("openai", "openai-stream", "anthropic", "anthropic-stream")
    spool_dir = tmp_path / "spool"

    def body_for(kind: str, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if kind.startswith("openai"):
            return "/v1/chat/completions", {"model": "frontier", **request, "stream": kind.endswith("stream")}
        return "/v1/messages", {**anthropic_kwargs(request), "stream": kind.endswith("stream")}

    with FakeLLMServer(default_settings(latency_scale=0.05)) as llm:
        async with httpx.AsyncClient(base_url=llm.base_url, timeout=30) as client:
            expected = {}
            for i, request in enumerate(demos):
                for kind in ("openai", "anthropic"):
                    path, body = body_for(kind, request)
                    expected[(i, kind)] = _answer_text(kind, await client.post(path, json=body))
        assert all(expected.values())

        def config_with(url: str) -> Config:
            return make_config(
                tmp_path, url, llm.base_url,
                models={
                    "small": {"base_url": llm.base_url + "/v1", "timeout_s": CANDIDATE_TIMEOUT_S, "max_retries": 0,
                              "max_concurrency": 32},
                    "claude-small": {"base_url": llm.base_url, "api": "anthropic", "timeout_s": CANDIDATE_TIMEOUT_S,
                                     "max_retries": 1, "max_concurrency": 32},
                },
                tasks={"classify_intent": {"candidates": ["small", "claude-small"], "sample_rate": 1.0}},
                mirror={"circuit_failures": 5, "circuit_reset_s": 0.5, "retry_backoff_s": 0.05,
                        "shutdown_deadline_s": 10.0},
                store={"batch_size": 25},
            )

        latencies: list[float] = []
        failures: list[str] = []
        try:
            async with _database_outage(db_url) as cut_database:
                async with sidecar_server(config_with(outage_url)) as sc, httpx.AsyncClient(
                    base_url=sc.base_url, timeout=30,
                    limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
                ) as client:
                    sidecar = state(sc)
                    stats = sidecar.shadow.stats
                    limiter = anyio.Semaphore(16)
                    done = 0

                    async def one(i: int) -> None:
                        nonlocal done
                        index, kind = i % len(demos), kinds[i % len(kinds)]
                        path, body = body_for(kind, demos[index])
                        async with limiter:
                            began = time.perf_counter()
                            response = await client.post(path, json=body, headers={
                                TASK: "classify_intent",
                                "authorization": f"Bearer {OPENAI_KEY}", "x-api-key": ANTHROPIC_KEY,
                            })
                            latencies.append(time.perf_counter() - began)
                        answer = _answer_text(kind, response) if response.status_code == 200 else None
                        if answer != expected[(index, kind.removesuffix("-stream"))]:
                            failures.append(f"call {i} ({kind}): {response.status_code} {response.text[:200]}")
                        done += 1
                        if done == 50:
                            llm.update_model("small", hang=True)
                        elif done == 80:
                            llm.update_model("claude-small", error_rate=1.0, error_status=500)
                        elif done == 100 and postgres:
                            await cut_database()

                    async with anyio.create_task_group() as tg:
                        for i in range(n_calls):
                            tg.start_soon(one, i)

                    assert failures == [] and len(latencies) == n_calls
                    # Nothing on the primary path waited on a candidate timeout (calls take
                    # ~0.1 s; the timeout is far above what CPU contention on 2 cores adds).
                    assert max(latencies) < CANDIDATE_TIMEOUT_S, max(latencies)
                    await await_until(lambda: stats.mirrored == n_calls, timeout=20, what="mirroring drained")
                    await await_until(
                        lambda: stats.stored_exchanges + stats.spooled_exchanges == n_calls, timeout=10
                    )
                    health = (await client.get("/healthz")).json()
                    samples = await anyio.to_thread.run_sync(metrics, sc.base_url)
                # Phase 1 over: the sidecar stopped while the database was still unreachable.
                assert stats.offered == stats.sampled == n_calls
                assert (stats.primary_errors, stats.capture_errors, stats.dropped, stats.abandoned) == (0, 0, 0, 0)
                assert stats.candidate_errors["timeout"] >= 1 and stats.candidate_errors["server_error"] >= 1
                assert stats.spooled_exchanges > 0 and stats.store_errors > 0
                if not postgres:
                    assert stats.stored_exchanges == 0 and stats.spooled_exchanges == n_calls
                else:
                    assert stats.stored_exchanges > 0  # written before the outage
                assert health["database"] == "spooling" and health["spool_pending"] == stats.spool_pending > 0
                assert samples[("shadowroute_spool_pending", ())] == stats.spool_pending
                assert samples[("shadowroute_spooled_exchanges_total", ())] == stats.spooled_exchanges
                assert samples[("shadowroute_captured_total", ())] == n_calls
                assert samples[("shadowroute_dropped_total", (("reason", "queue_full"),))] == 0
                assert samples[("shadowroute_upstream_latency_seconds_count", (("api", "openai"),))] == n_calls // 2
                stored_before = stats.stored_exchanges
                assert Spool(spool_dir).pending() == n_calls - stored_before
                assert not any(secret in spool_text(spool_dir) for secret in SECRETS)
        finally:
            closed.close()

        # Phase 2: restarted with a working database, the sidecar replays the spool.
        async with sidecar_server(config_with(db_url)) as sc:
            replay = state(sc).shadow.stats
            await await_until(lambda: replay.spool_pending == 0 and replay.replayed_exchanges > 0, timeout=15)
            async with httpx.AsyncClient(base_url=sc.base_url) as client:
                health = (await client.get("/healthz")).json()
        assert replay.replayed_exchanges == n_calls - stored_before
        assert health["database"] == "ok"
    assert Spool(spool_dir).pending() == 0
    exchanges, outputs = await stored(db_url)
    assert len(exchanges) == n_calls and {e.task_type for e in exchanges} == {"classify_intent"}
    index_of = {json.dumps(r["messages"][-1]): i for i, r in enumerate(demos)}
    for e in exchanges:
        assert e.primary_output == expected[(index_of[json.dumps(e.request["messages"][-1])], "openai")]
    kinds_seen = {(o.model, o.error_kind) for o in outputs}
    assert {("small", None), ("claude-small", None), ("small", "timeout"), ("claude-small", "server_error")} <= kinds_seen
    assert await traffic_total(db_url) == n_calls
    dump = await stored_text(db_url)
    assert not any(secret in dump for secret in SECRETS)


@pytest.mark.anyio
async def test_upstream_that_does_not_answer_in_time_is_a_504(tmp_path: Path, sqlite_url: str) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as upstream:
        upstream.update_model("frontier", hang=True)
        config = make_config(tmp_path, sqlite_url, upstream.base_url, sidecar={"upstream_timeout_s": 0.3})
        with sidecar_server(config) as server:
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                chat = await client.post("/v1/chat/completions", json={"model": "frontier", "messages": [{"role": "user", "content": "hi"}]})
                messages = await client.post("/v1/messages", json={"model": "frontier", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
            stats = state(server).shadow.stats
    assert chat.status_code == 504 and chat.json()["error"]["type"] == "upstream_timeout"
    assert messages.status_code == 504 and messages.json()["type"] == "error"
    assert stats.primary_errors == 2
