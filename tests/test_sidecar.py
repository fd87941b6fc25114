"""shadowroute serve: SDKs and curl work as against the upstream; shadowing never hurts them."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx
import httpx2
import openai
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from shadowroute import load_config
from shadowroute.fakellm import FakeLLMServer, default_settings, make_request
from shadowroute.serving import BackgroundServer, tcp_socket
from shadowroute.sidecar import create_app
from shadowroute.store import CandidateOutput, Exchange, Store

pytestmark = pytest.mark.anyio


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as server:
        yield server


def sidecar_config(llm: FakeLLMServer | None, tmp_path: Path, db_url: str, **sidecar: Any):
    base = llm.base_url if llm else "http://127.0.0.1:9"
    return load_config(data={
        "database_url": db_url,
        "models": {
            "small": {"base_url": base + "/v1", "max_retries": 0, "timeout_s": 2},
            "claude-small": {"base_url": base, "api": "anthropic", "max_retries": 0, "timeout_s": 2},
        },
        "tasks": {
            "classify_intent": {"candidates": ["small", "claude-small"], "sample_rate": 1.0},
            "sentiment": {"candidates": ["small"], "sample_rate": 1.0},
        },
        "default_sample_rate": 1.0,
        "sidecar": {"upstream": base, **sidecar},
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05, "retry_interval_s": 0.2},
    })


def classify() -> dict[str, Any]:
    return make_request("classify_intent", random.Random(5))


async def stored(url: str) -> tuple[list[Exchange], list[CandidateOutput]]:
    async with await Store.open(url) as store, store.session() as session:
        return (
            list((await session.scalars(select(Exchange))).all()),
            list((await session.scalars(select(CandidateOutput))).all()),
        )


async def test_sdks_through_the_sidecar_match_the_upstream(llm, tmp_path, db_url) -> None:
    request = classify()
    system, messages = request["messages"][0]["content"], request["messages"][1:]
    with BackgroundServer(create_app(sidecar_config(llm, tmp_path, db_url))) as sidecar:
        results: dict[str, list[str]] = {}
        for name, base in (("direct", llm.base_url), ("sidecar", sidecar.base_url)):
            async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-secret-openai") as oa, \
                    anthropic.AsyncAnthropic(base_url=base, api_key="sk-ant-secret") as an:
                headers = {"X-Shadowroute-Task": "classify_intent"}
                plain = await oa.chat.completions.create(model="frontier", extra_headers=headers, **request)
                stream = await oa.chat.completions.create(model="frontier", stream=True, extra_headers=headers, **request)
                streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
                message = await an.messages.create(model="frontier", max_tokens=300, system=system, messages=messages, extra_headers=headers)
                async with an.messages.stream(model="frontier", max_tokens=300, system=system, messages=messages, extra_headers=headers) as s:
                    an_streamed = "".join([t async for t in s.text_stream])
            with openai.OpenAI(base_url=base + "/v1", api_key="sk-secret-openai", http_client=httpx2.Client()) as sync_oa:
                sync_plain = sync_oa.chat.completions.create(model="frontier", extra_headers=headers, **request)
            results[name] = [  # ids and timestamps are per call; everything else must match
                plain.model_dump(exclude={"id", "created"}), streamed,
                message.model_dump(exclude={"id"}), an_streamed, sync_plain.choices[0].message.content,
            ]
            async with httpx.AsyncClient() as plain_client:
                raw = await plain_client.post(base + "/v1/chat/completions", json={"model": "frontier", **request}, headers=headers)
            assert raw.status_code == 200
            if name == "sidecar":
                assert raw.headers["x-shadowroute-route"] == "model=frontier; route=primary; task=classify_intent"
    assert results["sidecar"] == results["direct"]
    exchanges, outputs = await stored(db_url)
    assert len(exchanges) == 6  # five SDK calls and one plain call through the sidecar
    assert {e.task_type for e in exchanges} == {"classify_intent"}
    assert {e.primary_output for e in exchanges} == {results["direct"][1]}
    assert len(outputs) == 12 and all(o.error_kind is None for o in outputs)
    rows = json.dumps([(e.request, e.meta) for e in exchanges])
    assert "sk-secret-openai" not in rows and "sk-ant-secret" not in rows


def test_curl_gets_the_same_bytes(llm, tmp_path, db_url) -> None:
    body = json.dumps({"model": "frontier", **classify()})
    stream_body = json.dumps({"model": "frontier", "stream": True, **classify()})
    with BackgroundServer(create_app(sidecar_config(llm, tmp_path, db_url))) as sidecar:
        def curl(base: str, data: str) -> bytes:
            return subprocess.run(
                ["curl", "-sN", base + "/v1/chat/completions", "-H", "content-type: application/json", "-d", data],
                capture_output=True, check=True, timeout=30,
            ).stdout

        def without_ids(raw: bytes) -> dict[str, Any]:
            parsed = json.loads(raw)
            assert parsed["id"] and parsed["created"]
            return {k: v for k, v in parsed.items() if k not in ("id", "created")}

        assert without_ids(curl(sidecar.base_url, body)) == without_ids(curl(llm.base_url, body))

        def events(raw: bytes) -> list[Any]:
            return [
                {k: v for k, v in json.loads(line[6:]).items() if k not in ("id", "created")}
                if line != b"data: [DONE]" else "[DONE]"
                for line in raw.splitlines() if line.startswith(b"data: ")
            ]

        direct, relayed = events(curl(llm.base_url, stream_body)), events(curl(sidecar.base_url, stream_body))
        assert relayed == direct and relayed[-1] == "[DONE]" and len(relayed) > 3


async def test_task_from_rules_and_default_and_header_stripped(tmp_path, db_url) -> None:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={
            "id": "c", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "positive"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        })

    config = sidecar_config(None, tmp_path, db_url, rules=[
        {"task": "sentiment", "model": "tiny-*"},
        {"task": "classify_intent", "metadata": {"feature": "intent"}},
    ])
    config = config.model_copy(update={"tasks": {}})  # no candidates: only the routing matters
    app = create_app(config, upstream_transport=httpx.MockTransport(upstream))
    with BackgroundServer(app) as sidecar:
        async with httpx.AsyncClient(base_url=sidecar.base_url) as client:
            for body, headers in [
                ({"model": "tiny-2", "messages": []}, {}),
                ({"model": "big", "messages": [], "metadata": {"feature": "intent"}}, {}),
                ({"model": "big", "messages": []}, {}),
                ({"model": "tiny-2", "messages": []}, {"X-Shadowroute-Task": "summarize_ticket"}),
            ]:
                response = await client.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-zzz", **headers})
                assert response.status_code == 200
    assert all("x-shadowroute-task" not in r.headers for r in seen)
    assert all(r.headers["authorization"] == "Bearer sk-zzz" for r in seen)
    exchanges, _ = await stored(db_url)
    assert sorted(e.task_type for e in exchanges) == ["classify_intent", "default", "sentiment", "summarize_ticket"]


async def test_upstream_errors_are_relayed_exactly(llm, tmp_path, db_url) -> None:
    llm.update_model("frontier", error_rate=1.0, error_status=429, retry_after=2)
    with BackgroundServer(create_app(sidecar_config(llm, tmp_path, db_url))) as sidecar:
        async with httpx.AsyncClient() as client:
            body = {"model": "frontier", **classify()}
            direct = await client.post(llm.base_url + "/v1/chat/completions", json=body)
            relayed = await client.post(sidecar.base_url + "/v1/chat/completions", json=body)
    assert relayed.status_code == direct.status_code == 429
    assert relayed.content == direct.content
    assert relayed.headers["retry-after"] == direct.headers["retry-after"] == "2"


@pytest.mark.parametrize("path, shape", [("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")])
async def test_bad_input_gets_api_shaped_errors_never_500(llm, tmp_path, db_url, path, shape) -> None:
    config = sidecar_config(llm, tmp_path, db_url, max_body_bytes=2048)
    with BackgroundServer(create_app(config)) as sidecar:
        async with httpx.AsyncClient(base_url=sidecar.base_url) as client:
            malformed = await client.post(path, content=b"{not json")
            not_object = await client.post(path, content=b"[1, 2]")
            too_big = await client.post(path, content=b'{"x": "' + b"a" * 5000 + b'"}')
    for response, status in ((malformed, 400), (not_object, 400), (too_big, 413)):
        assert response.status_code == status
        body = response.json()
        if shape == "openai":
            assert set(body["error"]) >= {"message", "type"}
        else:
            assert body["type"] == "error" and body["error"]["message"]


async def test_unreachable_or_missing_upstream(tmp_path, db_url) -> None:
    closed = tcp_socket("127.0.0.1", 0)
    try:
        config = sidecar_config(None, tmp_path, db_url, upstream=f"http://127.0.0.1:{closed.getsockname()[1]}")
        with BackgroundServer(create_app(config)) as sidecar:
            response = httpx.post(sidecar.base_url + "/v1/chat/completions", json={"model": "m", "messages": []})
        assert response.status_code == 502 and "upstream unreachable" in response.json()["error"]["message"]
    finally:
        closed.close()
    config = sidecar_config(None, tmp_path, db_url, upstream=None)
    with BackgroundServer(create_app(config)) as sidecar:
        response = httpx.post(sidecar.base_url + "/v1/messages", json={"model": "m", "messages": []})
    assert response.status_code == 503 and response.json()["type"] == "error"
    assert "--upstream" in response.json()["error"]["message"]


async def test_other_paths_pass_through_unshadowed(llm, tmp_path, db_url) -> None:
    app = create_app(sidecar_config(llm, tmp_path, db_url))
    with BackgroundServer(app) as sidecar:
        response = httpx.get(sidecar.base_url + "/v1/models")
        direct = httpx.get(llm.base_url + "/v1/models")
        assert response.status_code == 200 and response.json() == direct.json()
        assert "x-shadowroute-route" not in response.headers
        assert app.state.sidecar.shadow.stats.offered == 0


async def test_capture_ingest_endpoint(llm, tmp_path, db_url) -> None:
    good = {"captures": [{
        "task": "sentiment",
        "request": {"model": "frontier", "messages": [{"role": "user", "content": "Great kettle!"}]},
        "response": "positive",
        "latency_ms": 12.5,
        "sampled": True,
    }]}
    bad = {"captures": [good["captures"][0], {"task": "", "request": "nope", "response": 3}]}
    with BackgroundServer(create_app(sidecar_config(llm, tmp_path, db_url))) as sidecar:
        accepted = httpx.post(sidecar.base_url + "/v1/captures", json=good)
        refused = httpx.post(sidecar.base_url + "/v1/captures", json=bad)
        not_json = httpx.post(sidecar.base_url + "/v1/captures", content=b"{")
    assert accepted.status_code == 202 and accepted.json() == {"received": 1, "queued": 1, "not_queued": 0}
    assert refused.status_code == 400
    locs = {d["loc"] for d in refused.json()["error"]["details"]}
    assert any(loc.startswith("captures.1.") for loc in locs) and not any(loc.startswith("captures.0") for loc in locs)
    assert not_json.status_code == 400
    exchanges, outputs = await stored(db_url)
    assert [(e.task_type, e.primary_output) for e in exchanges] == [("sentiment", "positive")]
    assert [o.model for o in outputs] == ["small"]


async def test_healthz_and_metrics(llm, tmp_path, db_url) -> None:
    llm.update_model("small", error_rate=1.0, error_status=500)
    app = create_app(sidecar_config(llm, tmp_path, db_url))
    with BackgroundServer(app) as sidecar:
        for _ in range(3):
            r = httpx.post(sidecar.base_url + "/v1/chat/completions", json={"model": "frontier", **classify()},
                           headers={"X-Shadowroute-Task": "sentiment"})
            assert r.status_code == 200
        stats = app.state.sidecar.shadow.stats
        with anyio.fail_after(5):
            while stats.mirrored < 3:
                await anyio.sleep(0.02)
        health = httpx.get(sidecar.base_url + "/healthz").json()
        metrics = httpx.get(sidecar.base_url + "/metrics").text
    assert health["status"] == "ok" and health["queue_depth"] == 0
    assert "shadowroute_captured_total 3.0" in metrics
    assert "shadowroute_sampled_total 3.0" in metrics
    assert 'shadowroute_dropped_total{reason="queue_full"} 0.0' in metrics
    assert 'shadowroute_candidate_errors_total{kind="server_error"} 3.0' in metrics
    assert "shadowroute_queue_depth 0.0" in metrics and "shadowroute_spool_pending" in metrics
    assert 'shadowroute_upstream_latency_seconds_count{api="openai"} 3.0' in metrics
    assert 'shadowroute_upstream_requests_total{api="openai",status="200"} 3.0' in metrics


async def _traffic(base_url: str, n: int, errors: list[str]) -> list[str]:
    """n concurrent production calls (a third streamed); returns their texts."""
    texts: list[str] = [""] * n
    rng = random.Random(9)
    bodies = [{"model": "frontier", **make_request("classify_intent", rng)} for _ in range(n)]
    limiter = anyio.CapacityLimiter(16)
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        async def one(i: int) -> None:
            async with limiter:
                headers = {"X-Shadowroute-Task": "classify_intent"}
                try:
                    if i % 3 == 0:
                        async with client.stream("POST", "/v1/chat/completions", json={**bodies[i], "stream": True}, headers=headers) as r:
                            raw = b"".join([c async for c in r.aiter_raw()])
                            assert r.status_code == 200 and raw.endswith(b"data: [DONE]\n\n")
                            texts[i] = "stream-ok"
                    else:
                        r = await client.post("/v1/chat/completions", json=bodies[i], headers=headers)
                        assert r.status_code == 200
                        texts[i] = r.json()["choices"][0]["message"]["content"]
                except Exception as exc:  # noqa: BLE001 - any failure is a failed primary call
                    errors.append(f"{i}: {type(exc).__name__}: {exc}")

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
    return texts


@pytest.mark.postgres
async def test_candidates_and_database_killed_mid_run_no_primary_fails(llm, tmp_path, postgres_url) -> None:
    """The acceptance test: every candidate dies and the database goes away mid-run; every
    primary call still succeeds, and once the database is back nothing accepted is lost."""
    name = make_url(postgres_url).database
    admin = create_engine(make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    app = create_app(sidecar_config(llm, tmp_path, postgres_url))
    errors: list[str] = []
    try:
        with BackgroundServer(app) as sidecar:
            first = await _traffic(sidecar.base_url, 60, errors)
            llm.update_model("small", hang=True)                   # one candidate hangs (2 s timeout)
            llm.update_model("claude-small", error_rate=1.0)       # the other returns 500s
            with admin.connect() as conn:                          # and the database goes away
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            second = await _traffic(sidecar.base_url, 140, errors)
            stats = app.state.sidecar.shadow.stats
            with anyio.fail_after(20):
                while stats.spooled_exchanges == 0:
                    await anyio.sleep(0.05)
            with admin.connect() as conn:                          # the database comes back
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            llm.update_model("small", hang=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    assert errors == [], errors[:5]
    assert all(first) and all(second)
    assert stats.spooled_exchanges > 0 and stats.dropped == 0
    exchanges, outputs = await stored(postgres_url)
    # Everything accepted is stored: what was spooled was replayed (at the latest on shutdown).
    assert len(exchanges) == 200 == stats.stored_exchanges + stats.replayed_exchanges
    kinds = {o.error_kind for o in outputs}
    assert {"timeout", "server_error"} <= kinds


async def test_dead_database_from_start_spools_then_restart_replays(llm, tmp_path, sqlite_url) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    dead = sidecar_config(llm, tmp_path, f"sqlite+aiosqlite:///{blocker / 'x.db'}")
    errors: list[str] = []
    app = create_app(dead)
    with BackgroundServer(app) as sidecar:
        texts = await _traffic(sidecar.base_url, 30, errors)
    assert errors == [] and all(texts)
    assert app.state.sidecar.shadow.stats.spooled_exchanges == 30
    alive = create_app(sidecar_config(llm, tmp_path, sqlite_url))  # same spool directory
    with BackgroundServer(alive):
        stats = alive.state.sidecar.shadow.stats
        with anyio.fail_after(10):
            while stats.replayed_exchanges < 30:
                await anyio.sleep(0.05)
    exchanges, _ = await stored(sqlite_url)
    assert len(exchanges) == 30
