"""A cascade or partial route against its promise: escalation creep recommends the demotion."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shadowroute.report.promoted import _creep
from shadowroute.routing.routemap import Route

PROMISE = {"promise": {"escalation_rate": 0.10, "escalation_upper": 0.14, "break_even": 0.5}}


def _route(mode: str, evidence: dict) -> Route:
    return Route(task="support", model="mini", tier="promoted", primary="big",
                 since=datetime(2026, 11, 1, tzinfo=UTC), by="ana", evidence=evidence, mode=mode)


def test_a_cascade_escalating_as_promised_holds() -> None:
    got = _creep(_route("cascade", PROMISE), {"kept": 900, "escalated:refusal": 100}, 0.05)
    assert got["reason"] is None
    assert got["observed"] == pytest.approx(0.10) and got["observed_lower"] < 0.10
    assert (got["promised"], got["break_even"]) == (0.14, 0.5)


def test_escalation_creep_past_the_promised_bound_is_named() -> None:
    got = _creep(_route("cascade", PROMISE),
                 {"kept": 700, "escalated:refusal": 250, "escalated:error": 50,
                  "bypassed:stream": 40}, 0.05)
    assert got["observed"] == pytest.approx(0.30)  # streams bypass: not in the rate
    assert got["observed_lower"] > 0.14
    assert got["reason"].startswith("escalation creep: 30.0% of 1,000 calls escalated")
    assert "above the promised 14.0%" in got["reason"]


def test_a_few_calls_over_the_promise_are_not_yet_creep() -> None:
    got = _creep(_route("cascade", PROMISE), {"kept": 8, "escalated:refusal": 2}, 0.05)
    assert got["observed"] == pytest.approx(0.2) and got["reason"] is None


def test_a_partial_route_shows_its_routed_share() -> None:
    got = _creep(_route("partial", {"promise": {"routed_share": 0.7}}),
                 {"kept": 650, "primary": 350}, 0.05)
    assert (got["observed"], got["promised"], got["reason"]) == (0.65, 0.7, None)


def test_a_plain_promotion_has_no_promise() -> None:
    assert _creep(_route("promote", {}), {}, 0.05)["observed"] is None
