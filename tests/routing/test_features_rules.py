"""Request features and the per-request rules read from them: what a partial route sees
before the call, the same on stored pairs and on the request path."""

from __future__ import annotations

import pytest

from shadowroute.routing.features import request_features
from shadowroute.routing.rules import PartialRule


def _request(text: str, **extra: object) -> dict:
    return {"messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": text}], **extra}


def test_features_of_a_request() -> None:
    f = request_features(_request("Fix this:\n```py\ndef f(): pass\n```"))
    assert f["has_code"] == 1.0 and f["messages"] == 2.0 and f["has_numbers"] == 0.0
    assert f["chars"] == len("Be brief.\nFix this:\n```py\ndef f(): pass\n```")
    plain = request_features(_request("How many parcels arrived on the 3rd?", tools=[{}]))
    assert (plain["has_code"], plain["has_numbers"], plain["has_tools"]) == (0.0, 1.0, 1.0)
    assert plain["non_ascii"] == 0.0
    german = request_features(_request("Größe ändern"))
    assert german["non_ascii"] == pytest.approx(3 / 18)  # ö, ß, ä of 18 letters (system too)
    parts = request_features({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "abc"}, {"type": "image_url", "image_url": {"url": "x"}}]}]})
    assert parts["chars"] == 3.0


def test_declared_metadata_fields_only() -> None:
    meta = {"tier": "gold", "tokens": 420, "vip": True, "secret": "no"}
    f = request_features(_request("hi"), meta, ["tier", "tokens", "vip", "missing"])
    assert f["meta.tier=gold"] == 1.0 and f["meta.tokens"] == 420.0 and f["meta.vip"] == 1.0
    assert not any(k.startswith("meta.secret") or k.startswith("meta.missing") for k in f)


def test_a_rule_matches_reads_and_round_trips() -> None:
    rule = PartialRule.from_dict({"any_of": [[["chars", "<=", 412.0], ["has_code", "<=", 0.5]],
                                             [["meta.tier=gold", ">", 0.5]]],
                                  "fields": ["tier"]})
    assert rule.matches(request_features(_request("Where is my parcel?")))
    assert not rule.matches(request_features(_request("x" * 500)))
    assert rule.matches(request_features(_request("x" * 500), {"tier": "gold"}, rule.fields))
    assert rule.describe() == ("(chars <= 412 and has_code = no) or (tier=gold: yes)")
    assert PartialRule.from_dict(rule.to_dict()) == rule
    with pytest.raises(ValueError, match="feature, '<=' or '>', number"):
        PartialRule.from_dict({"any_of": [[["chars", "<", 4]]]})
    with pytest.raises(ValueError, match="any_of"):
        PartialRule.from_dict({"any_of": "chars <= 4"})
    assert PartialRule(()).describe() == "no request" and not PartialRule(()).matches({})
