"""`shadowroute import`: chat pairs and Batch API output, bad lines, idempotent re-import."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shadowroute.errors import ConfigError
from shadowroute.offline.importer import MAX_LISTED, exchange_id, import_file
from shadowroute.store import CandidateOutput, Exchange, Store, TrafficDaily
from support.offline import chat_request, chat_response

pytestmark = pytest.mark.anyio

MODELS = {
    "frontier": {"base_url": "http://127.0.0.1:9/v1", "input_price": 2.5, "output_price": 10},
    "claude": {"base_url": "http://127.0.0.1:9", "api": "anthropic", "model": "claude-x",
               "input_price": 3, "output_price": 15},
}


async def count(url: str, table: Any) -> int:
    async with await Store.open(url) as store, store.session() as session:
        return int(await session.scalar(select(func.count()).select_from(table)))


@pytest.fixture
def do_import(make_config: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """``import_file`` into the database at a URL, with the models of the logged traffic."""

    async def do_import(db_url: str, path: Path, **kwargs: Any) -> Any:
        async with await Store.open(db_url) as store:
            return await import_file(make_config(db_url, models=MODELS), store, path, **kwargs)

    return do_import


async def test_chat_lines_good_and_bad(
    tmp_path: Path, db_url: str, chat_line, do_import, write_jsonl, stored,
) -> None:
    lines: list[Any] = [
        chat_line(1, task="classify_intent", latency_ms=812.5, metadata={"user": "u1"},
                  created_at="2024-05-01T12:00:00Z"),
        "{not json",
        chat_line(2),
        "[1, 2, 3]",
        "",  # blank lines are neither exchanges nor bad
        {"request": chat_request(3), "response": {"id": "x", "model": "frontier"}},
        {"request": {"messages": []}, "response": chat_response("x")},
        {"response": chat_response("x")},
        {"request": chat_request(4), "response": {"error": {"code": "rate_limit", "message": "slow down"}}},
        chat_line(5, metadata={"task": "from_metadata"}),
        chat_line(6, latency_ms=-1),
    ]
    report = await do_import(db_url, write_jsonl(tmp_path / "traffic.jsonl", lines))

    assert report.format == "chat" and report.imported == 3 and report.bad == 7
    assert [str(b) for b in report.bad_lines] == [
        "line 2: invalid JSON: Expecting property name enclosed in double quotes (column 2)",
        "line 4: expected a JSON object, got an array",
        "line 6: response.choices: Field required",
        "line 7: request.model: Field required (and 1 more problem)",
        "line 8: request: Field required",
        "line 9: response is an error response: rate_limit: slow down",
        "line 11: latency_ms: Input should be greater than or equal to 0",
    ]
    exchanges = {x.primary_output: x for x in (await stored(db_url))[0]}
    assert set(exchanges) == {"answer 1", "answer 2", "answer 5"}
    first = exchanges["answer 1"]
    assert first.task_type == "classify_intent" and first.primary_model == "frontier"
    assert first.route == "shadow"
    assert {x.source for x in exchanges.values()} == {"import:traffic.jsonl"}
    assert (first.input_tokens, first.output_tokens) == (12, 3)
    assert first.cost_usd == pytest.approx((12 * 2.5 + 3 * 10) / 1e6)
    assert first.latency_ms == 812.5 and first.meta == {"user": "u1"}
    assert first.created_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert first.request == chat_request(1)
    assert first.id == exchange_id(lines[0])
    assert exchanges["answer 2"].task_type == "default"
    assert exchanges["answer 5"].task_type == "from_metadata"
    assert await count(db_url, CandidateOutput) == 0
    assert await count(db_url, TrafficDaily) == 0  # volume comes from the exchanges


async def test_task_option_wins_and_anthropic_pairs(
    tmp_path: Path, db_url: str, write_jsonl, do_import, chat_line, stored,
) -> None:
    anthropic = {
        "request": {"model": "claude-x", "max_tokens": 100, "system": "Be brief.",
                    "messages": [{"role": "user", "content": "Hi"}], "stream": True},
        "response": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                     "content": [{"type": "text", "text": "Hello!"}], "stop_reason": "end_turn",
                     "usage": {"input_tokens": 20, "output_tokens": 4}},
        "task": "greet",
    }
    path = write_jsonl(tmp_path / "a.jsonl", [anthropic, chat_line(1, task="other")])
    report = await do_import(db_url, path, task="forced")
    assert report.imported == 2 and report.bad == 0 and dict(report.tasks) == {"forced": 2}
    exchanges = {x.primary_output: x for x in (await stored(db_url))[0]}
    claude = exchanges["Hello!"]
    assert claude.task_type == "forced" and claude.primary_model == "claude-x"
    assert claude.request["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "stream" not in claude.request
    assert (claude.input_tokens, claude.output_tokens) == (20, 4)
    assert claude.cost_usd == pytest.approx((20 * 3 + 4 * 15) / 1e6)


async def test_reimport_stores_nothing_twice(
    tmp_path: Path, db_url: str, write_jsonl, do_import, chat_line,
) -> None:
    lines = [chat_line(i) for i in range(7)] + [chat_line(3)]  # a repeat in the file too
    path = write_jsonl(tmp_path / "t.jsonl", lines)
    first = await do_import(db_url, path, batch_rows=3)  # several batches
    assert (first.imported, first.already_stored, first.bad) == (7, 1, 0)
    # Same content, other spacing and key order: the same exchanges.
    again = tmp_path / "again.jsonl"
    again.write_text("".join(json.dumps(line, indent=None, sort_keys=True, separators=(", ", ": "))
                             + "\n" for line in reversed(lines)))
    second = await do_import(db_url, again, batch_rows=3)
    assert (second.imported, second.already_stored) == (0, 8)
    assert "already stored" in second.summary()[1]
    assert await count(db_url, Exchange) == 7


def batch_output(custom_id: str, text: str, status: int = 200, **extra: Any) -> dict[str, Any]:
    body = chat_response(text) if status == 200 else {"error": {"message": "upstream exploded",
                                                           "type": "server_error"}}
    return {"id": f"batch_req_{custom_id}", "custom_id": custom_id,
            "response": {"status_code": status, "request_id": f"req_{custom_id}", "body": body},
            "error": None, **extra}


def batch_input(custom_id: str, i: int, url: str = "/v1/chat/completions") -> dict[str, Any]:
    body = chat_request(i)
    if i == 2:
        body["metadata"] = {"task": "refunds"}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


async def test_batch_output_joined_with_its_requests(
    tmp_path: Path, db_url: str, write_jsonl, do_import, stored,
) -> None:
    requests = write_jsonl(tmp_path / "input.jsonl", [
        batch_input("r1", 1), batch_input("r2", 2), batch_input("r3", 3), "garbage",
        batch_input("emb", 4, url="/v1/embeddings"), {"custom_id": "nobody", "url": "/v1/chat/completions"},
    ])
    output = write_jsonl(tmp_path / "output.jsonl", [
        batch_output("r2", "two"),
        batch_output("r1", "one"),
        batch_output("r3", "three", status=500),
        {"id": "batch_req_x", "custom_id": "r3", "response": None,
         "error": {"code": "batch_expired", "message": "This request could not be executed"}},
        batch_output("missing", "?"),
        batch_output("emb", "?"),
        batch_output("nobody", "?"),
        {"id": "batch_req_y", "custom_id": "r1"},
    ])
    report = await do_import(db_url, output, requests=requests)
    assert report.format == "batch" and report.imported == 2 and report.bad == 6
    reasons = [str(b) for b in report.bad_lines]
    assert reasons == [
        "line 3: custom_id 'r3': HTTP 500: server_error: upstream exploded",
        "line 4: custom_id 'r3': the request failed: batch_expired: This request could not be executed",
        "line 5: custom_id 'missing' is not in the requests file input.jsonl",
        "line 6: custom_id 'emb': its request (line 5 of input.jsonl) is a /v1/embeddings call; "
        "only /v1/chat/completions calls can be imported",
        "line 7: custom_id 'nobody': its request (line 6 of input.jsonl) is invalid: body: Field required",
        "line 8: custom_id 'r1': no response and no error",
    ]
    exchanges = {x.primary_output: x for x in (await stored(db_url))[0]}
    assert set(exchanges) == {"one", "two"}
    assert exchanges["one"].request == chat_request(1) and exchanges["one"].task_type == "default"
    assert exchanges["two"].task_type == "refunds"  # from the request's metadata
    assert exchanges["one"].meta == {"custom_id": "r1", "request_id": "req_r1"}
    assert exchanges["one"].cost_usd == pytest.approx((12 * 2.5 + 3 * 10) / 1e6)
    again = await do_import(db_url, output, requests=requests, task="ignored")
    assert (again.imported, again.already_stored) == (0, 2)


async def test_options_that_do_not_fit_the_file(
    tmp_path: Path, db_url: str, write_jsonl, do_import, chat_line,
) -> None:
    output = write_jsonl(tmp_path / "output.jsonl", [batch_output("r1", "one")])
    with pytest.raises(ConfigError, match="--requests: output.jsonl is OpenAI Batch API output"):
        await do_import(db_url, output)
    chat = write_jsonl(tmp_path / "chat.jsonl", [chat_line(1)])
    with pytest.raises(ConfigError, match="leave --requests out"):
        await do_import(db_url, chat, requests=output)
    with pytest.raises(ConfigError, match="nope.jsonl: --requests: file not found"):
        await do_import(db_url, output, requests=tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="missing.jsonl: file not found"):
        await do_import(db_url, tmp_path / "missing.jsonl")
    # --format chat on batch output: every line is bad, with the reason.
    report = await do_import(db_url, output, fmt="chat")
    assert report.imported == 0 and str(report.bad_lines[0]) == "line 1: request: Field required"


def test_cli_exit_codes_and_messages(tmp_path: Path, write_jsonl, cli, chat_line) -> None:
    from typer.testing import CliRunner

    from shadowroute.cli import app

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    good = write_jsonl(tmp_path / "good.jsonl", [chat_line(i) for i in range(3)])
    result = CliRunner().invoke(app, ["import", str(good), "--task", "classify_intent",
                                      "--database-url", url])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("imported 3 exchanges (classify_intent: 3), 0 bad lines")

    bad = write_jsonl(tmp_path / "bad.jsonl", [chat_line(10)] + ["nope"] * (MAX_LISTED + 5))
    result = CliRunner().invoke(app, ["import", str(bad), "--database-url", url])
    assert result.exit_code == 1, result.output
    out = result.stdout.splitlines()
    assert out[0].startswith(f"imported 1 exchanges (default: 1), {MAX_LISTED + 5} bad lines")
    assert out[1].startswith("line 2: invalid JSON") and out[MAX_LISTED].startswith("line 21:")
    assert out[MAX_LISTED + 1] == "... and 5 more"

    # The real entry point: a file that cannot be read is one line on stderr, exit code 2.
    result = cli("import", "missing.jsonl", "--database-url", url, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: missing.jsonl: file not found"
