"""Remote mode: app processes capture, the sidecar mirrors and stores (POST /v1/captures)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import anyio
import pytest
from sqlalchemy import select

from shadowroute import Shadow, load_config
from shadowroute.fakellm import FakeLLMServer, default_settings, make_request
from shadowroute.serving import BackgroundServer, tcp_socket
from shadowroute.sidecar import create_app
from shadowroute.store import CandidateOutput, Exchange, Store

pytestmark = pytest.mark.anyio


async def test_captures_are_forwarded_mirrored_and_stored_by_the_sidecar(
    tmp_path: Path, db_url: str, capture_completion,
) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        sidecar_config = load_config(data={
            "database_url": db_url,
            "models": {"small": {"base_url": llm.base_url + "/v1"}},
            "tasks": {"classify_intent": {"candidates": ["small"], "sample_rate": 0.0}},
            "sidecar": {"upstream": llm.base_url, "mirror_process": "off"},
            "store": {"spool_dir": str(tmp_path / "sidecar-spool"), "flush_interval_s": 0.05},
        })
        app_config = load_config(data={
            "tasks": {"classify_intent": {"sample_rate": 1.0}},  # the app samples; the sidecar's rate is not applied again
            "store": {"spool_dir": str(tmp_path / "app-spool"), "flush_interval_s": 0.05},
        })
        with BackgroundServer(create_app(sidecar_config)) as sidecar:
            app_config = app_config.model_copy(update={"remote": sidecar.base_url})
            rng = random.Random(1)
            async with Shadow(app_config) as sh:
                for _ in range(20):
                    request = {"model": "frontier", **make_request("classify_intent", rng)}

                    async def primary() -> dict:
                        return capture_completion("refund")

                    assert (await sh.shadow(task="classify_intent", request=request, call=primary))["model"] == "frontier"
            assert sh.stats.forwarded == 20 and sh.stats.dropped == 0
            assert not (tmp_path / "app-spool").exists() or not any((tmp_path / "app-spool").iterdir())
        # The sidecar drained and stored on shutdown.
    async with await Store.open(db_url) as store, store.session() as session:
        exchanges = (await session.scalars(select(Exchange))).all()
        outputs = (await session.scalars(select(CandidateOutput))).all()
    assert len(exchanges) == 20 and {e.primary_output for e in exchanges} == {"refund"}
    assert {e.input_tokens for e in exchanges} == {30}
    assert len(outputs) == 20 and all(o.model == "small" and o.output for o in outputs)


async def test_unreachable_sidecar_never_delays_production_and_drops_are_counted(
    tmp_path: Path, capture_completion,
) -> None:
    closed = tcp_socket("127.0.0.1", 0)  # bound, never listening: connections are refused
    port = closed.getsockname()[1]
    errors: list[str] = []
    config = load_config(data={
        "remote": f"http://127.0.0.1:{port}",
        "tasks": {"t": {"sample_rate": 1.0}},
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
    })
    try:
        async with Shadow(config, on_error=lambda stage, exc: errors.append(stage)) as sh:
            for _ in range(10):
                began = time.perf_counter()

                async def primary() -> dict:
                    return capture_completion("ok")

                await sh.shadow(task="t", request={"model": "m", "messages": [{"role": "user", "content": "hi"}]}, call=primary)
                # A call that waited on the forwarder would pay its 0.5 s retry delay.
                assert time.perf_counter() - began < 0.4
            await anyio.sleep(0.2)
    finally:
        closed.close()
    assert sh.stats.dropped_forward == 10 and sh.stats.forwarded == 0
    assert "forward" in errors


async def test_reverse_shadow_captures_travel_to_the_sidecar(
    tmp_path: Path, sqlite_url: str, sidecar_state, capture_completion,
) -> None:
    """A promoted task type's call, captured in the app, is reverse-shadowed by the sidecar:
    the replaced primary answers there and the pair is stored the reverse way round."""
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        models = {name: {"base_url": llm.base_url + "/v1"} for name in ("frontier", "small")}
        sidecar_config = load_config(data={
            "database_url": sqlite_url, "models": models, "sidecar": {"mirror_process": "off"},
            "tasks": {"classify_intent": {"candidates": ["small"], "noise_floor_rate": 0.0}},
            "store": {"spool_dir": str(tmp_path / "sidecar-spool"), "flush_interval_s": 0.05},
        })
        app_config = load_config(data={
            "routes": {"reverse_shadow_rate": 1.0},
            "store": {"spool_dir": str(tmp_path / "app-spool"), "flush_interval_s": 0.05},
        })
        with BackgroundServer(create_app(sidecar_config)) as sidecar:
            app_config = app_config.model_copy(update={"remote": sidecar.base_url})
            rng = random.Random(2)
            async with Shadow(app_config) as sh:
                for _ in range(5):
                    request = {"model": "small", **make_request("classify_intent", rng)}
                    sh.offer("classify_intent", request, capture_completion("refund"), 3.0,
                             reverse_of="frontier")
            assert sh.stats.forwarded == 5
            stats = sidecar_state(sidecar).shadow.stats
        assert stats.reverse_shadows == 5 and stats.reverse_failed == 0
    async with await Store.open(sqlite_url) as store, store.session() as session:
        exchanges = (await session.scalars(select(Exchange))).all()
        outputs = (await session.scalars(select(CandidateOutput))).all()
    assert {(x.route, x.primary_model) for x in exchanges} == {("reverse", "frontier")}
    assert {(o.model, o.output) for o in outputs} == {("small", "refund")}
