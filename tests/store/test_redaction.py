"""Redaction before storage: built-in redactors, user patterns and hooks, nested requests, and
the pipeline / transport / import paths storing nothing unredacted."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from shadowroute import Shadow, ShadowTransport, load_config
from shadowroute.errors import ConfigError
from shadowroute.offline.importer import import_file
from shadowroute.records import CandidateOutputRecord, ExchangeRecord
from shadowroute.sidecar.metrics import Metrics
from shadowroute.stats import Stats
from shadowroute.store import Store
from shadowroute.store.redaction import Redactor, luhn_ok

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"  # a Visa test number: passes Luhn
KEY = "sk-proj-Abc123Def456Ghi789Jkl0"
ALL = ("email", "card", "api_key")


def redact(text: str, *redactors: str, **kwargs: Any) -> tuple[str, dict[str, int]]:
    out, counts = Redactor(redactors or ("api_key",), **kwargs).redact_text(text)
    return out, dict(counts)


# --------------------------------------------------------------------------- built-in redactors


@pytest.mark.parametrize("secret", [
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345",
    "sk-proj-ABCDEFGHIJKLMNOPQRST1234",
    "sk-abcdefghijklmnop1234",
    "sk_live_abcdefghijklmnop1234",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "a1B2" * 9,
    "github_pat_11ABCDEFG0123456789_abcdefghij",
    "xoxb-1234567890-abcdefghij",
    "xoxp-1234567890-abcdefghij",
    "AIza" + "B" * 34 + "1",
])
def test_api_keys_are_redacted(secret: str) -> None:
    out, counts = redact(f"use {secret} please")
    assert out == "use [REDACTED:api_key] please" and counts == {"api_key": 1}


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Bearer abcdefghijklmnop1234", "Authorization: Bearer [REDACTED:api_key]"),
    ("url?api_key=9f86d081884c7d659a2feaa0c55ad015&x=1", "url?api_key=[REDACTED:api_key]&x=1"),
    ('{"token": "dGhpcyBpcyBhIHNlY3JldDEyMw=="}', '{"token": "[REDACTED:api_key]"}'),
    ("client_secret: 0123456789abcdef0123456789abcdef", "client_secret: [REDACTED:api_key]"),
])
def test_secret_values_keep_their_name(text: str, expected: str) -> None:
    assert redact(text)[0] == expected


@pytest.mark.parametrize("text", [
    "we use sk-learn and scikit",         # too short after sk-
    "task-abcdefghijklmnopqrstuvwxyz",     # not sk-
    "token: the_quick_brown_fox_jumps_over",  # no digit: a word, not a secret
    "key=short1",
    "AKIA1234",                            # too short
    "the bearer of bad news",
])
def test_api_key_near_misses_are_kept(text: str) -> None:
    assert redact(text) == (text, {})


def test_email() -> None:
    assert redact(f"mail {EMAIL}, or x+tag@mail.co.uk.", "email") == (
        "mail [REDACTED:email], or [REDACTED:email].", {"email": 2})
    for kept in ("a@b", "user@localhost", "@handle", "foo@bar.c"):
        assert redact(kept, "email") == (kept, {})


def test_card_numbers_need_luhn() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    text = "cards 4111 1111 1111 1111, 4111-1111-1111-1111, 378282246310005 and 5555555555554444"
    out, counts = redact(text, "card")
    assert out == ("cards [REDACTED:card], [REDACTED:card], [REDACTED:card] and "
                   "[REDACTED:card]") and counts == {"card": 4}
    for kept in ("4111111111111112", "order 1234567890123456", "id 123456789012", "2024-05-01"):
        assert redact(kept, "card") == (kept, {})


@pytest.mark.parametrize("phone", [
    "+1 415 555 2671", "+14155552671", "+44 20 7946 0958", "+33 (0)1 42 68 53 00",
    "(415) 555-2671", "415-555-2671", "415.555.2671",
])
def test_phone_formats(phone: str) -> None:
    assert redact(f"call {phone} now", "phone") == ("call [REDACTED:phone] now", {"phone": 1})


@pytest.mark.parametrize("kept", ["order 4155552671", "version 1.2.3", "2024-05-01", "+12 34",
                                  "room 415 555"])
def test_phone_near_misses_are_kept(kept: str) -> None:
    assert redact(kept, "phone") == (kept, {})


def test_default_is_api_keys_only() -> None:
    config = load_config(data={})
    redactor = Redactor.from_config(config.redaction)
    text = f"{EMAIL} {CARD} +1 415 555 2671 {KEY}"
    assert redactor.redact_text(text)[0] == f"{EMAIL} {CARD} +1 415 555 2671 [REDACTED:api_key]"


def test_nothing_matched_means_no_copies() -> None:
    redactor = Redactor(("email", "card", "phone", "api_key"))
    text = "nothing to see here"
    assert redactor.redact_text(text)[0] is text
    request = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    record = ExchangeRecord("t", "m", request, "ok", metadata={"user": "u1"})
    assert redactor.redact_exchange(record) == {}
    assert record.request is request and record.request["messages"] is request["messages"]


# --------------------------------------------------------------------------- patterns and hook


def test_user_patterns_and_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("redaction_hook_mod")
    module.scrub = lambda s: s.replace("Alice", "[REDACTED:name]")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "redaction_hook_mod", module)
    config = load_config(data={"redaction": {
        "redactors": [], "patterns": [{"name": "ticket", "regex": r"TCK-\d+"}],
        "hook": "redaction_hook_mod:scrub"}})
    redactor = Redactor.from_config(config.redaction)
    out, counts = redactor.redact_text(f"Alice opened TCK-42 and TCK-7 with {KEY}")
    assert out == f"[REDACTED:name] opened [REDACTED:ticket] and [REDACTED:ticket] with {KEY}"
    assert counts == {"ticket": 2, "hook": 1}


@pytest.mark.parametrize(("section", "key"), [
    ({"patterns": [{"name": "bad", "regex": "TCK-(\\d+"}]}, "redaction.patterns.0.regex"),
    ({"hook": "no_such_module_xyz:scrub"}, "redaction.hook"),
    ({"hook": "json:no_such_function"}, "redaction.hook"),
    ({"hook": "json"}, "redaction.hook"),
    ({"redactors": ["ssn"]}, "redaction.redactors.0"),
])
def test_bad_config_is_one_config_error_naming_the_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(data={"redaction": section})
    assert caught.value.key == key, str(caught.value)


def test_nested_request_structures_are_redacted_keys_kept() -> None:
    request = {
        "model": "m",
        "messages": [
            {"role": "system", "content": f"Support agent. Escalate to {EMAIL}."},
            {"role": "user", "content": [
                {"type": "text", "text": f"my card is {CARD}"},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "charge", "arguments": json.dumps({"card": CARD, "key": KEY})},
            }]},
        ],
        "system": [{"type": "text", "text": f"key {KEY}"}],  # Anthropic-style system prompt
        EMAIL: "keys are never touched",
    }
    original = json.dumps(request)
    record = ExchangeRecord("t", "m", request, f"charged {CARD}", metadata={"email": EMAIL, "n": 3})
    record.outputs.append(CandidateOutputRecord(record.id, "small", output=f"mail {EMAIL}",
                                                error=f"HTTP 401: bad key {KEY}"))
    counts = Redactor(ALL).redact_exchange(record)
    assert json.dumps(request) == original  # the caller's structure is not modified
    text = json.dumps([record.request, record.metadata, record.primary_output,
                       record.outputs[0].output, record.outputs[0].error])
    assert CARD not in text and KEY not in text and text.count(EMAIL) == 1  # the key only
    assert EMAIL in record.request
    assert json.loads(record.request["messages"][2]["tool_calls"][0]["function"]["arguments"]) == {
        "card": "[REDACTED:card]", "key": "[REDACTED:api_key]"}
    assert record.request["messages"][1]["content"][1] == request["messages"][1]["content"][1]
    assert record.metadata == {"email": "[REDACTED:email]", "n": 3}
    assert counts == {"email": 3, "card": 3, "api_key": 3}


# --------------------------------------------------------------------------- integration


def _sqlite_bytes(db_url: str) -> bytes:
    url = make_url(db_url)
    if not url.drivername.startswith("sqlite"):
        return b""
    data = b""
    for suffix in ("", "-wal", "-journal"):
        path = Path(str(url.database) + suffix)
        if path.exists():
            data += path.read_bytes()
    return data


def _secret_request() -> dict[str, Any]:
    return {"model": "frontier", "messages": [
        {"role": "system", "content": f"Internal key {KEY}"},
        {"role": "user", "content": [{"type": "text", "text": f"I am {EMAIL}, card {CARD}"}]},
    ]}


@pytest.mark.anyio
async def test_shadow_stores_nothing_unredacted(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, completion, stored,
) -> None:
    config = make_config(db_url, shadow_preset, redaction={"redactors": list(ALL)})
    small = fake_candidate("small", text=f"Sure {EMAIL}, charging {CARD}")
    request = _secret_request()
    answer = completion(f"Done, {EMAIL}; your key {KEY}")
    sent = json.dumps(request)

    async def primary() -> dict[str, Any]:
        return answer

    async with Shadow(config, providers={"small": small}) as sh:
        result = await sh.shadow(task="classify_intent", request=request, call=primary,
                                 metadata={"contact": EMAIL})
        assert result is answer
    assert result["choices"][0]["message"]["content"] == f"Done, {EMAIL}; your key {KEY}"
    assert json.dumps(request) == sent  # the caller's request is untouched
    assert json.dumps(small.requests[0]["messages"]) == json.dumps(request["messages"])

    exchanges, outputs = await stored(db_url)
    assert len(exchanges) == 1 and len(outputs) == 1
    rows = json.dumps([[e.request, e.meta, e.primary_output] for e in exchanges]
                      + [[o.output, o.error] for o in outputs])
    for original in (EMAIL, CARD, KEY, "4111111111111111"):
        assert original not in rows
        assert original.encode() not in _sqlite_bytes(db_url)
    if make_url(db_url).drivername.startswith("sqlite"):
        assert b"[REDACTED:card]" in _sqlite_bytes(db_url)  # the bytes were really read
    assert "[REDACTED:card]" in rows and exchanges[0].meta == {"contact": "[REDACTED:email]"}
    assert sh.stats.redactions == {"email": 4, "card": 2, "api_key": 2}
    assert sh.stats.redaction_errors == 0 and sh.stats.stored_exchanges == 1

    text = Metrics(sh.stats).render().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("shadowroute_redactions_total", (("redactor", "email"),))] == 4
    assert samples[("shadowroute_redaction_errors_total", ())] == 0


@pytest.mark.anyio
async def test_failing_hook_drops_the_capture_never_the_call(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, make_config, shadow_preset, completion, stored, fake_candidate
) -> None:
    module = types.ModuleType("redaction_boom_mod")

    def boom(text: str) -> str:
        raise RuntimeError(f"cannot handle {text}")

    module.boom = boom  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "redaction_boom_mod", module)
    config = make_config(db_url, shadow_preset, redaction={"redactors": list(ALL),
                                                      "hook": "redaction_boom_mod:boom"})
    errors: list[tuple[str, BaseException]] = []
    answer = completion(f"Done, {EMAIL}")

    async def primary() -> dict[str, Any]:
        return answer

    async with Shadow(config, providers={"small": fake_candidate("small")},
                      on_error=lambda stage, exc: errors.append((stage, exc))) as sh:
        for _ in range(3):
            assert await sh.shadow(task="classify_intent", request=_secret_request(),
                                   call=primary) is answer
    assert sh.stats.redaction_errors == 3 and sh.stats.stored_exchanges == 0
    assert sh.stats.spooled_exchanges == 0
    assert sh.stats.discarded == {"redaction_error": 3} and sh.stats.ledger()["pending"] == 0
    assert [stage for stage, _ in errors] == ["redaction"]  # reported once
    assert EMAIL not in str(errors[0][1]) and "redaction_boom_mod:boom" in str(errors[0][1])
    assert await stored(db_url) == ([], [])
    for original in (EMAIL, CARD, KEY):
        assert original.encode() not in _sqlite_bytes(db_url)
    assert "shadowroute_redaction_errors_total 3.0" in Metrics(sh.stats).render().decode()


@pytest.mark.anyio
async def test_authorization_header_never_reaches_the_database(
    tmp_path: Path, db_url: str, stored, completion,
) -> None:
    secret = "sk-live-header-value-0123456789"

    def upstream(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {secret}"
        return httpx.Response(200, json=completion("refund"))

    config = load_config(data={
        "database_url": db_url,
        "redaction": {"redactors": []},  # nothing to redact: the transport never keeps headers
        "tasks": {"classify_intent": {"sample_rate": 1.0}},
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
    })
    async with Shadow(config) as sh, httpx.AsyncClient(
        transport=ShadowTransport(sh, httpx.MockTransport(upstream), task="classify_intent")
    ) as client:
        response = await client.post(
            "https://api.example.test/v1/chat/completions",
            json={"model": "frontier", "messages": [{"role": "user", "content": "money back"}]},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.json()["choices"][0]["message"]["content"] == "refund"
    exchanges, _ = await stored(db_url)
    assert len(exchanges) == 1 and sh.stats.stored_exchanges == 1
    assert secret not in repr([(e.request, e.meta, e.primary_output) for e in exchanges])
    if make_url(db_url).drivername.startswith("sqlite"):
        data = _sqlite_bytes(db_url)
        assert b"money back" in data  # the file is readable as bytes: the check means something
        assert secret.encode() not in data


@pytest.mark.anyio
async def test_import_redacts_before_writing(
    tmp_path: Path, db_url: str, make_config, shadow_preset, stored, completion,
) -> None:
    path = tmp_path / "traffic.jsonl"
    path.write_text(json.dumps({"request": _secret_request(), "response": completion(f"hi {EMAIL}"),
                                "metadata": {"contact": EMAIL}}) + "\n")
    config = make_config(db_url, shadow_preset, redaction={"redactors": list(ALL)})
    async with await Store.open(db_url) as store:
        report = await import_file(config, store, path)
    assert report.imported == 1 and report.redactions == {"email": 3, "card": 1, "api_key": 1}
    exchanges, _ = await stored(db_url)
    rows = json.dumps([exchanges[0].request, exchanges[0].meta, exchanges[0].primary_output])
    assert EMAIL not in rows and CARD not in rows and KEY not in rows


def test_stats_snapshot_has_redactions() -> None:
    stats = Stats()
    stats.redactions["email"] += 2
    assert stats.snapshot()["redactions"] == {"email": 2}
    assert stats.snapshot()["redaction_errors"] == 0
