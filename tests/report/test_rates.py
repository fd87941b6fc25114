"""The shares the report sets for running pipelines (``overview["shadow_rates"]``): settled
candidates at the maintenance rate, undecided ones by their chance of passing, retired ones
left to the database, and the words that say so."""

from __future__ import annotations

from dataclasses import asdict
from types import SimpleNamespace
from typing import Any

import pytest

from shadowroute.decision import Policy
from shadowroute.report.rates import rates_note, shadow_rates

MODELS = {name: {"base_url": "http://127.0.0.1:9/v1"}
          for name in ("big", "mini", "tiny", "nano", "pico")}


def _candidate(model: str, verdict: str, n: int, chance: float | None = None) -> Any:
    return SimpleNamespace(model=model, verdict=verdict, n=n, pass_chance=chance,
                           shadow_rate=None, shadow_why=None)


def _task(*candidates: Any) -> Any:
    return SimpleNamespace(task="classify", primary_model="big", candidates=list(candidates),
                           policy=asdict(Policy()))


def test_each_candidate_gets_the_share_its_verdict_and_chance_call_for(make_config) -> None:
    config = make_config("sqlite+aiosqlite:///unused.db", models=MODELS, tasks={"classify": {
        "candidates": ["mini", "tiny", "nano", "pico"], "scorers": ["exact"]}})
    t = _task(_candidate("mini", "PROMOTE", 500), _candidate("tiny", "NEED MORE DATA", 300, 0.2),
              _candidate("nano", "NEED MORE DATA", 300, 0.01),
              _candidate("pico", "NEED MORE DATA", 40))
    rates = shadow_rates(config, [t], retired={})
    fingerprint = config.policy_fingerprint("classify")
    assert rates == {"classify": {
        "mini": {"rate": 0.1, "why": "settled", "verdict": "PROMOTE", "primary": "big",
                 "policy": fingerprint},
        "tiny": {"rate": pytest.approx(0.4), "why": "allocated", "verdict": "NEED MORE DATA",
                 "primary": "big", "policy": fingerprint},
        "nano": {"rate": 0.25, "why": "allocated", "verdict": "NEED MORE DATA",
                 "primary": "big", "policy": fingerprint}}}  # pico: too few outputs, all calls
    assert t.candidates[3].shadow_rate is None
    note = rates_note(t)
    assert note is not None
    assert "mini settled: shadowed on 10% of sampled calls" in note
    assert "tiny unlikely to pass (20% chance, full rate from 50%): shadowed on 40%" in note
    assert "nano unlikely to pass (1% chance, full rate from 50%): shadowed on 25%" in note


def test_a_retired_candidate_is_shown_but_left_to_the_database(make_config) -> None:
    config = make_config("sqlite+aiosqlite:///unused.db", models=MODELS, tasks={"classify": {
        "candidates": ["mini", "tiny"], "scorers": ["exact"]}})
    t = _task(_candidate("mini", "HOLD", 500), _candidate("tiny", "HOLD", 500))
    retired = {"classify": {"mini": {"primary": "big", "by": "ana", "at": "", "reason": None},
                            "tiny": {"primary": "older-big", "by": "ana", "at": "",
                                     "reason": None}}}
    rates = shadow_rates(config, [t], retired)
    # mini's retirement holds against big: pipelines read it from the database, the report
    # does not list it; tiny's was against another primary: settled as usual.
    assert list(rates["classify"]) == ["tiny"]
    assert t.candidates[0].shadow_why == "retired" and t.candidates[0].shadow_rate == 0.0
    assert "mini retired (`shadowroute resume classify mini` brings it back" in rates_note(t)


def test_rates_of_one_turn_it_off(make_config) -> None:
    config = make_config("sqlite+aiosqlite:///unused.db", models=MODELS, tasks={"classify": {
        "candidates": ["mini", "tiny"], "scorers": ["exact"]}},
        decision={"maintenance_rate": 1.0, "allocation_floor": 1.0})
    t = _task(_candidate("mini", "HOLD", 500), _candidate("tiny", "NEED MORE DATA", 300, 0.0))
    assert shadow_rates(config, [t], retired={}) == {}
    assert rates_note(t) is None
