"""The sidecar (``shadowroute serve``) run for real: uvicorn on loopback, the official SDKs and
curl in front, the fake LLM server behind; what goes up and comes back, byte for byte.

Byte-for-byte comparisons use *twin* fake servers: two servers with the same settings, one called
directly and one behind the sidecar, called in the same order. The fake's answers and ids are
functions of (seed, model, call number), so the twins answer identically; only ``created`` (wall
clock seconds) may differ, and it is blanked before comparing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import anthropic
import anyio
import httpx
import openai
import pytest

from shadowroute.sidecar import Sidecar, create_app
from shadowroute.store import CandidateOutput
from support.sidecar import ANTHROPIC_KEY, OPENAI_KEY, ROUTE, SECRETS, TASK

CREATED = re.compile(rb'"created": ?\d+')


def sse_payloads(body: bytes) -> list[bytes]:
    return [line for line in body.split(b"\n") if line.startswith((b"data:", b"event:"))]


# --------------------------------------------------------------------------- SDKs


@pytest.mark.anyio
@pytest.mark.parametrize("mirror", ["off", "normal"])
async def test_async_sdks_get_what_the_upstream_gives_and_exchanges_are_stored(
    tmp_path: Path, db_url: str, recording_transport, twin_fakes, make_config, stored,
    spool_text, sidecar_preset, sidecar_server, stored_text, request_for, anthropic_kwargs,
    mirror: str,
) -> None:
    """OpenAI and Anthropic, streamed and not, through the sidecar; with ``mirror_process``
    the same exchanges are stored by the mirror process from the bytes handed over."""
    recorder = recording_transport()
    with twin_fakes() as (direct, upstream):
        config = make_config(db_url, sidecar_preset(upstream.base_url),
                             sidecar={"mirror_process": mirror})
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


def test_sync_sdks_get_what_the_upstream_gives_and_exchanges_are_stored(
    tmp_path: Path, db_url: str, request_for, stored, stored_text, twin_fakes, make_config,
    sidecar_preset, sidecar_server, anthropic_kwargs,
) -> None:
    request = request_for("classify_intent", 7)
    headers = {TASK: "classify_intent"}
    with twin_fakes() as (direct, upstream):
        config = make_config(db_url, sidecar_preset(upstream.base_url))
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
def test_curl_gets_the_upstream_bytes(
    tmp_path: Path, sqlite_url: str, api: str, stream: bool, request_for, twin_fakes,
    sidecar_server, sidecar_state, wait_until, anthropic_kwargs, make_config, sidecar_preset,
    curl,
) -> None:
    request = request_for("summarize_ticket", 11)
    if api == "openai":
        path, auth = "/v1/chat/completions", f"authorization: Bearer {OPENAI_KEY}"
        body = {"model": "frontier", **request, "stream": stream}
    else:
        path, auth = "/v1/messages", f"x-api-key: {ANTHROPIC_KEY}"
        body = {**anthropic_kwargs(request), "stream": stream}
    raw = json.dumps(body).encode()
    with twin_fakes() as (direct, upstream), sidecar_server(make_config(sqlite_url, sidecar_preset(upstream.base_url))) as sc:
        d_status, d_headers, d_body = curl(direct.base_url + path, raw, auth)
        s_status, s_headers, s_body = curl(sc.base_url + path, raw, auth, "x-shadowroute-task: sentiment")
        sidecar = sidecar_state(sc)
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
async def test_task_header_and_hop_by_hop_headers_with_a_mock_upstream(
    tmp_path: Path, sqlite_url: str, make_config, sidecar_preset, await_until,
) -> None:
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

    config = make_config(sqlite_url, sidecar_preset("https://upstream.test/base"))
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


# --------------------------------------------------------------------------- other paths


def test_other_paths_pass_through_unshadowed(
    tmp_path: Path, sqlite_url: str, twin_fakes, sidecar_server, metrics, make_config,
    sidecar_preset, sidecar_state,
) -> None:
    with twin_fakes() as (direct, upstream), sidecar_server(make_config(sqlite_url, sidecar_preset(upstream.base_url))) as sc:
        for method, path in (("GET", "/v1/models"), ("GET", "/v1/models/frontier"),
                             ("GET", "/v1/models/nope"), ("POST", "/v1/embeddings")):
            kwargs = {"json": {"model": "frontier", "input": "hi"}} if method == "POST" else {}
            want = httpx.request(method, direct.base_url + path, **kwargs)
            got = httpx.request(method, sc.base_url + path, headers={TASK: "classify_intent"}, **kwargs)
            assert (got.status_code, got.content) == (want.status_code, want.content), path
            assert got.headers["content-type"] == want.headers["content-type"]
            assert ROUTE not in got.headers
        stats = sidecar_state(sc).shadow.stats
        assert (stats.offered, stats.enqueued) == (0, 0)
        assert httpx.get(sc.base_url + "/v1/models").json()["data"][0]["id"] == "frontier"
        samples = metrics(sc.base_url)
    assert upstream.stats()["total_calls"] == 0
    assert samples[("shadowroute_captured_total", ())] == 0
    assert samples[("shadowroute_upstream_requests_total", (("api", "other"), ("status", "200")))] == 3
