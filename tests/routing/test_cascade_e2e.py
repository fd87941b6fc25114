"""Cascades and partial routes served by the library Router against the fake LLM server: the
candidate answers, a check that fails escalates to the primary (whose answer is served), streams
go to the primary, a partial rule splits the calls before they are made; every outcome is
counted (Router, Shadow stats, Prometheus) and stored per day (``routed_daily``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shadowroute import Router, Shadow
from shadowroute.fakellm import (
    EXTRACT_ORDER_SCHEMA,
    FakeLLMServer,
    default_settings,
    sample_requests,
)
from shadowroute.formats.chat import completion_text
from shadowroute.metrics import StatsCollector
from shadowroute.routing import Route, write_routes
from shadowroute.routing.features import request_features
from shadowroute.routing.rules import PartialRule
from shadowroute.scoring.checks import Checks
from shadowroute.store import Store
from shadowroute.store.queries.routed import routed_counts
from support.config import CLOSED

pytestmark = pytest.mark.anyio

CLASSIFY = "classify_intent"
EXTRACT = "extract_order"


@pytest.fixture(scope="module")
def fake() -> Any:
    """frontier (the primary) never refuses; small refuses 30% of requests (the same ones
    every time) and gets half of the orders wrong (some of them invalid JSON)."""
    settings = default_settings(seed=5, latency_scale=0.0)
    small = settings.models["small"].with_changes(
        refusal_rate=0.3, task_accuracy={**settings.models["small"].task_accuracy,
                                         EXTRACT: 0.5})
    with FakeLLMServer(settings.with_model(small)) as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, make_config: Callable[..., Any], fake: Any, request: Any) -> Any:
    db_url = request.getfixturevalue("db_url") if "db_url" in request.fixturenames \
        else request.getfixturevalue("sqlite_url")
    schema = tmp_path / "order.schema.json"
    schema.write_text(json.dumps(EXTRACT_ORDER_SCHEMA))
    base = fake.base_url + "/v1"
    quiet = {"candidates": ["small"], "sample_rate": 0.0, "noise_floor_rate": 0.0}
    return make_config(
        db_url,
        models={"frontier": {"base_url": base, "max_retries": 0},
                "small": {"base_url": base, "max_retries": 0},
                "broken": {"base_url": CLOSED, "model": "small", "max_retries": 0}},
        tasks={CLASSIFY: quiet, EXTRACT: {**quiet, "json_schema": str(schema)},
               "summarize_ticket": quiet},
        routes={"file": str(tmp_path / "routes.yaml"), "reload_interval_s": 0,
                "reverse_shadow_rate": 1.0},
        store={"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
        mirror={"workers": 2, "shutdown_deadline_s": 10.0},
    )


def route(task: str, model: str = "small", **how: Any) -> Route:
    return Route(task=task, model=model, tier="promoted", primary="frontier",
                 since=datetime(2026, 12, 1, tzinfo=UTC), by="test", **how)


def requests_of(task: str, n: int, seed: int = 3) -> list[dict[str, Any]]:
    return [{"model": "frontier", **d.request} for d in sample_requests(n, seed=seed, tasks=[task])]


async def direct(base_url: str, request: dict[str, Any], model: str) -> dict[str, Any]:
    """What ``model`` answers ``request``, asked directly (the fake answers a repeat the same)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post("/v1/chat/completions", json={**request, "model": model})
        response.raise_for_status()
        return response.json()


def exported(stats: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for s in family.samples}


async def stored_routed(url: str) -> dict[tuple[str, str], dict[str, int]]:
    async with await Store.open(url) as store, store.connect() as conn:
        return await routed_counts(conn)


async def test_a_cascade_escalates_exactly_the_answers_its_check_fails(
    config: Any, fake: Any, db_url: str,
) -> None:
    write_routes(config.routes_file(), {CLASSIFY: route(CLASSIFY, mode="cascade",
                                                        checks=("refusal",))})
    checks = Checks.for_task(config, CLASSIFY, ["refusal"])
    requests = requests_of(CLASSIFY, 30)
    expected = []
    for request in requests:
        answer = await direct(fake.base_url, request, "small")
        why = checks.failed(completion_text(answer), answer["choices"][0]["finish_reason"])
        primary = await direct(fake.base_url, request, "frontier")
        expected.append((why, completion_text(primary if why else answer)))
    escalated = sum(why is not None for why, _ in expected)
    assert 0 < escalated < len(requests)  # the fake refuses some, not all

    sent: list[str] = []
    async with Shadow(config) as sh, httpx.AsyncClient(base_url=fake.base_url) as client:
        router = Router(config)

        async def call(request: dict[str, Any]) -> dict[str, Any]:
            sent.append(request["model"])
            response = await client.post("/v1/chat/completions", json=request)
            response.raise_for_status()
            return response.json()

        for request, (why, text) in zip(requests, expected, strict=True):
            reply = await router.route_and_shadow(task=CLASSIFY, request=request, call=call)
            assert reply["model"] == ("frontier" if why else "small")
            assert completion_text(reply) == text  # the primary's answer when escalated
    kept = len(requests) - escalated
    # One call per kept request, two (candidate, then primary) per escalated one.
    assert Counter(sent) == {"small": len(requests), "frontier": escalated}
    outcomes = {(CLASSIFY, "small", "kept"): kept,
                (CLASSIFY, "small", "escalated:refusal"): escalated}
    assert router.routed == outcomes and sh.stats.routed == outcomes
    assert await stored_routed(db_url) == {
        (CLASSIFY, "small"): {"kept": kept, "escalated:refusal": escalated}}
    # The kept answers are reverse-shadowed as a promoted model's are; escalated ones are not.
    assert sh.stats.reverse_shadows == kept
    samples = exported(sh.stats)
    assert samples[("shadowroute_escalations_total",
                    (("reason", "refusal"), ("task", CLASSIFY)))] == escalated
    assert samples[("shadowroute_routed_total", (("model", "small"), ("outcome", "kept"),
                                                 ("task", CLASSIFY)))] == kept


async def test_a_schema_cascade_without_call_serves_the_primarys_completion(
    config: Any, fake: Any,
) -> None:
    """call=None: shadowroute calls both models through their [models] entries; a candidate
    answer that is not valid JSON for the task's schema is escalated."""
    write_routes(config.routes_file(), {EXTRACT: route(EXTRACT, mode="cascade",
                                                       checks=("schema",))})
    checks = Checks.for_task(config, EXTRACT, ["schema"])
    requests = requests_of(EXTRACT, 30, seed=8)
    failing = []
    for request in requests:
        answer = await direct(fake.base_url, request, "small")
        failing.append(checks.failed(completion_text(answer), None) is not None)
    assert 0 < sum(failing) < len(requests)
    async with Router(config) as router:  # no Shadow: counted by the Router alone
        for request, failed in zip(requests, failing, strict=True):
            reply = await router.route_and_shadow(task=EXTRACT, request=request)
            assert reply.model == ("frontier" if failed else "small")
            if not failed:
                json.loads(reply.choices[0].message.content)
    assert router.routed == {(EXTRACT, "small", "kept"): failing.count(False),
                             (EXTRACT, "small", "escalated:schema"): failing.count(True)}


async def test_a_streamed_call_of_a_cascaded_task_goes_to_the_primary(
    config: Any, fake: Any, sqlite_url: str,
) -> None:
    write_routes(config.routes_file(), {CLASSIFY: route(CLASSIFY, mode="cascade",
                                                        checks=("refusal",))})
    sent: list[dict[str, Any]] = []
    async with Shadow(config) as sh, httpx.AsyncClient(base_url=fake.base_url) as client:

        async def call(request: dict[str, Any]) -> str:
            sent.append(request)
            response = await client.post("/v1/chat/completions", json=request)
            return response.text

        request = {**requests_of(CLASSIFY, 1)[0], "stream": True}
        reply = await Router(config).route_and_shadow(task=CLASSIFY, request=request, call=call)
    assert reply.startswith("data:") and [r["model"] for r in sent] == ["frontier"]
    assert sh.stats.routed == {(CLASSIFY, "small", "bypassed:stream"): 1}
    assert await stored_routed(sqlite_url) == {(CLASSIFY, "small"): {"bypassed:stream": 1}}


async def test_a_failed_candidate_call_escalates_and_a_failed_primary_reaches_the_caller(
    config: Any, fake: Any,
) -> None:
    write_routes(config.routes_file(), {CLASSIFY: route(CLASSIFY, model="broken", mode="cascade",
                                                        checks=("refusal",))})
    request = requests_of(CLASSIFY, 1)[0]
    async with Shadow(config) as sh, Router(config) as router:
        reply = await router.route_and_shadow(task=CLASSIFY, request=request)  # nothing listens
        assert reply.model == "frontier"

        async def call(sent: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError(f"{sent['model']} is down")

        with pytest.raises(RuntimeError, match="frontier is down"):  # the primary's own error
            await router.route_and_shadow(task=CLASSIFY, request=request, call=call)
    assert sh.stats.routed == {(CLASSIFY, "broken", "escalated:error"): 2}
    assert sh.stats.primary_errors == 1  # the candidate's failure is not production's


async def test_a_partial_route_sends_the_requests_its_rule_picks_to_the_candidate(
    config: Any, fake: Any, sqlite_url: str,
) -> None:
    requests = requests_of("summarize_ticket", 24, seed=4)
    lengths = sorted(request_features(r)["chars"] for r in requests)
    threshold = lengths[len(lengths) // 2]
    rule = PartialRule.from_dict({"any_of": [[["chars", "<=", threshold]]], "fields": []})
    write_routes(config.routes_file(), {"summarize_ticket": route("summarize_ticket",
                                                                  mode="partial", rule=rule)})
    picked = [rule.matches(request_features(r)) for r in requests]
    assert 0 < sum(picked) < len(requests)
    async with Shadow(config) as sh, Router(config) as router:
        for request, to_small in zip(requests, picked, strict=True):
            reply = await router.route_and_shadow(task="summarize_ticket", request=request)
            assert reply.model == ("small" if to_small else "frontier")
    assert fake.calls("small") >= sum(picked)
    outcomes = {("summarize_ticket", "small", "kept"): picked.count(True),
                ("summarize_ticket", "small", "primary"): picked.count(False)}
    assert sh.stats.routed == outcomes and router.routed == outcomes
    assert sh.stats.reverse_shadows == picked.count(True)
    assert await stored_routed(sqlite_url) == {("summarize_ticket", "small"): {
        "kept": picked.count(True), "primary": picked.count(False)}}
