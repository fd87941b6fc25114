"""Cascade and partial routes in the route map: their entries (file and database), and
``promote --cascade POLICY`` / ``--partial`` gated on the latest report's policy verdicts
(SQLite and Postgres), from the library and the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from shadowroute import PromotionRefused, Router
from shadowroute.errors import ConfigError
from shadowroute.routing import Route, read_routes, write_routes
from shadowroute.routing import promote as ops
from shadowroute.routing.routemap import dump_routes, parse_routes, routes_from_changes
from shadowroute.routing.rules import PartialRule
from shadowroute.store import Store
from shadowroute.store.queries.routes import route_changes, save_report
from support.config import MODELS, ORDER_SCHEMA

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TASK = "extract_order"
RULE = {"any_of": [[["chars", "<=", 412.0], ["has_code", "<=", 0.5]]], "fields": []}


def cascade_result(verdict: str, checks: list[str], **kw: Any) -> dict[str, Any]:
    return {"verdict": verdict, "checks": checks, "escalation_rate": 0.08,
            "escalation_upper": 0.12, "break_even": 0.93, "monthly_savings": 410.0, "n": 900,
            "pass_rate": 0.97, "lower_bound": 0.95, **kw}


def partial_result(verdict: str, **kw: Any) -> dict[str, Any]:
    return {"verdict": verdict, "rule": RULE, "routed_share": 0.71, "pass_rate": 0.989,
            "lower_bound": 0.976, "monthly_savings": 290.0, "held_out": 400, **kw}


def decision(verdict: str = "HOLD", model: str = "small") -> dict[str, Any]:
    """The plain promotion's decision on TASK x model (HOLD: a cascade is what can move)."""
    return {"task_type": TASK, "model": model, "kind": "shadow", "verdict": verdict,
            "reason": "quality: lower bound 81.0% < required 95.0%", "primary_model": "frontier",
            "n": 900, "passed": 760, "pass_rate": 0.84, "lower_bound": 0.81,
            "noise_floor": 0.01, "judge_version": "judge-v1", "monthly_savings": 500.0}


async def save(store: Store, at: datetime, policies: dict[str, Any] | None,
               *rows: dict[str, Any]) -> str:
    """A report at ``at`` whose overview holds ``policies`` (``{model: {...}}`` for TASK)."""
    report_id = f"{int(at.timestamp()):032x}"
    overview = {"policies": {TASK: policies}} if policies is not None else {}
    await save_report(store, {"id": report_id, "created_at": at, "since": None,
                              "overview": overview},
                      [{**r, "report_id": report_id, "created_at": at} for r in rows])
    return report_id


@pytest.fixture
def config(tmp_path: Path, make_config: Callable[..., Any], db_url: str) -> Any:
    schema = tmp_path / "order.schema.json"
    schema.write_text(json.dumps(ORDER_SCHEMA))
    return make_config(db_url, models=MODELS, tasks={
        TASK: {"candidates": ["small"], "json_schema": str(schema)},
        "classify_intent": {"candidates": ["small"]}},
        routes={"file": str(tmp_path / "routes.yaml"), "reload_interval_s": 0})


# --------------------------------------------------------------------------- the entries


def route(**kw: Any) -> Route:
    return Route(task=kw.pop("task", TASK), model="small", tier="promoted", primary="frontier",
                 since=T0, by="alice", **kw)


def test_cascade_and_partial_entries_round_trip_and_show_in_the_file(tmp_path: Path) -> None:
    routes = {
        TASK: route(mode="cascade", checks=("schema", "truncated"),
                    evidence={"policy": "all", "promise": {"escalation_rate": 0.08}}),
        "summarize": route(task="summarize", mode="partial", rule=PartialRule.from_dict(RULE),
                           evidence={"promise": {"routed_share": 0.71}}),
        "classify_intent": route(task="classify_intent"),
    }
    path = tmp_path / "routes.yaml"
    write_routes(path, routes)
    assert read_routes(path) == routes
    loaded = yaml.safe_load(path.read_text())["routes"]
    assert loaded[TASK]["mode"] == "cascade" and loaded[TASK]["checks"] == ["schema", "truncated"]
    assert loaded[TASK]["evidence"]["promise"] == {"escalation_rate": 0.08}
    assert loaded["summarize"]["mode"] == "partial" and loaded["summarize"]["rule"] == RULE
    # A plain promotion's entry is as it always was: no mode, no checks, no rule.
    assert not {"mode", "checks", "rule"} & set(loaded["classify_intent"])
    assert dump_routes(read_routes(path)) == path.read_text()


def test_an_old_entry_reads_as_a_promotion() -> None:
    (old,) = parse_routes("version: 1\nroutes:\n  t: {model: small, tier: promoted, primary: f, "
                          "promoted_at: 2026-01-01T00:00:00+00:00, by: a}\n").values()
    assert old.mode == "promote" and old.whole and old.checks == () and old.rule is None
    (row,) = routes_from_changes([{
        "task_type": "t", "action": "promote", "model": "small", "primary_model": "f",
        "created_at": T0, "actor": "a", "forced": False, "reason": None,
        "evidence": {"report": "r", "n": 3}}]).values()
    assert row.whole and row.evidence == {"report": "r", "n": 3}


@pytest.mark.parametrize(("entry", "message"), [
    ("mode: cascade", "a cascade route needs checks"),
    ("mode: cascade, checks: [schema, vibes]", "unknown check 'vibes'"),
    ("mode: partial", "a partial route needs rule"),
    ("mode: partial, rule: {any_of: [[[chars, '<', 3]]]}", "a condition is"),
    ("checks: [schema]", "checks belong to a cascade route"),
    ("mode: sometimes", "routes.t.mode"),
])
def test_a_malformed_cascade_or_partial_entry_is_named(entry: str, message: str) -> None:
    text = ("version: 1\nroutes:\n  t: {model: small, tier: promoted, primary: f, "
            f"promoted_at: 2026-01-01T00:00:00+00:00, by: a, {entry}}}\n")
    with pytest.raises(ConfigError, match=message):
        parse_routes(text, "routes.yaml")


def test_model_for_leaves_cascades_and_partial_routes_to_route_and_shadow(config: Any) -> None:
    """Which model serves such a call depends on its answer or its request: a bare model id
    cannot say, so model_for gives the default (the primary) rather than skip the checks."""
    write_routes(config.routes_file(), {TASK: route(mode="cascade", checks=("schema",)),
                                        "classify_intent": route(task="classify_intent")})
    router = Router(config)
    assert router.model_for(TASK, default="frontier") == "frontier"
    assert router.model_for("classify_intent", default="frontier") == "small"


# --------------------------------------------------------------------------- the gate


async def test_a_cascade_is_refused_unless_its_policy_says_cascade(
    config: Any, store: Store,
) -> None:
    with pytest.raises(PromotionRefused, match="evaluated no cascade of extract_order -> small"):
        await ops.promote(config, store, TASK, "small", cascade="schema")
    await save(store, T0, {"small": {"cascade": {
        "schema": cascade_result("HOLD", ["schema"]),
        "refusal": cascade_result("NO SAVING", ["refusal"]),
        "all": cascade_result("CASCADE", ["empty", "truncated", "refusal", "schema"])}}},
        decision())
    with pytest.raises(PromotionRefused) as info:
        await ops.promote(config, store, TASK, "small", cascade="schema")
    message = str(info.value)
    assert "\n" not in message
    assert "says HOLD for the 'schema' cascade of extract_order -> small" in message
    assert "policies: all CASCADE, refusal NO SAVING, schema HOLD" in message
    assert "--force --reason" in message
    with pytest.raises(PromotionRefused, match="has no cascade policy 'tool_args'.*all CASCADE"):
        await ops.promote(config, store, TASK, "small", cascade="tool_args")
    # Plain promotion is still gated on its own verdict (HOLD).
    with pytest.raises(PromotionRefused, match="says HOLD for extract_order -> small"):
        await ops.promote(config, store, TASK, "small")
    with pytest.raises(PromotionRefused, match="choose one"):
        await ops.promote(config, store, TASK, "small", cascade="all", partial=True)
    assert await route_changes(store) == []
    assert not config.routes_file().exists()


async def test_a_cascade_with_a_cascade_verdict_is_written_with_its_promise(
    config: Any, store: Store,
) -> None:
    checks = ["empty", "truncated", "refusal", "schema"]
    report_id = await save(store, T0, {"small": {"cascade": {
        "schema": cascade_result("HOLD", ["schema"]),
        "all": cascade_result("CASCADE", checks, escalation_rate=0.11)}}}, decision())
    change = await ops.promote(config, store, TASK, "small", cascade="all", by="alice",
                               now=T0 + timedelta(hours=1))
    route_ = change.route
    assert change.changed and not route_.forced and route_.primary == "frontier"
    assert (route_.mode, route_.checks) == ("cascade", tuple(checks))
    assert route_.evidence["report"] == report_id and route_.evidence["verdict"] == "CASCADE"
    assert route_.evidence["policy"] == "all"
    assert route_.evidence["promise"] == {"escalation_rate": 0.11, "escalation_upper": 0.12,
                                          "break_even": 0.93}
    assert route_.evidence["judge"] == "judge-v1"  # from the report's decision on the pair
    assert read_routes(config.routes_file()) == {TASK: route_}
    assert yaml.safe_load(config.routes_file().read_text())["routes"][TASK]["checks"] == checks
    (row,) = await route_changes(store)
    assert row["report_id"] == report_id and row["evidence"]["mode"] == "cascade"
    again = await ops.promote(config, store, TASK, "small", cascade="all")
    assert not again.changed and len(await route_changes(store)) == 1
    assert await ops.check_routes(config, store) == []
    # The same model as a plain promotion is another route: refused on its own verdict.
    with pytest.raises(PromotionRefused, match="says HOLD"):
        await ops.promote(config, store, TASK, "small")
    demoted = await ops.demote(config, store, TASK, reason="escalation creep")
    assert demoted.route.tier == "primary" and demoted.route.whole


async def test_a_forced_cascade_records_who_and_why_and_its_checks(
    config: Any, store: Store,
) -> None:
    await save(store, T0, {"small": {"cascade": {"schema": cascade_result("HOLD", ["schema"])}}},
               decision())
    change = await ops.promote(config, store, TASK, "small", cascade="schema", force=True,
                               reason="incident 4712", by="carol")
    assert change.route.forced and change.route.checks == ("schema",)
    assert change.route.evidence["verdict"] == "HOLD"
    # Forced without the report's word on that policy: a check's name is its policy.
    forced = await ops.promote(config, store, TASK, "small", cascade="refusal", force=True,
                               reason="try it")
    assert forced.route.checks == ("refusal",) and forced.route.evidence["promise"] == {}
    with pytest.raises(PromotionRefused, match="unknown cascade policy 'vibes'"):
        await ops.promote(config, store, TASK, "small", cascade="vibes", force=True, reason="x")
    # A check the task cannot run is named, --force or not.
    await save(store, T0 + timedelta(days=1), None, decision(model="small") | {
        "task_type": "classify_intent"})
    with pytest.raises(PromotionRefused, match="cannot run: the schema check needs"):
        await ops.promote(config, store, "classify_intent", "small", cascade="schema",
                          force=True, reason="x")


async def test_a_partial_route_is_gated_on_partial_and_carries_its_rule(
    config: Any, store: Store,
) -> None:
    await save(store, T0, {"small": {"partial": partial_result("HOLD")}}, decision())
    with pytest.raises(PromotionRefused, match="says HOLD for a partial route of extract_order"):
        await ops.promote(config, store, TASK, "small", partial=True)
    await save(store, T0 + timedelta(days=1), {"small": {"partial": partial_result("PARTIAL")}},
               decision())
    change = await ops.promote(config, store, TASK, "small", partial=True)
    route_ = change.route
    assert route_.mode == "partial" and route_.rule == PartialRule.from_dict(RULE)
    assert route_.evidence["promise"] == {"routed_share": 0.71}
    assert route_.evidence["rule_text"] == "chars <= 412 and has_code = no"
    assert route_.evidence["n"] == 400  # the held-out pairs it was proven on
    assert read_routes(config.routes_file()) == {TASK: route_}
    # No rule learned: --force cannot make one up.
    await save(store, T0 + timedelta(days=2), {"small": {"partial": {"verdict": "HOLD"}}},
               decision())
    with pytest.raises(PromotionRefused, match="has learned no rule"):
        await ops.promote(config, store, TASK, "tiny", partial=True, force=True, reason="x")


async def test_diff_recommends_the_policy_that_saves_most_when_nothing_promotes(
    config: Any, store: Store,
) -> None:
    await save(store, T0, {
        "small": {"cascade": {"schema": cascade_result("CASCADE", ["schema"],
                                                       monthly_savings=100.0)},
                  "partial": partial_result("PARTIAL", monthly_savings=250.0)},
        "tiny": {"cascade": {"all": cascade_result("HOLD", ["schema"])}}},
        decision(), decision(model="tiny"))
    _, lines = await ops.routes_diff(config, store)
    (line,) = lines
    assert (line.current, line.recommended) == ("primary", "small (partial)")
    assert line.command == "shadowroute promote extract_order --to small --partial"
    await ops.promote(config, store, TASK, "small", partial=True)
    _, lines = await ops.routes_diff(config, store)
    assert lines[0].current == "small (partial)" and not lines[0].changes


def test_the_command_line_applies_a_cascade(tmp_path: Path, cli: Callable[..., Any],
                                            sqlite_url: str) -> None:
    import anyio

    toml = tmp_path / "shadowroute.toml"
    schema = tmp_path / "order.schema.json"
    schema.write_text(json.dumps(ORDER_SCHEMA))
    toml.write_text(f"""
database_url = "{sqlite_url}"
[models.frontier]
base_url = "http://127.0.0.1:9/v1"
[models.small]
base_url = "http://127.0.0.1:9/v1"
[tasks.{TASK}]
candidates = ["small"]
json_schema = "{schema}"
""")
    env = {"SHADOWROUTE_CONFIG": str(toml), "SHADOWROUTE_DATABASE_URL": "",
           "SHADOWROUTE_ACTOR": "e2e"}

    async def saved() -> None:
        async with await Store.open(sqlite_url) as store:
            await save(store, T0, {"small": {"cascade": {
                "schema": cascade_result("CASCADE", ["schema"]),
                "refusal": cascade_result("HOLD", ["refusal"])}}}, decision())

    anyio.run(saved)
    refused = cli("promote", TASK, "--to", "small", "--cascade", "refusal", cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "refusal HOLD, schema CASCADE" in refused.stderr
    done = cli("promote", TASK, "--to", "small", "--cascade", "schema", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "as a cascade (checks: schema; a failed check escalates to frontier)" in done.stdout
    assert "promises escalation rate 8.0% (bound 12.0%, break-even 93.0%)" in done.stdout
    listed = cli("routes", cwd=tmp_path, env=env)
    assert "cascade" in listed.stdout and listed.returncode == 0
