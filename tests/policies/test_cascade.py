"""Cascade what-if on stored pairs: the checks decide the escalations, the served answers go
through the promotion's decision, and a cascade below the bar is recommended in at most alpha
of the runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shadowroute.decision import Policy
from shadowroute.policies.cascade import CASCADE, cascade_policies, evaluate_cascade
from shadowroute.scoring.checks import Checks
from shadowroute.store.queries.policies import StoredPair

START = datetime(2026, 11, 1, tzinfo=UTC)
REFUSAL = "I'm sorry, but I can't help with that."


def _pairs(rng: np.random.Generator, n: int, *, bad: float, caught: float,
           floor: float = 0.02, error: float = 0.0) -> list[StoredPair]:
    """``n`` outputs: a ``bad`` share fails its scorers; ``caught`` of those read as refusals
    (what the check sees); ``error`` of all calls failed. Candidate $0.10, primary $1.00 a
    request; replays fail at ``floor``."""
    failed_call = rng.random(n) < error
    bad = failed_call | (rng.random(n) < bad)
    refusal = bad & (rng.random(n) < caught)
    replay_failed = rng.random(n) < floor
    request = {"messages": [{"role": "user", "content": "Capital of France?"}]}
    return [StoredPair(
        exchange_id=f"x{i}", created_at=START + timedelta(minutes=i), request=request,
        metadata={}, output=(None if failed_call[i] else REFUSAL if refusal[i] else
                             "Lyon." if bad[i] else "Paris is the capital of France."),
        finish_reason="stop", error=bool(failed_call[i]), ok=0 if bad[i] else 1, cost_usd=0.10,
        latency_ms=200.0, primary_cost_usd=1.00, primary_latency_ms=900.0,
        replay_ok=0 if replay_failed[i] else 1) for i in range(n)]


def _noise(pairs: list[StoredPair]) -> tuple[int, int]:
    replays = [p.replay_ok for p in pairs if p.replay_ok is not None]
    return len(replays), replays.count(0)


def test_a_perfect_check_escalates_the_failures_and_proves_a_cascade() -> None:
    pairs = _pairs(np.random.default_rng(1), 1500, bad=0.30, caught=1.0)
    result = evaluate_cascade(pairs, Checks(("refusal",)), Policy(), "small", "refusal",
                              noise=_noise(pairs), requests_per_day=1000)
    assert result.verdict == CASCADE
    assert result.escalation_rate == pytest.approx(0.30, abs=0.04)
    assert result.escalations == {"refusal": result.escalated}
    assert result.pass_rate == 1.0 and result.lower_bound > 0.99
    assert result.break_even == pytest.approx(0.9)
    # A request costs 0.10 + e x 1.00 against 1.00 on the primary.
    assert result.cost_per_1k == pytest.approx(1000 * (0.10 + result.escalation_rate * 1.0))
    assert result.monthly_savings == pytest.approx(
        (1.0 - 0.10 - result.escalation_rate) * 1000 * 30)
    assert result.escalation_upper > result.escalation_rate
    # Escalated requests take both calls, one after the other.
    assert result.latency_p50 == 200.0 and result.latency_p95 == 1100.0


def test_a_useless_check_recommends_no_cascade() -> None:
    pairs = _pairs(np.random.default_rng(2), 1500, bad=0.30, caught=0.0)
    result = evaluate_cascade(pairs, Checks(("refusal",)), Policy(), "small", "refusal",
                              noise=_noise(pairs), requests_per_day=1000)
    assert result.escalated == 0 and result.verdict == "HOLD"


def test_failed_calls_escalate_and_a_cascade_that_escalates_too_often_saves_nothing() -> None:
    pairs = _pairs(np.random.default_rng(3), 1500, bad=0.0, caught=1.0, error=0.95)
    result = evaluate_cascade(pairs, Checks(("empty",)), Policy(), "small", "empty",
                              noise=_noise(pairs), requests_per_day=1000)
    assert result.escalations.keys() == {"error"}
    assert result.escalation_rate > 0.9  # above the 90% break-even
    assert result.verdict == "NO SAVING" and "would not save money" in result.reason


def test_policies_tried_are_all_checks_and_each_strict_one() -> None:
    assert cascade_policies(("empty", "refusal")) == {"all": ("empty", "refusal")}
    assert cascade_policies(("empty", "schema", "extract")) == {
        "all": ("empty", "schema", "extract"), "schema": ("schema",), "extract": ("extract",)}
    assert cascade_policies(()) == {}


def test_a_cascade_below_the_bar_is_recommended_in_at_most_alpha_of_runs() -> None:
    """Served failures at 5.5% against a 5% bar: the check catches half of a 11% failure
    rate. 100 runs of 2,000 pairs; alpha 5%."""
    rng = np.random.default_rng(4)
    wins = 0
    for _ in range(100):
        pairs = _pairs(rng, 2000, bad=0.11, caught=0.5)
        result = evaluate_cascade(pairs, Checks(("refusal",)), Policy(), "small", "refusal",
                                  noise=_noise(pairs), requests_per_day=1000)
        wins += result.verdict == CASCADE
    assert wins / 100 <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 100)
