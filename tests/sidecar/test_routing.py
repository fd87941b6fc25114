"""The sidecar routes by the route map: a promoted task type's calls go to its promoted model
(streamed or not), a slice is mirrored back to the primary it replaced (the reverse shadow),
and production never breaks because of the map or the promoted model's host.

Two fake LLM servers: ``primary`` is the sidecar's upstream (model ``frontier``), ``promoted``
hosts the cheaper models. The ``[models]`` keys differ from the upstream ids (``big`` sends
``frontier``, ``cheap`` sends ``small``) so each assertion says which one it means.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from shadowroute import load_config
from shadowroute.config import Config
from shadowroute.fakellm import FakeLLMServer, default_settings
from shadowroute.routing import Route, write_routes
from shadowroute.serving import tcp_socket
from support.sidecar import ROUTE, TASK, metrics, request_for

CLIENT_KEY = "sk-client-PRIMARY-key-11aa"
CHEAP_KEY = "sk-cheap-PROMOTED-key-22bb"
REVERSE = "x-shadowroute-reverse"


# --------------------------------------------------------------------------- helpers


def routing_config(
    tmp_path: Path,
    db_url: str,
    upstream: str,
    promoted: str,
    *,
    models: dict[str, Any] | None = None,
) -> Config:
    """classify_intent and sentiment declared (no forward sampling, so every stored exchange
    comes from the reverse shadow); routes reloaded on every call, reverse shadow at 1.0."""
    return load_config(data={
        "database_url": db_url,
        "default_sample_rate": 0.0,
        "models": {
            "big": {"base_url": upstream + "/v1", "model": "frontier", "max_retries": 0},
            "cheap": {"base_url": promoted + "/v1", "model": "small", "max_retries": 0},
            **(models or {}),
        },
        "tasks": {
            "classify_intent": {"candidates": ["cheap"], "sample_rate": 0.0, "noise_floor_rate": 0.0},
            "sentiment": {"candidates": ["cheap"], "sample_rate": 0.0, "noise_floor_rate": 0.0},
        },
        "sidecar": {"upstream": upstream, "anthropic_upstream": upstream,
                    "mirror_process": "off"},
        "routes": {"file": str(tmp_path / "routes.yaml"), "reload_interval_s": 0,
                   "reverse_shadow_rate": 1.0},
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
        "mirror": {"shutdown_deadline_s": 5.0, "workers": 2},
    })


def route(task: str, model: str, *, tier: str = "promoted", primary: str = "big") -> Route:
    return Route(task=task, model=model, tier=tier, primary=primary,
                 since=datetime(2026, 1, 2, tzinfo=UTC), by="test")


def claude_cheap(promoted: str) -> dict[str, Any]:
    return {"claude-cheap": {"base_url": promoted, "api": "anthropic", "model": "claude-small",
                             "max_retries": 0}}


def promote(config: Config, *routes: Route) -> None:
    write_routes(config.routes_file(), {r.task: r for r in routes})


@contextmanager
def fakes() -> Iterator[tuple[FakeLLMServer, FakeLLMServer]]:
    """(primary, promoted): two fakes with the same settings."""
    settings = default_settings(latency_scale=0.0)
    with FakeLLMServer(settings) as primary, FakeLLMServer(settings) as promoted:
        yield primary, promoted


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, made once for the module (migrating costs ~0.3 s)."""
    from shadowroute.store import migrate

    path = tmp_path_factory.mktemp("template") / "shadowroute.db"
    anyio.run(migrate, f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_db(tmp_path: Path, migrated_sqlite: Path) -> str:
    """This test's own copy of the migrated SQLite file (conftest's `sqlite_url`, migrated)."""
    path = tmp_path / "db" / "shadowroute.db"
    path.parent.mkdir()
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite+aiosqlite:///{path}"


def chat(task: str, seed: int, **extra: Any) -> dict[str, Any]:
    return {"model": "frontier", **request_for(task, seed), **extra}


async def samples_of(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return await anyio.to_thread.run_sync(metrics, base_url)


def counter(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --------------------------------------------------------------------------- routed, reverse shadow


@pytest.mark.anyio
async def test_a_promoted_task_is_served_by_the_promoted_model_and_reverse_shadowed(
    tmp_path: Path, sqlite_db: str, answer_text, stored, sidecar_server, await_until, sidecar_state
) -> None:
    with fakes() as (primary, promoted), FakeLLMServer(default_settings(latency_scale=0.0)) as direct:
        config = routing_config(tmp_path, sqlite_db, primary.base_url, promoted.base_url)
        promote(config, route("classify_intent", "cheap"))
        request = chat("classify_intent", 1)
        async with httpx.AsyncClient(base_url=direct.base_url) as d:
            want_small = answer_text("openai", await d.post("/v1/chat/completions",
                                                              json={**request, "model": "small"}))
            want_frontier = answer_text("openai", await d.post("/v1/chat/completions", json=request))
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            response = await client.post("/v1/chat/completions", json=request, headers={TASK: "classify_intent"})
            stats = sidecar_state(sc).shadow.stats
            await await_until(lambda: stats.stored_exchanges == 1, what="reverse pair stored")
            samples = await samples_of(sc.base_url)
    assert response.status_code == 200
    assert response.json()["model"] == "small"
    assert response.headers[ROUTE] == "model=small; route=promoted; task=classify_intent; primary=big"
    assert answer_text("openai", response) == want_small
    assert promoted.calls("small") == 1 and promoted.calls("frontier") == 0
    assert primary.calls("frontier") == 1  # the reverse shadow, in the background
    assert stats.reverse_shadows == 1 and stats.reverse_failed == 0
    [exchange], outputs = await stored(sqlite_db)
    assert exchange.route == "reverse" and exchange.task_type == "classify_intent"
    assert exchange.primary_model == "frontier"
    assert exchange.primary_output == want_frontier
    assert [(o.model, o.output, o.error_kind) for o in outputs] == [("cheap", want_small, None)]
    assert counter(samples, "shadowroute_routed_requests_total", model="cheap") == 1
    assert counter(samples, "shadowroute_reverse_shadows_total") == 1
    assert counter(samples, "shadowroute_reverse_failed_total") == 0
    assert counter(samples, "shadowroute_route_fallbacks_total") == 0


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_a_streamed_call_streams_from_the_promoted_model_and_is_stored_as_a_reverse_pair(
    tmp_path: Path, sqlite_db: str, api: str, answer_text, stored, sidecar_server, await_until, anthropic_kwargs, sidecar_state
) -> None:
    with fakes() as (primary, promoted):
        config = routing_config(tmp_path, sqlite_db, primary.base_url, promoted.base_url,
                                models=claude_cheap(promoted.base_url))
        target = "cheap" if api == "openai" else "claude-cheap"
        promote(config, route("classify_intent", target))
        if api == "openai":
            path, body = "/v1/chat/completions", chat("classify_intent", 2, stream=True)
        else:
            path, body = "/v1/messages", {**anthropic_kwargs(request_for("classify_intent", 2)), "stream": True}
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            async with client.stream("POST", path, json=body, headers={TASK: "classify_intent"}) as response:
                chunks = [chunk async for chunk in response.aiter_bytes()]
            stats = sidecar_state(sc).shadow.stats
            await await_until(lambda: stats.stored_exchanges == 1, what="reverse pair stored")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert len(chunks) >= 1
    text = b"".join(chunks).decode()
    upstream_id = "small" if api == "openai" else "claude-small"
    assert f'"model": "{upstream_id}"' in text or f'"model":"{upstream_id}"' in text
    assert response.headers[ROUTE] == f"model={upstream_id}; route=promoted; task=classify_intent; primary=big"
    answer = answer_text(f"{api}-stream", httpx.Response(200, content=b"".join(chunks)))
    assert answer
    assert promoted.calls(upstream_id) == 1 and primary.calls("frontier") == 1
    [exchange], outputs = await stored(sqlite_db)
    assert exchange.route == "reverse" and exchange.primary_model == "frontier"
    assert exchange.primary_output
    assert [(o.model, o.output) for o in outputs] == [(target, answer)]


@pytest.mark.anyio
async def test_an_unpromoted_task_still_goes_to_the_primary(
    tmp_path: Path, sqlite_db: str, sidecar_server, sidecar_state,
) -> None:
    with fakes() as (primary, promoted):
        config = routing_config(tmp_path, sqlite_db, primary.base_url, promoted.base_url)
        promote(config, route("classify_intent", "cheap"))
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            response = await client.post("/v1/chat/completions", json=chat("sentiment", 3),
                                         headers={TASK: "sentiment"})
            stats = sidecar_state(sc).shadow.stats
            samples = await samples_of(sc.base_url)
    assert response.status_code == 200 and response.json()["model"] == "frontier"
    assert response.headers[ROUTE] == "model=frontier; route=primary; task=sentiment"
    assert promoted.stats()["total_calls"] == 0 and primary.calls("frontier") == 1
    assert stats.reverse_shadows == 0 and stats.sampled == 0
    assert counter(samples, "shadowroute_routed_requests_total", model="cheap") == 0


@pytest.mark.anyio
async def test_demoting_sends_the_next_call_back_to_the_primary_without_a_restart(
    tmp_path: Path, sqlite_db: str, sidecar_server
) -> None:
    with fakes() as (primary, promoted):
        config = routing_config(tmp_path, sqlite_db, primary.base_url, promoted.base_url)
        promote(config, route("classify_intent", "cheap"))
        seen = []
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:

            async def call(seed: int) -> None:
                response = await client.post("/v1/chat/completions", json=chat("classify_intent", seed),
                                             headers={TASK: "classify_intent"})
                assert response.status_code == 200
                seen.append((response.json()["model"], response.headers[ROUTE].split("; ")[1]))

            await call(1)
            promote(config, route("classify_intent", "big", tier="primary"))  # demoted
            await call(2)
            promote(config, route("classify_intent", "cheap"))  # promoted again
            await call(3)
            promote(config)  # the entry removed
            await call(4)
    assert seen == [("small", "route=promoted"), ("frontier", "route=primary"),
                    ("small", "route=promoted"), ("frontier", "route=primary")]
    assert promoted.calls("small") == 2


# --------------------------------------------------------------------------- skipped routes


SKIPS = {  # task -> (promoted model, why it cannot take an OpenAI call)
    "classify_intent": ("claude-cheap", "api_mismatch"),
    "sentiment": ("ghost", "undeclared"),
    "summarize_ticket": ("keyed", "no_api_key"),
}


@pytest.mark.anyio
async def test_a_promoted_model_that_cannot_take_the_call_leaves_it_on_the_primary(
    tmp_path: Path, sqlite_db: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, sidecar_server, sidecar_state,
) -> None:
    monkeypatch.delenv("SR_TEST_CHEAP_KEY", raising=False)
    with fakes() as (primary, promoted):
        config = routing_config(
            tmp_path, sqlite_db, primary.base_url, promoted.base_url,
            models={"keyed": {"base_url": promoted.base_url + "/v1", "model": "small",
                              "api_key_env": "SR_TEST_CHEAP_KEY"},
                    **claude_cheap(promoted.base_url)},
        )
        promote(config, *(route(task, model) for task, (model, _) in SKIPS.items()))
        caplog.set_level(logging.WARNING, logger="shadowroute")
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:

            async def call(task: str, seed: int) -> httpx.Response:
                return await client.post("/v1/chat/completions", json=chat(task, seed), headers={TASK: task})

            responses = {(task, seed): await call(task, seed) for task in SKIPS for seed in (1, 2)}
            samples = await samples_of(sc.base_url)
            sampled_before = sidecar_state(sc).shadow.stats.sampled
            calls_before = (primary.calls("frontier"), promoted.stats()["total_calls"])
            monkeypatch.setenv("SR_TEST_CHEAP_KEY", CHEAP_KEY)  # read on every call
            keyed = await call("summarize_ticket", 3)
    for (task, _), response in responses.items():
        assert response.status_code == 200 and response.json()["model"] == "frontier"
        assert response.headers[ROUTE] == f"model=frontier; route=primary; task={task}"
    assert calls_before == (6, 0)
    for model, reason in SKIPS.values():
        assert counter(samples, "shadowroute_route_skipped_total", reason=reason) == 2
        assert counter(samples, "shadowroute_routed_requests_total", model=model) == 0
    assert sampled_before == 0  # no reverse shadow (and classify_intent samples nothing forward)
    warnings = sorted(r.getMessage() for r in caplog.records if "stays on its primary" in r.getMessage())
    assert len(warnings) == 3  # once per (task, model, reason), not per call
    for task, (model, _) in SKIPS.items():
        assert any(w.startswith(f"shadowroute: {task} is promoted to {model!r}") for w in warnings)
    assert keyed.status_code == 200 and keyed.json()["model"] == "small"


@pytest.mark.anyio
async def test_the_promoted_models_own_key_replaces_the_clients(
    tmp_path: Path, sqlite_db: str, monkeypatch: pytest.MonkeyPatch, recording_transport, sidecar_server, await_until, sidecar_state
) -> None:
    monkeypatch.setenv("SR_TEST_CHEAP_KEY", CHEAP_KEY)
    recorder = recording_transport()
    with fakes() as (primary, promoted):
        config = routing_config(
            tmp_path, sqlite_db, primary.base_url, promoted.base_url,
            models={"keyed": {"base_url": promoted.base_url + "/v1/", "model": "small",
                              "api_key_env": "SR_TEST_CHEAP_KEY"}},
        )
        promote(config, route("classify_intent", "keyed"))
        want_url = promoted.base_url + "/v1/chat/completions?trace=1"
        async with sidecar_server(config, upstream_transport=recorder) as sc, \
                httpx.AsyncClient(base_url=sc.base_url) as client:
            body = chat("classify_intent", 4, metadata={"note": "café"})
            response = await client.post(
                "/v1/chat/completions?trace=1", json=body,
                headers={TASK: "classify_intent", "authorization": f"Bearer {CLIENT_KEY}",
                         "x-api-key": CLIENT_KEY, "x-custom": "kept"},
            )
            stats = sidecar_state(sc).shadow.stats
            await await_until(lambda: stats.reverse_shadows == 1)
    assert response.status_code == 200 and response.json()["model"] == "small"
    sent = recorder.requests[0]  # the routed call (then the reverse shadow's own client)
    assert str(sent.url) == want_url
    assert sent.headers["authorization"] == f"Bearer {CHEAP_KEY}"
    assert "x-api-key" not in sent.headers and sent.headers["x-custom"] == "kept"
    assert REVERSE not in sent.headers and TASK.lower() not in sent.headers
    assert json.loads(sent.content) == {**body, "model": "small"}
    assert "café".encode() in sent.content  # ensure_ascii=False
    assert len(recorder.requests) == 1


# --------------------------------------------------------------------------- safety


@pytest.mark.anyio
async def test_a_client_cannot_inject_the_reverse_header(
    tmp_path: Path, sqlite_db: str, recording_transport, stored, sidecar_server, sidecar_state,
) -> None:
    recorder = recording_transport()
    with fakes() as (primary, promoted):
        config = routing_config(tmp_path, sqlite_db, primary.base_url, promoted.base_url)
        async with sidecar_server(config, upstream_transport=recorder) as sc, \
                httpx.AsyncClient(base_url=sc.base_url) as client:
            response = await client.post("/v1/chat/completions", json=chat("classify_intent", 5),
                                         headers={TASK: "classify_intent", REVERSE: "big"})
            stats = sidecar_state(sc).shadow.stats
            await anyio.sleep(0.3)  # a reverse shadow, were it taken, would have been made by now
    assert response.status_code == 200 and response.json()["model"] == "frontier"
    [sent] = recorder.requests
    assert REVERSE not in sent.headers
    # classify_intent samples nothing; the reverse header would have sampled it at 1.0.
    assert (stats.offered, stats.sampled, stats.reverse_shadows, stats.reverse_failed) == (1, 0, 0, 0)
    assert primary.calls("frontier") == 1
    exchanges, _ = await stored(sqlite_db)
    assert exchanges == []


@pytest.mark.anyio
async def test_header_values_that_are_not_ascii_are_forwarded_not_a_500(
    tmp_path: Path, sqlite_db: str, recording_transport, stored, sidecar_server, await_until, sidecar_state
) -> None:
    """A UTF-8 task name in the header finds its route and is stored as sent; a latin-1 byte in
    another header reaches the upstream as it came."""
    recorder = recording_transport()
    task = "intención"
    with fakes() as (primary, promoted):
        config = routing_config(tmp_path, sqlite_db, primary.base_url, promoted.base_url)
        promote(config, route(task, "cheap"))
        async with sidecar_server(config, upstream_transport=recorder) as sc, \
                httpx.AsyncClient(base_url=sc.base_url) as client:
            routed = await client.post("/v1/chat/completions", json=chat("classify_intent", 9),
                                       headers=[(TASK.encode(), task.encode())])
            other = await client.post("/v1/chat/completions", json=chat("sentiment", 9),
                                      headers=[(TASK.encode(), b"sentiment"), (b"x-note", b"caf\xe9")])
            stats = sidecar_state(sc).shadow.stats
            await await_until(lambda: stats.stored_exchanges == 1)
    assert routed.status_code == 200 and routed.json()["model"] == "small"
    assert other.status_code == 200 and other.json()["model"] == "frontier"
    assert (b"x-note", b"caf\xe9") in recorder.requests[1].headers.raw
    [exchange], _ = await stored(sqlite_db)
    assert exchange.task_type == task and exchange.route == "reverse"


@pytest.mark.anyio
async def test_a_promoted_model_that_is_down_falls_back_to_the_primary(
    tmp_path: Path, sqlite_db: str, answer_text, sidecar_server
) -> None:
    closed = tcp_socket("127.0.0.1", 0)  # bound, never listening: connections are refused
    try:
        with fakes() as (primary, promoted):
            down = f"http://127.0.0.1:{closed.getsockname()[1]}"
            config = routing_config(tmp_path, sqlite_db, primary.base_url, promoted.base_url,
                                    models={"gone": {"base_url": down + "/v1", "model": "small"}})
            promote(config, route("classify_intent", "gone"), route("sentiment", "cheap"))
            promoted.update_model("small", error_rate=1.0, error_status=500)
            async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
                fell_back = await client.post("/v1/chat/completions", json=chat("classify_intent", 6),
                                              headers={TASK: "classify_intent"})
                streamed = await client.post("/v1/chat/completions",
                                             json=chat("classify_intent", 7, stream=True),
                                             headers={TASK: "classify_intent"})
                failed = await client.post("/v1/chat/completions", json=chat("sentiment", 8),
                                           headers={TASK: "sentiment"})
                samples = await samples_of(sc.base_url)
    finally:
        closed.close()
    assert fell_back.status_code == 200 and fell_back.json()["model"] == "frontier"
    assert fell_back.headers[ROUTE] == "model=frontier; route=primary; task=classify_intent; fallback=gone"
    assert streamed.status_code == 200 and answer_text("openai-stream", streamed)
    assert primary.calls("frontier") == 2
    assert counter(samples, "shadowroute_route_fallbacks_total") == 2
    # Each fallen-back call counts once: its routed attempt, a failed production call; the
    # fallback is neither counted again nor captured.
    assert counter(samples, "shadowroute_captured_total") == 3
    assert counter(samples, "shadowroute_primary_errors_total") == 3  # 2 unreachable + the 500
    assert counter(samples, "shadowroute_routed_requests_total", model="gone") == 2
    # An HTTP error from a reachable promoted model is its answer: relayed, no fallback.
    assert failed.status_code == 500 and b"Simulated error" in failed.content
    assert failed.headers[ROUTE].startswith("model=small; route=promoted; task=sentiment")
    assert counter(samples, "shadowroute_routed_requests_total", model="cheap") == 1
    assert counter(samples, "shadowroute_upstream_requests_total", api="openai", status="500") == 1


@pytest.mark.anyio
async def test_a_malformed_route_map_at_startup_serves_from_the_primary_until_fixed(
    tmp_path: Path, sqlite_db: str, caplog: pytest.LogCaptureFixture, sidecar_server
) -> None:
    with fakes() as (primary, promoted):
        config = routing_config(tmp_path, sqlite_db, primary.base_url, promoted.base_url)
        config.routes_file().write_text("version: 1\nroutes:\n  classify_intent: {model: cheap}\n")
        caplog.set_level(logging.WARNING, logger="shadowroute")
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            before = await client.post("/v1/chat/completions", json=chat("classify_intent", 1),
                                       headers={TASK: "classify_intent"})
            promote(config, route("classify_intent", "cheap"))
            after = await client.post("/v1/chat/completions", json=chat("classify_intent", 2),
                                      headers={TASK: "classify_intent"})
    assert before.status_code == 200 and before.json()["model"] == "frontier"
    assert after.status_code == 200 and after.json()["model"] == "small"
    assert any("route map" in r.getMessage() for r in caplog.records)
