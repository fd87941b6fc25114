"""Trust boundaries: nobody who can reach the sidecar can spend the team's money or poison its
evidence. The ingest token on ``/v1/captures`` (and remote mode sending it), the metrics token,
``serve`` refusing an exposed address without a token, a per-client capture rate, and every
exchange's source, which ``prune --source`` removes exactly. Through the real server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from shadowroute import Shadow
from shadowroute.fakellm import FakeLLMServer, default_settings
from shadowroute.records import TrafficRecord, utcnow
from shadowroute.store import Store
from shadowroute.store.models import CandidateOutput, Exchange, Score, TrafficDaily
from shadowroute.store.retention import prune
from support.fuzz import fuzz
from support.sidecar import raw_http

TOKEN = "ingest-3f9c2a71d0b84e6f"
METRICS = "metrics-77aa01"
CAPTURE = {"task": "classify_intent", "request": {"model": "frontier", "messages": [
    {"role": "user", "content": "where is my parcel?"}]}, "response": "shipping", "sampled": True}


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_TEST_INGEST", TOKEN)
    monkeypatch.setenv("SR_TEST_METRICS", METRICS)


@pytest.fixture
def guarded(tokens: None, tmp_path: Path, sqlite_url: str, make_config, sidecar_preset,
            sidecar_server) -> Iterator[Any]:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = make_config(sqlite_url, sidecar_preset(llm.base_url), sidecar={
            "ingest_token_env": "SR_TEST_INGEST", "metrics_token_env": "SR_TEST_METRICS",
            "captures_per_minute": 5})
        with sidecar_server(config) as sc:
            yield sc


def post(sc: Any, n: int = 1, **headers: str) -> httpx.Response:
    return httpx.post(sc.base_url + "/v1/captures", json={"captures": [CAPTURE] * n},
                      headers=headers, timeout=10)


def test_captures_need_the_ingest_token(guarded: Any, sidecar_state, metrics) -> None:
    stats = sidecar_state(guarded).shadow.stats
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"},
                    {"authorization": f"Bearer {TOKEN}x"}):
        response = post(guarded, **headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["type"] == "authentication_error"
        assert response.headers["www-authenticate"] == "Bearer"
    assert stats.offered == 0 and stats.enqueued == 0  # nothing queued, nothing stored
    ok = post(guarded, authorization=f"Bearer {TOKEN}")
    assert ok.status_code == 202 and ok.json()["queued"] == 1
    samples = metrics_with_token(guarded)
    assert samples[("shadowroute_captures_refused_total", (("reason", "unauthorized"),))] == 4


def metrics_with_token(sc: Any) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(sc.base_url + "/metrics", headers={"authorization": f"Bearer {METRICS}"})
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_metrics_need_their_token(guarded: Any) -> None:
    assert httpx.get(guarded.base_url + "/metrics").status_code == 401
    assert httpx.get(guarded.base_url + "/metrics",
                     headers={"authorization": f"Bearer {TOKEN}"}).status_code == 401
    assert metrics_with_token(guarded)  # the right one
    health = httpx.get(guarded.base_url + "/healthz").json()  # no secrets, no task names
    assert (health["captures"], health["daily_budget_usd"]) == ("token", [10.0])


def test_one_client_cannot_send_more_than_its_captures_a_minute(guarded: Any,
                                                                sidecar_state) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert post(guarded, 3, **auth).status_code == 202
    refused = post(guarded, 3, **auth)  # 3 + 3 > 5 a minute
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "captures_per_minute" in refused.json()["error"]["message"]
    assert sidecar_state(guarded).shadow.stats.offered == 3  # the refused batch queued nothing
    samples = metrics_with_token(guarded)
    assert samples[("shadowroute_captures_refused_total", (("reason", "rate_limited"),))] == 3


def test_odd_authorization_headers_are_a_401_never_a_500(guarded: Any) -> None:
    @fuzz(60)
    @given(value=st.binary(max_size=20_000).filter(
        lambda b: not any(c in b for c in b"\r\n\x00") and b.strip() == b))
    @example(value=b"Bearer " + b"\xff\xfe" * 100)
    @example(value=b"Bearer " + "\u00e9".encode() * 50)
    @example(value=b"bearer")
    @example(value=b"Bearer " + b"a" * 16_000)
    @example(value=b"Bearer " + TOKEN.encode() + b"\x01")
    def run(value: bytes) -> None:
        answer = raw_http(guarded.port, b"POST /v1/captures HTTP/1.1\r\nhost: sidecar\r\n"
                          b"content-type: application/json\r\nauthorization: " + value,
                          b'{"captures": []}')
        status, body = int(answer.split(b" ", 2)[1]), answer.partition(b"\r\n\r\n")[2]
        # 400: the server's own HTTP parser refuses control characters in a header, as the RFC
        # says; ours never sees them. Never a 5xx, never let in.
        control = any(c < 0x20 or c == 0x7F for c in value if c != 0x09)
        assert status in ((400, 401) if control else (401, 431)), (status, body[:200])
        if status == 401:
            assert b"authentication_error" in body

    run()


# --------------------------------------------------------------------------- remote mode


@pytest.mark.anyio
async def test_remote_mode_sends_the_token_and_its_captures_carry_its_name(
    tokens: None, tmp_path: Path, sqlite_url: str, make_config, sidecar_preset, sidecar_server,
    shadow_preset, completion, wait_until, sidecar_state,
) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = make_config(sqlite_url, sidecar_preset(llm.base_url),
                             sidecar={"ingest_token_env": "SR_TEST_INGEST"})
        async with sidecar_server(config) as sc:
            app_config = make_config(sqlite_url, shadow_preset, remote=sc.base_url,
                                     remote_token_env="SR_TEST_INGEST", remote_name="app-1",
                                     default_sample_rate=1.0)
            async with Shadow(app_config) as sh:
                for i in range(3):
                    request = {"model": "frontier", "messages": [
                        {"role": "user", "content": f"parcel {i}"}]}
                    await sh.shadow(task="classify_intent", request=request,
                                    call=lambda: _answer(completion))
            assert sh.stats.forwarded == 3
            stats = sidecar_state(sc).shadow.stats
            wait_until(lambda: stats.stored_exchanges == 3, timeout=15)
    async with await Store.open(sqlite_url) as store, store.session() as s:
        sources = (await s.execute(select(Exchange.source))).scalars().all()
    assert sources == ["remote:app-1"] * 3


async def _answer(completion: Any) -> dict[str, Any]:
    return completion("shipping")


@pytest.mark.anyio
async def test_a_remote_app_without_the_token_is_refused_and_says_so(
    tokens: None, tmp_path: Path, sqlite_url: str, make_config, sidecar_preset, sidecar_server,
    shadow_preset, completion,
) -> None:
    errors: list[tuple[str, BaseException]] = []
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = make_config(sqlite_url, sidecar_preset(llm.base_url),
                             sidecar={"ingest_token_env": "SR_TEST_INGEST"})
        async with sidecar_server(config) as sc:
            app_config = make_config(sqlite_url, shadow_preset, remote=sc.base_url,
                                     default_sample_rate=1.0)
            async with Shadow(app_config, on_error=lambda *e: errors.append(e)) as sh:
                await sh.shadow(task="classify_intent", request={"model": "frontier", "messages": [
                    {"role": "user", "content": "hi"}]}, call=lambda: _answer(completion))
    assert sh.stats.dropped_forward == 1
    assert any("401" in str(exc) for stage, exc in errors if stage == "forward")


# --------------------------------------------------------------------------- serve refuses


def test_serve_refuses_an_exposed_address_without_an_ingest_token(tmp_path: Path, cli) -> None:
    env = {"SHADOWROUTE_CONFIG": "", "SHADOWROUTE_DATABASE_URL": ""}
    exposed = cli("serve", "--host", "0.0.0.0", "--upstream", "http://127.0.0.1:9",
                  cwd=tmp_path, env=env)
    assert exposed.returncode == 2
    line = exposed.stderr.strip()
    assert len(line.splitlines()) == 1 and "ingest_token_env" in line and "--host" in line, line
    (tmp_path / "shadowroute.toml").write_text('[sidecar]\ningest_token_env = "SR_NOT_SET_EVER"\n')
    unset = cli("serve", "--host", "0.0.0.0", "--config", "shadowroute.toml", cwd=tmp_path,
                env={"SR_NOT_SET_EVER": None, "SHADOWROUTE_DATABASE_URL": ""})
    assert unset.returncode == 2 and "SR_NOT_SET_EVER is not set" in unset.stderr, unset.stderr
    assert os.environ.get("SR_NOT_SET_EVER") is None


# --------------------------------------------------------------------------- sources


@pytest.mark.anyio
async def test_prune_source_removes_exactly_one_source(store: Store, xchg, candidate_of) -> None:
    from support.report import Out

    batch = []
    for source, n in (("remote:evil", 4), ("sidecar", 6), (None, 2)):
        for _ in range(n):
            x = xchg("classify", "yes", Out("mini", "yes"), age_days=1)
            x.source = source
            batch.append(x)
    today = utcnow().date()
    await store.write(batch, traffic=[TrafficRecord(today, "classify", "big", requests=12)])
    async with store.session() as s:
        for x in batch:
            s.add(Score(output_id=x.outputs[0].id, scorer="exact", version="1", value=1.0,
                        passed=True, details={}, created_at=x.created_at,
                        exchange_created_at=x.created_at))
        await s.commit()
    dry = await prune(store, utcnow(), source="remote:evil", dry_run=True)
    assert (dry.exchanges, dry.outputs, dry.scores) == (4, 4, 4)
    report = await prune(store, utcnow() - timedelta(hours=1), source="remote:evil", batch=3)
    assert (report.exchanges, report.outputs, report.scores, report.traffic_days) == (4, 4, 4, 0)
    assert "of source 'remote:evil'" in report.summary()
    async with store.session() as s:
        left = (await s.execute(select(Exchange.source))).scalars().all()
        assert sorted(left, key=str) == sorted(["sidecar"] * 6 + [None] * 2, key=str)
        assert await s.scalar(select(func.count()).select_from(CandidateOutput)) == 8
        assert await s.scalar(select(func.count()).select_from(Score)) == 8
        assert await s.scalar(select(func.count()).select_from(TrafficDaily)) == 1


def test_the_report_says_who_captured_the_evidence(tmp_path: Path, sqlite_url: str,
                                                    make_config, sidecar_preset,
                                                    sidecar_server, sidecar_state,
                                                    request_for, wait_until) -> None:
    """Calls through the sidecar are stored as ``sidecar``; the report breaks them down."""
    import anyio

    from shadowroute.report import build_report, render_html

    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = make_config(sqlite_url, sidecar_preset(llm.base_url),
                             tasks={"classify_intent": {"candidates": [], "sample_rate": 1.0}})
        with sidecar_server(config) as sc:
            for i in range(2):
                response = httpx.post(sc.base_url + "/v1/chat/completions", json={
                    "model": "frontier", **request_for("classify_intent", i)},
                    headers={"x-shadowroute-task": "classify_intent"}, timeout=10)
                assert response.status_code == 200
            stats = sidecar_state(sc).shadow.stats
            wait_until(lambda: stats.stored_exchanges == 2, timeout=15)

    async def build() -> Any:
        async with await Store.open(sqlite_url) as store:
            return await build_report(config, store)

    report = anyio.run(build)
    (task,) = [t for t in report.tasks if t.task == "classify_intent"]
    assert task.sources == {"sidecar": 2}
    assert "Captured by: sidecar 2 exchanges" in render_html(report)
