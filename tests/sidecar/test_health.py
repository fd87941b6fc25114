"""Operations that tell the truth: ``/healthz`` (liveness) and ``/readyz`` (readiness) probe the
database instead of guessing from the spool, through the real server with Postgres reachable,
unreachable at start and cut mid-run; the start-up warning; the same Prometheus families for an
in-process ``Shadow`` as in the sidecar, with per-model calls, errors, latency and spend."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from shadowroute import Shadow
from shadowroute.fakellm import FakeLLMServer, default_settings
from shadowroute.metrics import collector
from support.faultproxy import TcpProxy
from support.pipeline import REQUEST


def wait_for(base_url: str, database: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(base_url + "/healthz", timeout=5).json()
        if body["database"] == database or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_healthz_and_readyz_on_sqlite(tmp_path: Path, sqlite_url: str, make_config,
                                      sidecar_preset, sidecar_server) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        with sidecar_server(make_config(sqlite_url, sidecar_preset(llm.base_url))) as sc:
            health = httpx.get(sc.base_url + "/healthz")
            ready = httpx.get(sc.base_url + "/readyz")
    assert health.status_code == 200 and health.json()["database"] == "ok"
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_readyz_is_503_when_nothing_can_be_relayed(tmp_path: Path, sqlite_url: str, make_config,
                                                   sidecar_server) -> None:
    config = make_config(sqlite_url, store={"spool_dir": str(tmp_path / "spool")})
    with sidecar_server(config) as sc:
        ready = httpx.get(sc.base_url + "/readyz")
        live = httpx.get(sc.base_url + "/healthz")
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"
    assert live.status_code == 200  # alive all the same


@pytest.mark.postgres
def test_postgres_unreachable_at_start_then_cut_mid_run(
    tmp_path: Path, postgres_url: str, make_config, sidecar_preset, sidecar_server,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = make_url(postgres_url)
    caplog.set_level(logging.WARNING, logger="shadowroute")
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as link, \
            FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        via = url.set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False)
        config = make_config(via, sidecar_preset(llm.base_url),
                             store={"spool_dir": str(tmp_path / "spool"),
                                    "retry_interval_s": 0.2, "flush_interval_s": 0.05})
        link.cut()
        with sidecar_server(config) as sc:
            start = httpx.get(sc.base_url + "/healthz")
            assert start.status_code == 200 and start.json()["database"] == "unreachable"
            ready = httpx.get(sc.base_url + "/readyz")
            assert ready.status_code == 200 and ready.json()["database"] == "unreachable"
            assert any("cannot be reached at start; captures are spooled" in r.getMessage()
                       for r in caplog.records)
            link.restore()
            assert wait_for(sc.base_url, "ok")["database"] == "ok"  # reconnected
            link.cut()  # mid-run
            assert wait_for(sc.base_url, "unreachable")["database"] == "unreachable"
            assert httpx.get(sc.base_url + "/readyz").status_code == 200
            link.restore()
            assert wait_for(sc.base_url, "ok")["database"] == "ok"
    assert not any(secret in r.getMessage() for r in caplog.records
                   for secret in ([url.password] if url.password else []))


@pytest.mark.anyio
async def test_an_in_process_shadow_exports_what_the_sidecar_does(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, completion,
    sidecar_preset, sidecar_server,
) -> None:
    async def primary_call() -> dict[str, Any]:
        return completion("shipping")

    config = make_config(db_url, shadow_preset, tasks={
        "classify_intent": {"candidates": ["small", "tiny"], "sample_rate": 1.0,
                            "noise_floor_rate": 0.0}})
    registry = CollectorRegistry()
    async with Shadow(config, providers={"small": fake_candidate("small", cost_usd=0.002),
                                         "tiny": fake_candidate("tiny", mode="error")}) as sh:
        registry.register(collector(sh))
        for _ in range(3):
            await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples}
    assert samples[("shadowroute_captured_total", ())] == 3
    assert samples[("shadowroute_model_calls_total", (("model", "small"),))] == 3
    assert samples[("shadowroute_model_calls_total", (("model", "tiny"),))] == 3
    assert samples[("shadowroute_model_errors_total", (("kind", "server_error"),
                                                       ("model", "tiny")))] == 3
    assert samples[("shadowroute_model_spend_usd_total", (("model", "small"),))] == \
        pytest.approx(0.006)
    assert samples[("shadowroute_model_latency_seconds_count", (("model", "small"),))] == 3
    assert samples[("shadowroute_model_latency_seconds_bucket",
                    (("le", "+Inf"), ("model", "small")))] == 3
    # The same families as the sidecar's /metrics (which adds its own relay metrics).
    ours = {f.name for f in text_string_to_metric_families(generate_latest(registry).decode())}
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        sidecar_config = make_config(db_url, sidecar_preset(llm.base_url))
        async with sidecar_server(sidecar_config) as sc:
            async with httpx.AsyncClient() as client:
                text = (await client.get(sc.base_url + "/metrics")).text
    theirs = {f.name for f in text_string_to_metric_families(text)}
    assert ours <= theirs, ours - theirs
