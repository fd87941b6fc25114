"""The route map: its file, the Router, the reverse shadow, and promote / demote / diff / check
against stored decisions (SQLite and Postgres)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from shadowroute import PromotionRefused, Router, Shadow
from shadowroute.errors import ConfigError
from shadowroute.fakellm import FakeLLMServer, default_settings
from shadowroute.records import NOISE_FLOOR_MODEL
from shadowroute.routing import Route, RouteMap, read_routes, write_routes
from shadowroute.routing import promote as ops
from shadowroute.routing.routemap import dump_routes, parse_routes
from shadowroute.store import Store
from shadowroute.store.queries.routes import route_changes, save_report
from support.config import MODELS
from support.pipeline import REQUEST

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def route(task: str = "classify_intent", model: str = "small", tier: str = "promoted",
          **kw: Any) -> Route:
    return Route(task=task, model=model, tier=tier, primary=kw.pop("primary", "frontier"),
                 since=kw.pop("since", T0), by=kw.pop("by", "alice"), **kw)


@pytest.fixture
def routed_config(
    make_config: Callable[..., Any], shadow_preset: dict[str, Any],
) -> Callable[..., Any]:
    """A Shadow's config with a route map in tmp_path, reloaded on every call, reverse shadow
    at 1.0."""

    def routed_config(tmp_path: Path, db_url: str, **overrides: Any) -> Any:
        routes = {"file": str(tmp_path / "routes.yaml"), "reload_interval_s": 0,
                  "reverse_shadow_rate": 1.0, **overrides.pop("routes", {})}
        return make_config(db_url, shadow_preset, routes=routes, **overrides)

    return routed_config


# --------------------------------------------------------------------------- the file


def test_the_file_round_trips_and_is_stable(tmp_path: Path) -> None:
    routes = {"b_task": route("b_task", evidence={"report": "ab" * 16, "n": 120}),
              "a_task": route("a_task", model="frontier", tier="primary", reason="drift")}
    path = tmp_path / "routes.yaml"
    write_routes(path, routes)
    text = path.read_text()
    assert text.startswith("# shadowroute route map")
    assert text.index("a_task:") < text.index("b_task:")  # sorted: changes show as small diffs
    assert read_routes(path) == routes
    assert dump_routes(read_routes(path)) == text
    loaded = yaml.safe_load(text)["routes"]
    assert loaded["b_task"]["evidence"]["n"] == 120
    assert loaded["b_task"]["promoted_at"] == T0.isoformat()
    assert loaded["a_task"]["demoted_at"] == T0.isoformat() and "promoted_at" not in loaded["a_task"]
    assert read_routes(tmp_path / "absent.yaml") == {}


@pytest.mark.parametrize(("text", "key"), [
    ("version: 2\nroutes: {}\n", "version"),
    ("version: 1\nroutes:\n  t: {model: small, tier: cheap, primary: f, promoted_at: 2026-01-01, "
     "by: a}\n", "routes.t.tier"),
    ("version: 1\nroutes:\n  t: {tier: promoted, primary: f, promoted_at: 2026-01-01, by: a}\n",
     "routes.t.model"),
    ("version: 1\nroutes:\n  t: {model: s, tier: promoted, primary: f, demoted_at: 2026-01-01, "
     "by: a}\n", "routes.t"),
])
def test_a_malformed_file_names_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"routes.yaml: {key}: "):
        parse_routes(text, "routes.yaml")


def test_invalid_yaml_is_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_routes("routes: [unclosed\n", "routes.yaml")
    assert "invalid YAML" in str(info.value) and "\n" not in str(info.value)


def test_route_map_reloads_when_the_file_changes_and_keeps_the_last_good_map(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "routes.yaml"
    now = [0.0]
    routes = RouteMap(path, interval_s=1.0, clock=lambda: now[0])
    assert routes.get("classify_intent") is None  # no file: nothing promoted
    write_routes(path, {"classify_intent": route()})
    assert routes.get("classify_intent") is None  # not re-checked within the interval
    now[0] = 1.0
    assert routes.get("classify_intent").model == "small"
    path.write_text("version: 1\nroutes: [not, a, map]\n")
    now[0] = 2.0
    with caplog.at_level(logging.WARNING, logger="shadowroute"):
        assert routes.get("classify_intent").model == "small"  # the last good map holds
        now[0] = 3.0
        routes.get("classify_intent")
    assert routes.errors == 1 and len(caplog.records) == 1  # logged once per bad version
    write_routes(path, {"classify_intent": route(model="frontier", tier="primary")})
    now[0] = 4.0
    assert routes.get("classify_intent") is None  # demoted: the primary serves it
    assert "classify_intent" in routes.routes()


def test_a_bad_file_at_start_leaves_everything_on_the_primary(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(": : :\n")
    routes = RouteMap(path, interval_s=0)
    assert routes.get("classify_intent") is None and routes.errors == 1


# --------------------------------------------------------------------------- Router


async def test_model_for_follows_the_map(tmp_path: Path, sqlite_url: str, routed_config) -> None:
    config = routed_config(tmp_path, sqlite_url, models={
        **MODELS, "small": {"base_url": "http://127.0.0.1:9/v1", "model": "gpt-small-2026"}})
    router = Router(config)
    assert router.model_for("classify_intent", default="frontier") == "frontier"
    write_routes(config.routes_file(), {"classify_intent": route()})
    assert router.model_for("classify_intent", default="frontier") == "gpt-small-2026"
    assert router.model_for("other", default="frontier") == "frontier"


async def test_route_and_shadow_serves_promoted_tasks_and_reverse_shadows_them(
    tmp_path: Path, db_url: str, routed_config, fake_candidate, completion, stored
) -> None:
    config = routed_config(tmp_path, db_url, tasks={"classify_intent": {
        "candidates": ["small"], "sample_rate": 1.0, "noise_floor_rate": 1.0}})
    write_routes(config.routes_file(), {"classify_intent": route()})
    frontier = fake_candidate("frontier", text="refund")
    small = fake_candidate("small", text="never called as a candidate")
    sent: list[dict[str, Any]] = []

    async def call(request: dict[str, Any]) -> dict[str, Any]:
        sent.append(request)
        return completion("shipping", model=request["model"])

    async with Shadow(config, providers={"small": small, "frontier": frontier}) as sh:
        router = Router(config)
        for i in range(4):
            request = {**REQUEST, "messages": [{"role": "user", "content": f"parcel {i}"}]}
            reply = await router.route_and_shadow(task="classify_intent", request=request,
                                                  call=call)
            assert reply["model"] == "small"
        # An unpromoted task type is shadowed forwards as usual.
        await router.route_and_shadow(task="sentiment", request=REQUEST, call=call)
    assert [r["model"] for r in sent] == ["small"] * 4 + ["frontier"]
    assert small.requests == []  # the promoted model answered production, not the mirror
    assert len(frontier.requests) == 8  # reference + noise-floor replay for each
    assert sh.stats.reverse_shadows == 4 and sh.stats.reverse_failed == 0
    exchanges, outputs = await stored(config.database_url)
    reverse = [x for x in exchanges if x.route == "reverse"]
    assert len(reverse) == 4 and {x.primary_model for x in reverse} == {"frontier"}
    assert {x.primary_output for x in reverse} == {"refund"}
    assert all(x.request["model"] == "frontier" for x in reverse)
    mine = [o for o in outputs if o.exchange_id in {x.id for x in reverse}]
    assert sorted(o.model for o in mine) == [NOISE_FLOOR_MODEL] * 4 + ["small"] * 4
    assert {o.output for o in mine if o.model == "small"} == {"shipping"}
    assert {x.route for x in exchanges if x.task_type == "sentiment"} <= {"shadow"}


async def test_a_failed_reference_call_is_counted_not_stored(
    tmp_path: Path, sqlite_url: str, routed_config, fake_candidate, completion, stored,
) -> None:
    config = routed_config(tmp_path, sqlite_url, tasks={"classify_intent": {
        "candidates": ["small"], "sample_rate": 1.0, "noise_floor_rate": 0.0}})
    write_routes(config.routes_file(), {"classify_intent": route()})
    frontier = fake_candidate("frontier", mode="error")

    async def call(request: dict[str, Any]) -> dict[str, Any]:
        return completion("shipping", model=request["model"])

    async with Shadow(config, providers={"small": fake_candidate("small"), "frontier": frontier}) as sh:
        reply = await Router(config).route_and_shadow(task="classify_intent", request=REQUEST,
                                                      call=call)
    assert reply["choices"][0]["message"]["content"] == "shipping"
    assert sh.stats.reverse_failed == 1 and sh.stats.reverse_shadows == 0
    assert sh.stats.discarded == {"reverse_failed": 1} and sh.stats.ledger()["pending"] == 0
    exchanges, _ = await stored(config.database_url)
    assert exchanges == []


async def test_a_call_that_depends_on_the_primarys_state_is_not_routed(
    tmp_path: Path, sqlite_url: str, routed_config, fake_candidate,
) -> None:
    """A Responses API follow-up (previous_response_id) only means something to the provider
    that stored the first turn: it stays on the primary even when its task type is promoted."""
    config = routed_config(tmp_path, sqlite_url)
    write_routes(config.routes_file(), {"classify_intent": route()})
    sent: list[dict[str, Any]] = []

    async def call(request: dict[str, Any]) -> dict[str, Any]:
        sent.append(request)
        return {"id": "resp_2", "object": "response", "status": "completed", "model": request["model"],
                "output": [], "usage": None}

    follow_up = {"model": "frontier", "input": "and the other one?", "previous_response_id": "resp_1"}
    fresh = {"model": "frontier", "input": "where is my parcel?"}
    async with Shadow(config, providers={"small": fake_candidate("small")}) as sh:
        router = Router(config)
        await router.route_and_shadow(task="classify_intent", request=follow_up, call=call,
                                      api="responses")
        await router.route_and_shadow(task="classify_intent", request=fresh, call=call,
                                      api="responses")
        with pytest.raises(ConfigError, match="previous_response_id.*pass call="):
            await router.route_and_shadow(task="classify_intent", request=follow_up,
                                          api="responses")
    assert [r["model"] for r in sent] == ["frontier", "small"]
    assert sh.stats.not_shadowable == {"previous_response_id": 1}


async def test_the_production_call_error_reaches_the_caller(
    tmp_path: Path, sqlite_url: str, routed_config, fake_candidate,
) -> None:
    config = routed_config(tmp_path, sqlite_url)
    write_routes(config.routes_file(), {"classify_intent": route()})

    async def broken(request: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("promoted model down")

    async with Shadow(config, providers={"small": fake_candidate("small")}) as sh:
        with pytest.raises(RuntimeError, match="promoted model down"):
            await Router(config).route_and_shadow(task="classify_intent", request=REQUEST,
                                                  call=broken)
    assert sh.stats.primary_errors == 1


async def test_without_call_a_route_to_an_undeclared_model_stays_on_the_primary(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture, routed_config
) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as fake:
        config = routed_config(tmp_path, sqlite_url, models={
            **MODELS, "frontier": {"base_url": fake.base_url + "/v1"}})
        write_routes(config.routes_file(), {"classify_intent": route(model="gone")})
        with caplog.at_level(logging.WARNING, logger="shadowroute"):
            async with Router(config) as router:
                replies = [await router.route_and_shadow(task="classify_intent", request=REQUEST)
                           for _ in range(2)]
        assert fake.calls("frontier") == 2
    assert {r.model for r in replies} == {"frontier"}
    assert len([r for r in caplog.records if "'gone'" in r.getMessage()]) == 1


async def test_without_call_an_undeclared_model_is_a_clear_error(
    tmp_path: Path, sqlite_url: str, routed_config,
) -> None:
    router = Router(routed_config(tmp_path, sqlite_url))
    with pytest.raises(ConfigError, match="'gpt-unknown': it is not declared under \\[models\\]"):
        await router.route_and_shadow(task="t", request={**REQUEST, "model": "gpt-unknown"})


# --------------------------------------------------------------------------- promote / demote


def decision(task: str, model: str, verdict: str, **kw: Any) -> dict[str, Any]:
    return {"task_type": task, "model": model, "kind": kw.pop("kind", "shadow"),
            "verdict": verdict, "reason": kw.pop("reason", "figures"),
            "primary_model": kw.pop("primary_model", "frontier"), "n": kw.pop("n", 400),
            "passed": kw.pop("passed", 396), "pass_rate": 0.99, "lower_bound": 0.96,
            "noise_floor": 0.01, "judge_version": "judge-v1", "monthly_savings": 120.0, **kw}


async def report_with(store: Store, at: datetime, *rows: dict[str, Any]) -> str:
    report_id = f"{int(at.timestamp()):032x}"
    await save_report(store, {"id": report_id, "created_at": at, "since": None,
                                     "overview": {}},
                      [{**r, "report_id": report_id, "created_at": at} for r in rows])
    return report_id


async def test_promote_is_gated_on_the_latest_decision(
    tmp_path: Path, store: Store, routed_config,
) -> None:
    config = routed_config(tmp_path, store.url)
    with pytest.raises(PromotionRefused, match="no report has decided classify_intent -> small"):
        await ops.promote(config, store, "classify_intent", "small")
    await report_with(store, T0, decision("classify_intent", "small", "PROMOTE"))
    await report_with(store, T0 + timedelta(days=1), decision(
        "classify_intent", "small", "HOLD", reason="quality: lower bound 87.0% < required 95.0%"))
    with pytest.raises(PromotionRefused) as info:
        await ops.promote(config, store, "classify_intent", "small")
    assert "says HOLD" in str(info.value) and "lower bound 87.0%" in str(info.value)
    assert "--force --reason" in str(info.value)
    with pytest.raises(PromotionRefused, match="--force needs --reason"):
        await ops.promote(config, store, "classify_intent", "small", force=True)
    with pytest.raises(ConfigError, match="'gpt-9': it is not declared"):
        await ops.promote(config, store, "classify_intent", "gpt-9")
    assert await route_changes(store) == []
    assert not config.routes_file().exists()


async def test_promote_records_evidence_and_exports_the_map(
    tmp_path: Path, store: Store, routed_config,
) -> None:
    config = routed_config(tmp_path, store.url)
    report_id = await report_with(store, T0, decision("classify_intent", "small", "PROMOTE"))
    change = await ops.promote(config, store, "classify_intent", "small", by="alice",
                               now=T0 + timedelta(hours=1))
    assert change.changed and change.route.primary == "frontier" and not change.route.forced
    assert change.route.evidence["report"] == report_id
    assert change.route.evidence["lower_bound"] == 0.96
    assert change.route.evidence["judge"] == "judge-v1"
    on_disk = read_routes(config.routes_file())
    assert on_disk == {"classify_intent": change.route}
    again = await ops.promote(config, store, "classify_intent", "small")
    assert not again.changed and len(await route_changes(store)) == 1
    assert await ops.check_routes(config, store) == []

    demoted = await ops.demote(config, store, "classify_intent", reason="seasonal traffic",
                               by="bob", now=T0 + timedelta(hours=2))
    assert demoted.route.tier == "primary" and demoted.route.model == "frontier"
    assert read_routes(config.routes_file())["classify_intent"].reason == "seasonal traffic"
    assert Router(config).model_for("classify_intent", "frontier") == "frontier"
    with pytest.raises(PromotionRefused, match="is not promoted"):
        await ops.demote(config, store, "classify_intent")
    history = await route_changes(store)
    assert [(c["action"], c["model"], c["actor"]) for c in history] == [
        ("promote", "small", "alice"), ("demote", "frontier", "bob")]


async def test_a_forced_promotion_records_who_and_why(
    tmp_path: Path, store: Store, routed_config,
) -> None:
    config = routed_config(tmp_path, store.url)
    await report_with(store, T0, decision("classify_intent", "tiny", "NEED MORE DATA"))
    change = await ops.promote(config, store, "classify_intent", "tiny", force=True,
                               reason="incident 4711: frontier outage", by="carol")
    assert change.route.forced and change.route.reason == "incident 4711: frontier outage"
    (row,) = await route_changes(store)
    assert row["forced"] is True and row["actor"] == "carol"
    assert row["evidence"]["verdict"] == "NEED MORE DATA"


async def test_diff_and_check_follow_the_latest_report(
    tmp_path: Path, store: Store, routed_config,
) -> None:
    config = routed_config(tmp_path, store.url)
    await report_with(store, T0, decision("classify_intent", "small", "PROMOTE"),
                      decision("summarize", "tiny", "PROMOTE", monthly_savings=10.0),
                      decision("summarize", "small", "PROMOTE", monthly_savings=30.0))
    _, lines = await ops.routes_diff(config, store)
    assert [(x.task, x.current, x.recommended) for x in lines] == [
        ("classify_intent", "primary", "small"), ("summarize", "primary", "small")]
    assert lines[1].command == "shadowroute promote summarize --to small"
    await ops.promote(config, store, "classify_intent", "small", now=T0 + timedelta(hours=1))
    await report_with(store, T0 + timedelta(days=1),
                      decision("classify_intent", "small", "DEMOTE RECOMMENDED", kind="drift",
                               reason="quality: pass rate 61.0%, upper bound 70.2% < required"))
    _, lines = await ops.routes_diff(config, store)
    assert (lines[0].current, lines[0].recommended) == ("small", "primary")
    assert lines[0].command == "shadowroute demote classify_intent"
    problems = await ops.check_routes(config, store)
    assert len(problems) == 1 and "DEMOTE RECOMMENDED" in problems[0]
    # A hand edit of the file is caught too.
    write_routes(config.routes_file(), {})
    problems = await ops.check_routes(config, store)
    assert any("differs from the database" in p for p in problems)
