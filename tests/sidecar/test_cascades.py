"""Cascades and partial routes in the sidecar: a non-streamed call of a cascaded task is answered
by the promoted model and escalated to the primary when a check fails on its held answer;
streams go to the primary; a partial rule picks the calls the promoted model gets. Every
outcome is in the X-Shadowroute-Route header, /metrics and ``routed_daily``.

Two fake LLM servers: ``primary`` is the sidecar's upstream (model ``frontier``), ``promoted``
hosts the cheaper models, whose ``small`` and ``claude-small`` refuse 30% of requests (the same
ones every time; cut at classify_intent's token limit, still a refusal).
"""

from __future__ import annotations

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
from shadowroute.fakellm import FakeLLMServer, default_settings, sample_requests
from shadowroute.routing import Route, write_routes
from shadowroute.routing.features import request_features
from shadowroute.routing.rules import PartialRule
from shadowroute.scoring.checks import REFUSAL
from shadowroute.store import Store
from shadowroute.store.queries.routed import routed_counts
from support.config import CLOSED
from support.sidecar import ROUTE, TASK, metrics

pytestmark = pytest.mark.anyio

CLASSIFY = "classify_intent"


@contextmanager
def fakes() -> Iterator[tuple[FakeLLMServer, FakeLLMServer]]:
    """(primary, promoted)."""
    settings = default_settings(latency_scale=0.0)
    primary = FakeLLMServer(settings)
    for name in ("small", "claude-small"):
        settings = settings.with_model(settings.models[name].with_changes(refusal_rate=0.3))
    with primary, FakeLLMServer(settings) as promoted:
        yield primary, promoted


def make(tmp_path: Path, db_url: str, primary: str, promoted: str, **routes: Route) -> Config:
    """classify_intent and summarize_ticket declared, nothing sampled forwards (every stored
    exchange is a reverse pair), reverse shadow at 1.0; ``routes`` written to the map."""
    quiet = {"candidates": ["cheap"], "sample_rate": 0.0, "noise_floor_rate": 0.0}
    config = load_config(data={
        "database_url": db_url,
        "default_sample_rate": 0.0,
        "models": {
            "big": {"base_url": primary + "/v1", "model": "frontier", "max_retries": 0},
            "cheap": {"base_url": promoted + "/v1", "model": "small", "max_retries": 0},
            "claude-cheap": {"base_url": promoted, "api": "anthropic", "model": "claude-small",
                             "max_retries": 0},
            "gone": {"base_url": CLOSED, "model": "small", "max_retries": 0},
        },
        "tasks": {CLASSIFY: quiet, "summarize_ticket": quiet},
        "sidecar": {"upstream": primary, "anthropic_upstream": primary,
                    "mirror_process": "off"},
        "routes": {"file": str(tmp_path / "routes.yaml"), "reload_interval_s": 0,
                   "reverse_shadow_rate": 1.0},
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
        "mirror": {"shutdown_deadline_s": 5.0, "workers": 2},
    })
    write_routes(config.routes_file(), routes)
    return config


def cascade(task: str, model: str = "cheap", checks: tuple[str, ...] = ("refusal",)) -> Route:
    return Route(task=task, model=model, tier="promoted", primary="big", by="test",
                 since=datetime(2026, 12, 1, tzinfo=UTC), mode="cascade", checks=checks)


def requests_of(task: str, n: int, seed: int) -> list[dict[str, Any]]:
    return [{"model": "frontier", **d.request} for d in sample_requests(n, seed=seed, tasks=[task])]


def content(response: httpx.Response) -> str:
    body = response.json()
    if "choices" in body:
        return body["choices"][0]["message"]["content"]
    return "".join(block.get("text", "") for block in body["content"])


async def stored_routed(url: str) -> dict[tuple[str, str], dict[str, int]]:
    async with await Store.open(url) as store, store.connect() as conn:
        return await routed_counts(conn)


def sample(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_cascade_escalates_the_refusals_and_relays_the_kept_answers(
    tmp_path: Path, db_url: str, sidecar_server, sidecar_state, await_until,
) -> None:
    with fakes() as (primary, promoted):
        config = make(tmp_path, db_url, primary.base_url, promoted.base_url,
                      **{CLASSIFY: cascade(CLASSIFY)})
        requests = requests_of(CLASSIFY, 24, seed=6)
        expected = []
        async with httpx.AsyncClient(timeout=30) as direct:
            for request in requests:
                small = await direct.post(promoted.base_url + "/v1/chat/completions",
                                          json={**request, "model": "small"})
                refused = REFUSAL.search(content(small)) is not None
                answer = small if not refused else await direct.post(
                    primary.base_url + "/v1/chat/completions", json=request)
                expected.append((refused, content(answer)))
        escalated = sum(refused for refused, _ in expected)
        assert 0 < escalated < len(requests)
        primary.reset_stats()
        promoted.reset_stats()
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            for request, (refused, text) in zip(requests, expected, strict=True):
                response = await client.post("/v1/chat/completions", json=request,
                                             headers={TASK: CLASSIFY})
                assert response.status_code == 200
                assert response.json()["model"] == ("frontier" if refused else "small")
                assert content(response) == text
                assert response.headers[ROUTE] == (
                    f"model=frontier; route=primary; task={CLASSIFY}; "
                    "outcome=escalated:refusal" if refused else
                    f"model=small; route=cascade; task={CLASSIFY}; primary=big; outcome=kept")
            stats = sidecar_state(sc).shadow.stats
            kept = len(requests) - escalated
            await await_until(lambda: stats.stored_exchanges == kept, what="reverse pairs")
            samples = await anyio.to_thread.run_sync(metrics, sc.base_url)
    assert promoted.calls("small") == len(requests)
    assert primary.calls("frontier") == escalated + kept  # escalations + reverse shadows
    assert stats.routed == {(CLASSIFY, "cheap", "kept"): kept,
                            (CLASSIFY, "cheap", "escalated:refusal"): escalated}
    assert stats.reverse_shadows == kept and stats.primary_errors == 0
    assert stats.offered == len(requests)  # one production call each, escalated or not
    assert sample(samples, "shadowroute_escalations_total", task=CLASSIFY,
                  reason="refusal") == escalated
    assert sample(samples, "shadowroute_routed_total", task=CLASSIFY, model="cheap",
                  outcome="kept") == kept
    assert await stored_routed(db_url) == {
        (CLASSIFY, "cheap"): {"kept": kept, "escalated:refusal": escalated}}


async def test_a_streamed_call_of_a_cascaded_task_goes_to_the_primary(
    tmp_path: Path, sqlite_url: str, sidecar_server, sidecar_state,
) -> None:
    with fakes() as (primary, promoted):
        config = make(tmp_path, sqlite_url, primary.base_url, promoted.base_url,
                      **{CLASSIFY: cascade(CLASSIFY)})
        request = {**requests_of(CLASSIFY, 1, seed=2)[0], "stream": True}
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            async with client.stream("POST", "/v1/chat/completions", json=request,
                                     headers={TASK: CLASSIFY}) as response:
                body = b"".join([chunk async for chunk in response.aiter_bytes()])
            stats = sidecar_state(sc).shadow.stats
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert b'"frontier"' in body and promoted.stats()["total_calls"] == 0
    assert response.headers[ROUTE] == (f"model=frontier; route=primary; task={CLASSIFY}; "
                                       "outcome=bypassed:stream")
    assert stats.routed == {(CLASSIFY, "cheap", "bypassed:stream"): 1}
    assert await stored_routed(sqlite_url) == {(CLASSIFY, "cheap"): {"bypassed:stream": 1}}


async def test_an_anthropic_call_is_checked_in_its_own_api(
    tmp_path: Path, sqlite_url: str, sidecar_server, sidecar_state, anthropic_kwargs,
) -> None:
    with fakes() as (primary, promoted):
        config = make(tmp_path, sqlite_url, primary.base_url, promoted.base_url,
                      **{CLASSIFY: cascade(CLASSIFY, "claude-cheap")})
        bodies = [anthropic_kwargs(r) for r in requests_of(CLASSIFY, 16, seed=9)]
        async with httpx.AsyncClient(timeout=30) as direct:
            refused = [REFUSAL.search(content(await direct.post(
                promoted.base_url + "/v1/messages", json={**b, "model": "claude-small"})))
                is not None for b in bodies]
        assert 0 < sum(refused) < len(bodies)
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            for body, escalate in zip(bodies, refused, strict=True):
                response = await client.post("/v1/messages", json=body,
                                             headers={TASK: CLASSIFY})
                assert response.status_code == 200 and response.json()["type"] == "message"
                assert response.json()["model"] == ("frontier" if escalate else "claude-small")
            stats = sidecar_state(sc).shadow.stats
    assert stats.routed == {(CLASSIFY, "claude-cheap", "kept"): refused.count(False),
                            (CLASSIFY, "claude-cheap", "escalated:refusal"): refused.count(True)}


async def test_an_unreachable_candidate_escalates_to_the_primary(
    tmp_path: Path, sqlite_url: str, sidecar_server, sidecar_state,
) -> None:
    with fakes() as (primary, promoted):
        config = make(tmp_path, sqlite_url, primary.base_url, promoted.base_url,
                      **{CLASSIFY: cascade(CLASSIFY, "gone")})
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            response = await client.post("/v1/chat/completions",
                                         json=requests_of(CLASSIFY, 1, seed=1)[0],
                                         headers={TASK: CLASSIFY})
            stats = sidecar_state(sc).shadow.stats
    assert response.status_code == 200 and response.json()["model"] == "frontier"
    assert response.headers[ROUTE].endswith("outcome=escalated:error")
    assert stats.routed == {(CLASSIFY, "gone", "escalated:error"): 1}


async def test_a_partial_route_sends_the_calls_its_rule_picks_to_the_promoted_model(
    tmp_path: Path, sqlite_url: str, sidecar_server, sidecar_state, await_until,
) -> None:
    task = "summarize_ticket"
    requests = requests_of(task, 16, seed=4)
    lengths = sorted(request_features(r)["chars"] for r in requests)
    rule = PartialRule.from_dict({"any_of": [[["chars", "<=", lengths[len(lengths) // 2]]]]})
    picked = [rule.matches(request_features(r)) for r in requests]
    assert 0 < sum(picked) < len(requests)
    partial = Route(task=task, model="cheap", tier="promoted", primary="big", by="test",
                    since=datetime(2026, 12, 1, tzinfo=UTC), mode="partial", rule=rule)
    with fakes() as (primary, promoted):
        config = make(tmp_path, sqlite_url, primary.base_url, promoted.base_url,
                      **{task: partial})
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            for request, to_small in zip(requests, picked, strict=True):
                # Streamed or not: a partial rule decides before the call.
                response = await client.post("/v1/chat/completions", json=request,
                                             headers={TASK: task})
                assert response.json()["model"] == ("small" if to_small else "frontier")
                outcome = "kept" if to_small else "primary"
                assert response.headers[ROUTE].endswith(f"outcome={outcome}")
            stats = sidecar_state(sc).shadow.stats
            await await_until(lambda: stats.stored_exchanges == picked.count(True),
                              what="reverse pairs")
    assert stats.routed == {(task, "cheap", "kept"): picked.count(True),
                            (task, "cheap", "primary"): picked.count(False)}
    assert await stored_routed(sqlite_url) == {
        (task, "cheap"): {"kept": picked.count(True), "primary": picked.count(False)}}
