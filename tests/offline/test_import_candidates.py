"""`shadowroute import` of candidate answers: ``"candidates": {"MODEL": RESPONSE}`` in each
response shape, ids that make re-imports idempotent, unknown usage, pricing, redaction, and bad
entries reported by line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from shadowroute.offline.candidates import output_id
from shadowroute.offline.importer import exchange_id, import_file
from shadowroute.records import CandidateOutputRecord, ExchangeRecord
from shadowroute.store import Store
from support.offline import chat_request, chat_response

pytestmark = pytest.mark.anyio

CLOSED = "http://127.0.0.1:9/v1"
MODELS = {
    "frontier": {"base_url": CLOSED, "input_price": 2.5, "output_price": 10},
    "small": {"base_url": CLOSED, "input_price": 0.15, "output_price": 0.6},
    "claude": {"base_url": CLOSED, "api": "anthropic", "model": "claude-x",
               "input_price": 3, "output_price": 15},
    "mini": {"base_url": CLOSED, "api": "responses", "model": "gpt-mini",
             "input_price": 0.4, "output_price": 1.6},
}


def anthropic_message(text: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "msg_1", "type": "message", "role": "assistant",
                            "model": "claude-x", "content": [{"type": "text", "text": text}],
                            "stop_reason": "end_turn"}
    if usage is not None:
        body["usage"] = usage
    return body


def responses_response(text: str, *, call: bool = False) -> dict[str, Any]:
    output: list[dict[str, Any]] = [{"type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": text}]}]
    if call:
        output.append({"type": "function_call", "call_id": "c1", "name": "track",
                       "arguments": '{"parcel": 1}'})
    return {"id": "resp_1", "object": "response", "created_at": 1714560000, "status": "completed",
            "model": "gpt-mini", "error": None, "output": output,
            "usage": {"input_tokens": 40, "output_tokens": 10, "total_tokens": 50}}


def line(i: int, candidates: Any, **extra: Any) -> dict[str, Any]:
    return {"request": chat_request(i), "response": chat_response(f"answer {i}"),
            "candidates": candidates, **extra}


@pytest.fixture
def do_import(make_config: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def do_import(db_url: str, path: Path, models: Any = MODELS, **config: Any) -> Any:
        settings = make_config(db_url, models=models, **config)
        async with await Store.open(db_url) as store:
            return await import_file(settings, store, path)

    return do_import


def outputs_by_model(outputs: list[Any]) -> dict[str, Any]:
    return {o.model: o for o in outputs}


async def test_each_response_shape_becomes_a_priced_candidate_output(
    tmp_path: Path, db_url: str, write_jsonl, do_import, stored,
) -> None:
    candidates = {
        "small": chat_response("small says 1", model="small-2024"),
        "claude": anthropic_message("claude says 1", {"input_tokens": 20, "output_tokens": 4}),
        "mini": responses_response("mini says 1", call=True),
        "tiny": "tiny says 1",  # plain text, and a model not declared under [models]
        "primary@replay": chat_response("answer 1 again"),
    }
    path = write_jsonl(tmp_path / "t.jsonl", [line(1, candidates, task="track")])
    report = await do_import(db_url, path)
    assert (report.imported, report.bad, report.outputs) == (1, 0, 5), report.summary()
    assert dict(report.models) == {m: 1 for m in candidates}
    assert dict(report.undeclared) == {"tiny": 1} and report.unknown_usage == 1

    (exchange,), outputs = await stored(db_url)
    assert exchange.id == exchange_id({k: v for k, v in line(1, candidates).items()
                                       if k != "candidates"} | {"task": "track"})
    assert exchange.primary_output == "answer 1" and exchange.task_type == "track"
    got = outputs_by_model(outputs)
    assert set(got) == set(candidates)
    for model, output in got.items():
        assert output.id == output_id(exchange.id, model)
        assert output.exchange_id == exchange.id and output.error_kind is None
        assert output.created_at == exchange.created_at
    small = got["small"]
    assert small.output == "small says 1" and (small.input_tokens, small.output_tokens) == (12, 3)
    assert small.cost_usd == pytest.approx((12 * 0.15 + 3 * 0.6) / 1e6)
    claude = got["claude"]
    assert claude.output == "claude says 1" and (claude.input_tokens, claude.output_tokens) == (20, 4)
    assert claude.cost_usd == pytest.approx((20 * 3 + 4 * 15) / 1e6)
    mini = got["mini"]  # the Responses API answer, its tool call kept as a call
    assert mini.output == ('{"content":"mini says 1","tool_calls":[{"name":"track",'
                           '"arguments":{"parcel":1}}]}')
    assert (mini.input_tokens, mini.output_tokens) == (40, 10)
    assert mini.cost_usd == pytest.approx((40 * 0.4 + 10 * 1.6) / 1e6)
    tiny = got["tiny"]  # text: no usage, so tokens and cost are unknown, not 0
    assert tiny.output == "tiny says 1"
    assert (tiny.input_tokens, tiny.output_tokens, tiny.cost_usd) == (None, None, None)
    replay = got["primary@replay"]  # priced as the exchange's primary
    assert replay.cost_usd == pytest.approx((12 * 2.5 + 3 * 10) / 1e6)

    summary = report.summary()
    assert summary[1] == ("stored 5 candidate outputs (claude: 1, mini: 1, primary@replay: 1, "
                          "small: 1, tiny: 1)")
    assert any(s.startswith("1 candidate outputs report no usage") for s in summary)
    assert any(s.startswith("not declared under [models]: tiny (1); stored without cost")
               for s in summary)


async def test_unknown_usage_stays_unknown(
    tmp_path: Path, db_url: str, write_jsonl, do_import, stored,
) -> None:
    no_usage = chat_response("small says 2")
    del no_usage["usage"]
    lines = [
        # The primary's answer as plain text, Anthropic without usage, OpenAI without usage.
        {"request": chat_request(2), "response": "answer 2",
         "candidates": {"small": no_usage, "claude": anthropic_message("claude says 2")}},
        # A declared model's answer with usage, under an undeclared name: tokens but no cost.
        line(3, {"stranger": chat_response("stranger says 3")}),
    ]
    report = await do_import(db_url, write_jsonl(tmp_path / "t.jsonl", lines))
    assert (report.imported, report.outputs, report.unknown_usage) == (2, 3, 2)
    exchanges, outputs = await stored(db_url)
    by_text = {x.primary_output: x for x in exchanges}
    text = by_text["answer 2"]
    assert (text.input_tokens, text.output_tokens, text.cost_usd) == (None, None, None)
    got = outputs_by_model(outputs)
    for model in ("small", "claude"):
        assert (got[model].input_tokens, got[model].output_tokens, got[model].cost_usd) == (
            None, None, None), model
    assert got["claude"].output == "claude says 2"
    stranger = got["stranger"]
    assert (stranger.input_tokens, stranger.output_tokens, stranger.cost_usd) == (12, 3, None)
    assert dict(report.undeclared) == {"stranger": 1}


async def test_an_anthropic_primary_without_usage_has_unknown_tokens(
    tmp_path: Path, db_url: str, write_jsonl, do_import, stored,
) -> None:
    anthropic = {"request": {"model": "claude-x", "max_tokens": 50,
                             "messages": [{"role": "user", "content": "Hi"}]},
                 "response": anthropic_message("Hello!"), "candidates": {"small": "Hi there"}}
    report = await do_import(db_url, write_jsonl(tmp_path / "a.jsonl", [anthropic]))
    assert (report.imported, report.outputs) == (1, 1)
    (exchange,), _ = await stored(db_url)
    assert (exchange.input_tokens, exchange.output_tokens, exchange.cost_usd) == (None, None, None)


async def test_reimport_is_idempotent_and_adds_new_candidates(
    tmp_path: Path, db_url: str, write_jsonl, do_import, stored, chat_line,
) -> None:
    first = [line(i, {"small": f"small {i}"}) for i in range(4)] + [chat_line(9)]
    report = await do_import(db_url, write_jsonl(tmp_path / "1.jsonl", first))
    assert (report.imported, report.outputs) == (5, 4)

    again = await do_import(db_url, write_jsonl(tmp_path / "1.jsonl", first))
    assert (again.imported, again.already_stored, again.outputs, again.outputs_already_stored) == (
        0, 5, 0, 4)
    assert again.summary()[1] == "stored 0 candidate outputs; 4 were stored already"

    # The same lines with one more candidate (and the first answer changed: the stored one
    # stays), a line without candidates that now has one, and a repeat within the file.
    more = [line(i, {"small": "changed", "claude": f"claude {i}"}) for i in range(4)]
    more += [chat_line(9, candidates={"small": "small 9"}), line(0, {"mini": "mini 0"})]
    report = await do_import(db_url, write_jsonl(tmp_path / "2.jsonl", more))
    assert (report.imported, report.already_stored) == (0, 6)
    assert dict(report.models) == {"claude": 4, "small": 1, "mini": 1}
    assert report.outputs_already_stored == 4

    exchanges, outputs = await stored(db_url)
    assert len(exchanges) == 5 and len(outputs) == 10
    assert {o.output for o in outputs if o.model == "small"} == {f"small {i}" for i in (0, 1, 2, 3, 9)}
    assert all(o.id == output_id(o.exchange_id, o.model) for o in outputs)


async def test_an_output_stored_by_replay_is_not_imported_twice(
    tmp_path: Path, db_url: str, write_jsonl, do_import, stored, chat_line,
) -> None:
    plain = chat_line(1)
    await do_import(db_url, write_jsonl(tmp_path / "1.jsonl", [plain]))
    id_ = exchange_id(plain)
    async with await Store.open(db_url) as store:  # as `shadowroute replay` stores one: random id
        await store.write([ExchangeRecord("default", "frontier", chat_request(1), "answer 1",
                                          id=id_, outputs=[CandidateOutputRecord(
                                              id_, "small", output="replayed")])])
    report = await do_import(db_url, write_jsonl(tmp_path / "2.jsonl", [
        chat_line(1, candidates={"small": "imported", "claude": "claude"})]))
    assert (report.outputs, report.outputs_already_stored) == (1, 1)
    _, outputs = await stored(db_url)
    assert {o.model: o.output for o in outputs} == {"small": "replayed", "claude": "claude"}


async def test_redaction_applies_to_candidate_outputs(
    tmp_path: Path, db_url: str, write_jsonl, do_import, stored, stored_text,
) -> None:
    secret = "sk-proj-abcdefghijklmnopqrstuvwx"
    lines = [line(1, {"small": f"mail bob@example.com, key {secret}",
                      "claude": anthropic_message("write to alice@example.org",
                                                  {"input_tokens": 1, "output_tokens": 1})})]
    report = await do_import(db_url, write_jsonl(tmp_path / "t.jsonl", lines),
                             redaction={"redactors": ["api_key", "email"]})
    assert report.outputs == 2 and report.redactions == {"email": 2, "api_key": 1}
    _, outputs = await stored(db_url)
    got = outputs_by_model(outputs)
    assert got["small"].output == "mail [REDACTED:email], key [REDACTED:api_key]"
    assert got["claude"].output == "write to [REDACTED:email]"
    text = await stored_text(db_url)
    assert "bob@example.com" not in text and secret not in text and "alice@" not in text


async def test_bad_candidate_entries_are_bad_lines_with_the_reason(
    tmp_path: Path, db_url: str, write_jsonl, do_import, stored,
) -> None:
    bad_usage = chat_response("x")
    bad_usage["usage"]["prompt_tokens"] = "many"
    negative = chat_response("x")
    negative["usage"]["completion_tokens"] = -3
    failed = responses_response("x") | {"status": "failed",
                                        "error": {"code": "server_error", "message": "boom"}}
    lines: list[Any] = [
        line(1, {"small": "fine"}),
        line(2, ["small", "fine"]),
        line(3, {"": "empty name"}),
        line(4, {"small": {"error": {"code": "rate_limit", "message": "slow down"}}}),
        line(5, {"small": 42}),
        line(6, {"small": {"id": "x"}}),
        line(7, {"frontier": "the primary again"}),
        line(8, {"small": bad_usage}),
        line(9, {"mini": failed}),
        line(10, {"claude": {"type": "message", "content": "not a list"}}),
        line(11, {"small": "fine", "odd name": None}),
        line(12, {"small": negative}),
    ]
    report = await do_import(db_url, write_jsonl(tmp_path / "t.jsonl", lines))
    assert (report.imported, report.outputs, report.bad) == (1, 1, 11)
    assert [str(b) for b in report.bad_lines] == [
        "line 2: candidates: expected an object of model name -> response, got an array",
        "line 3: candidates: a model name is empty",
        "line 4: candidates.small is an error response: rate_limit: slow down",
        "line 5: candidates.small: expected a response object or the answer's text, got a number",
        "line 6: candidates.small.choices: Field required",
        ("line 7: candidates.frontier: frontier is the primary of this exchange; a second "
         "answer of the primary goes under 'primary@replay' (its noise floor)"),
        "line 8: candidates.small: usage.prompt_tokens is 'many', expected a token count",
        "line 9: candidates.mini is an error response: server_error: boom",
        "line 10: candidates.claude.content: Input should be a valid list",
        ('line 11: candidates["odd name"]: expected a response object or the answer\'s text, '
         "got null"),
        "line 12: candidates.small: usage holds a negative token count (-3)",
    ]
    exchanges, outputs = await stored(db_url)  # a bad line is stored neither whole nor in part
    assert [x.primary_output for x in exchanges] == ["answer 1"] and len(outputs) == 1


def test_cli_prints_the_candidate_outputs_and_what_is_next(
    tmp_path: Path, write_jsonl, cli,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    path = write_jsonl(tmp_path / "t.jsonl", [line(i, {"small": f"small {i}"}) for i in range(3)])
    result = cli("import", str(path), "--database-url", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0].startswith("imported 3 exchanges (default: 3), 0 bad lines")
    assert out[1] == "stored 3 candidate outputs (small: 3)"
    assert out[2] == "3 candidate outputs report no usage: their tokens and cost are unknown " \
                     "(left empty, not 0)"
    assert out[3].startswith("not declared under [models]: small (3)")
    assert out[-1] == "next: `shadowroute score`, then `shadowroute report`"
