"""The command line: one clear line for bad input, the demo end to end, db upgrade.

Commands run in-process (the ``cli`` fixture: ``shadowroute.cli.main`` under click's
``CliRunner`` isolation); ``db upgrade`` runs the installed ``shadowroute`` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from shadowroute.records import utcnow
from shadowroute.store import Store


@pytest.mark.parametrize(
    "toml, expected",
    [
        ("[tasks.x]\nsample_rate = 2\n", "bad.toml: tasks.x.sample_rate: Input should be less than or equal to 1"),
        ('[tasks.x]\ncandidates = ["nope"]\n', "unknown model 'nope'"),
        ("[modles.x]\n", "bad.toml: modles: unknown key"),
        ('[models.x]\nbase_url = "ftp://x"\n', "bad.toml: models.x.base_url: must start with http"),
        ("x = [\n", "bad.toml: invalid TOML"),
        ('[models.x]\nbase_url = "http://h"\n[tasks.t]\ncandidates = ["x"]\njson_schema = "missing.json"\n',
         "bad.toml: tasks.t.json_schema: JSON schema file"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, toml: str, expected: str, cli) -> None:
    (tmp_path / "bad.toml").write_text(toml)
    result = cli("config", "check", "--config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_config_file(tmp_path: Path, cli) -> None:
    result = cli("config", "check", "--config", "nope.toml", cwd=tmp_path)
    assert result.returncode == 2 and "nope.toml: config file not found" in result.stderr


def test_unreachable_database_is_one_line(tmp_path: Path, cli) -> None:
    result = cli("db", "upgrade", "--database-url", "postgresql+psycopg://postgres:hunter2@127.0.0.1:1/x", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    """The one test of the installed entry point in a process of its own (the others run the
    same ``main()`` in-process, through the ``cli`` fixture)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'up.db'}"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("shadowroute")), "db", "upgrade", "--database-url", url],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert "database at head" in result.stdout

    async def tables() -> dict:
        async with await Store.open(url, auto_migrate=False) as store:
            return await store.counts()

    assert anyio.run(tables)["exchanges"] == 0


def test_demo_runs_end_to_end_and_stores_pairs(tmp_path: Path, cli) -> None:
    result = cli("demo", cwd=tmp_path)  # the defaults, as `make demo` runs it
    assert result.returncode == 0, result.stderr
    assert "production calls" in result.stdout
    database = tmp_path / "shadowroute-demo.db"
    assert database.exists()

    async def counts() -> dict:
        async with await Store.open(f"sqlite+aiosqlite:///{database}") as store:
            return await store.counts()

    stored = anyio.run(counts)
    assert set(stored["tasks"]) == {"classify_intent", "extract_order", "summarize_ticket", "sentiment",
                                    "lookup_order"}
    # 2,150 calls on the primary and 215 tool-calling ones (Responses API), then 300 through
    # the Router after the promotions.
    assert sum(t["requests"] for t in stored["traffic"].values()) == 2150 + 215 + 300
    assert stored["exchanges"] > 0 and stored["outputs"] >= stored["exchanges"]
    summary = cli("summary", "--database-url", f"sqlite+aiosqlite:///{database}", cwd=tmp_path)
    assert summary.returncode == 0 and "classify_intent" in summary.stdout

    async def scores() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Scores per scorer, scored outputs per task type, reverse-shadow outputs per model."""
        from sqlalchemy import distinct, func, select

        from shadowroute.store import CandidateOutput, Exchange
        from shadowroute.store.models import Score

        async with await Store.open(f"sqlite+aiosqlite:///{database}") as store:
            async with store.session() as s:
                rows = await s.execute(select(Score.scorer, func.count()).group_by(Score.scorer))
                scored = await s.execute(
                    select(Exchange.task_type, func.count(distinct(Score.output_id)))
                    .join(CandidateOutput, CandidateOutput.id == Score.output_id)
                    .join(Exchange, Exchange.id == CandidateOutput.exchange_id)
                    .group_by(Exchange.task_type))
                reverse = await s.execute(
                    select(CandidateOutput.model, func.count())
                    .join(Exchange, Exchange.id == CandidateOutput.exchange_id)
                    .where(Exchange.route == "reverse").group_by(CandidateOutput.model))
                return dict(rows.all()), dict(scored.all()), dict(reverse.all())

    # The demo scored what it captured before the promotions: its task's scores, judge included.
    by_scorer, scored, reverse = anyio.run(scores)
    assert "judge:" in result.stdout and "passed/scored" in result.stdout
    first_night = int(re.search(r"^scored ([\d,]+) outputs", result.stdout, re.M)[1].replace(",", ""))
    second_night = int(re.search(r"second night: scored ([\d,]+) more outputs",
                                 result.stdout)[1].replace(",", ""))
    assert first_night > 0 and second_night > 0
    assert first_night + second_night == sum(scored.values())
    # classify_intent: label only; lookup_order: similarity only (tool calls compared as calls)
    assert by_scorer["judge"] == (sum(scored.values()) - scored["classify_intent"]
                                  - scored["lookup_order"])
    assert by_scorer["label"] == scored["classify_intent"] + scored["sentiment"]
    assert {"label", "schema", "similarity"} <= set(by_scorer)

    # ... and ended the first night with the report: a mix of verdicts that follows from the
    # simulated quality.
    html = tmp_path / "reports" / f"shadowroute-{utcnow():%Y-%m-%d}-night-1.html"
    assert html.exists() and f"report of the first night: reports/{html.name}" in result.stdout
    twin = json.loads(html.with_suffix(".json").read_text())
    verdicts = {(t["task"], c["model"]): c["verdict"] for t in twin["tasks"] for c in t["candidates"]}
    assert verdicts[("classify_intent", "claude-small")] == "PROMOTE"  # 97% accurate, like the primary
    assert verdicts[("classify_intent", "small")] == "PROMOTE"  # 96%: within the 5-point margin
    assert verdicts[("classify_intent", "tiny")] == "HOLD"  # 85% accurate
    assert verdicts[("sentiment", "tiny")] == "HOLD"  # 88% accurate: too many wrong labels...
    assert {"PROMOTE", "HOLD", "NEED MORE DATA"} <= set(verdicts.values())
    # ... but it says "I don't know." instead of most of them: a cascade takes the task type.
    actions = {a["task"]: a for a in twin["actions"]}
    assert actions["sentiment"]["action"] == "CASCADE"
    assert actions["sentiment"]["command"] == "shadowroute promote sentiment --to tiny --cascade all"
    sentiment = next(t for t in twin["tasks"] if t["task"] == "sentiment")
    cascade = next(c for c in sentiment["candidates"] if c["model"] == "tiny")["cascades"]["all"]
    assert cascade["verdict"] == "CASCADE" and set(cascade["escalations"]) == {"refusal"}
    assert cascade["monthly_savings"] > 0
    # Of the two that can take over, the report recommends the one that saves more.
    assert "shadowroute promote classify_intent --to small" in html.read_text()
    # The calls streamed without usage: the report says what share of the cost it measured.
    assert "Primary cost measured on" in html.read_text()
    lookup = next(t for t in twin["tasks"] if t["task"] == "lookup_order")
    # Responses API streams always report usage; its answers are tool calls, scored as calls.
    assert (lookup["exchanges"], lookup["primary_costed"]) == (215, 215)
    assert {c["verdict"] for c in lookup["candidates"]} <= {"PROMOTE", "HOLD", "NEED MORE DATA"}
    assert any('"tool_calls"' in (e["candidate"] or "") for c in lookup["candidates"]
               for e in c["examples"])

    # ... then promoted what the report allowed, and routed the next calls by the new map.
    assert "ran: shadowroute promote classify_intent --to small" in result.stdout
    assert "ran: shadowroute promote sentiment --to tiny --cascade all" in result.stdout
    # The second night's report sets the escalations the Router saw against the promise.
    observed = re.search(r"sentiment as a cascade on tiny: ([\d.]+)% of ([\d,]+) routed calls "
                         r"escalated to frontier \(promised at most ([\d.]+)%", result.stdout)
    assert observed is not None and int(observed[2].replace(",", "")) > 0
    assert "monthly cost at this volume (calls only): before $" in result.stdout
    assert "classify_intent -> small:" in result.stdout
    assert "extract_order -> frontier:" in result.stdout
    routes = (tmp_path / "shadowroute-demo-routes.yaml").read_text()
    assert "classify_intent:" in routes and "model: small" in routes
    # The reverse shadow: small's production answers against frontier's reference.
    assert reverse["small"] > 0
    reproduce_the_demo_from_the_shell(result.stdout, tmp_path, cli)
    nightly_on_a_copy_of_the_demo(database, tmp_path)

    # Without the demo's config the default scorer (similarity at 0.8) applies: the CLI scores
    # the outputs the demo did not already score with it (extract_order's and lookup_order's
    # use the same version), and a second run finds nothing left to do.
    url = f"sqlite+aiosqlite:///{database}"
    first = cli("score", "--database-url", url, cwd=tmp_path, env={"SHADOWROUTE_CONFIG": ""})
    assert first.returncode == 0, first.stderr
    todo = stored["outputs"] - scored["extract_order"] - scored["lookup_order"]
    assert f"scored {todo:,} outputs ({todo:,} scores)" in first.stdout
    again = cli("score", "--database-url", url, cwd=tmp_path, env={"SHADOWROUTE_CONFIG": ""})
    assert again.returncode == 0, again.stderr
    assert "scored 0 outputs" in again.stdout


def reproduce_the_demo_from_the_shell(stdout: str, tmp_path: Path, cli) -> None:
    """The demo ends with the commands that look at its store again: they run from the shell
    as printed, and `report` decides exactly what the demo's last report decided."""
    final = tmp_path / "reports" / f"shadowroute-{utcnow():%Y-%m-%d}.html"
    assert f"report: reports/{final.name}" in stdout
    assert "second night: scored " in stdout

    def verdicts(twin: dict) -> dict:
        return ({(t["task"], c["model"]): (c["verdict"], c["n"], c["passed"])
                 for t in twin["tasks"] for c in t["candidates"]},
                {p["task"]: (p["model"], p["verdict"]) for p in twin["promoted"]})

    demo = verdicts(json.loads(final.with_suffix(".json").read_text()))
    commands = [line.strip() for line in stdout.splitlines()
                if line.strip().startswith("shadowroute ") and "--config" in line]
    assert [c.split()[1] for c in commands] == ["report", "summary", "routes"]
    assert all(c.endswith("--config shadowroute-demo.toml") for c in commands)
    final.unlink()  # written again by the command, from the store alone
    ran = {}
    for command in commands:
        ran[command.split()[1]] = cli(*command.split()[1:], cwd=tmp_path,
                                      env={"SHADOWROUTE_CONFIG": "", "COLUMNS": "200"})
        assert ran[command.split()[1]].returncode == 0, ran[command.split()[1]].stderr
    assert verdicts(json.loads(final.with_suffix(".json").read_text())) == demo
    assert demo[1]["classify_intent"][0] == "small"  # the promotion is in the reproduced report
    assert "classify_intent" in ran["summary"].stdout
    assert "classify_intent" in ran["routes"].stdout and "small" in ran["routes"].stdout
    assert "config shadowroute-demo.toml" in final.read_text()  # not "<dict>"


def nightly_on_a_copy_of_the_demo(database: Path, tmp_path: Path) -> None:
    """`nightly` on the demo's data as its first nightly run (the demo's own reports removed):
    the dated report, the index and latest.html, one webhook POST per change; a second run on
    the same data posts nothing."""
    import os
    import shutil

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from shadowroute.cli.demo import demo_config
    from shadowroute.ops import run_nightly
    from shadowroute.serving import BackgroundServer

    copy = tmp_path / "nightly" / "demo-copy.db"
    copy.parent.mkdir()
    shutil.copyfile(database, copy)
    config = demo_config("http://127.0.0.1:9", copy)
    config = config.model_copy(update={"notify": config.notify.model_copy(
        update={"webhook_url_env": "SR_TEST_DEMO_WEBHOOK", "retries": 0})})
    posts: list[dict] = []

    async def hook(request: Request) -> JSONResponse:
        posts.append(await request.json())
        return JSONResponse({})

    async def nightly_twice() -> tuple:
        async with await Store.open(config.database_url) as store, store.engine.begin() as conn:
            from sqlalchemy import text
            await conn.execute(text("DELETE FROM decisions"))
            await conn.execute(text("DELETE FROM reports"))
        out = tmp_path / "nightly" / "reports"
        return (await run_nightly(config, out, since=None),
                await run_nightly(config, out, since=None))

    with BackgroundServer(Starlette(routes=[Route("/", hook, methods=["POST"])])) as server:
        os.environ["SR_TEST_DEMO_WEBHOOK"] = server.base_url + "/"
        try:
            first, second = anyio.run(nightly_twice)
        finally:
            del os.environ["SR_TEST_DEMO_WEBHOOK"]
    out = tmp_path / "nightly" / "reports"
    print(first.summary(), second.summary(), sep="\n")
    assert first.html is not None and first.html.exists() and first.html.parent == out
    assert (out / "index.html").exists() and (out / "latest.html").exists()
    kinds = [(c.kind, c.task, c.model) for c in first.changes]
    assert ("new PROMOTE", "classify_intent", "small") in kinds
    assert len(posts) == len(first.changes) == first.notified.sent  # one POST per change
    assert {p["change"]["task"] for p in posts} == {c.task for c in first.changes}
    assert second.changes == [] and len(posts) == len(first.changes)  # nothing new: no POST


def test_an_error_naming_a_config_table_keeps_its_brackets(tmp_path: Path, cli) -> None:
    """Error text is printed as it is: "[models]" is not taken for terminal markup."""
    result = cli("promote", "classify_intent", "--to", "nope", "--database-url",
                 f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: <defaults>: cannot promote to 'nope': it is not declared under [models] "
        "(models: none declared); the router needs its base URL"
    )


def test_promote_without_evidence_is_refused_in_one_line(tmp_path: Path, cli) -> None:
    toml = tmp_path / "shadowroute.toml"
    toml.write_text('[models.small]\nbase_url = "http://127.0.0.1:9/v1"\n'
                    '[tasks.classify_intent]\ncandidates = ["small"]\n')
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert cli("db", "upgrade", "--database-url", url, cwd=tmp_path).returncode == 0
    refused = cli("promote", "classify_intent", "--to", "small", "--database-url", url,
                  "--config", str(toml), cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "no report has decided classify_intent -> small yet" in refused.stderr
    forced = cli("promote", "classify_intent", "--to", "small", "--force", "--database-url", url,
                 "--config", str(toml), cwd=tmp_path)
    assert forced.returncode == 2 and "--force needs --reason" in forced.stderr
    assert not (tmp_path / "routes.yaml").exists()
    listed = cli("routes", "--database-url", url, "--config", str(toml), cwd=tmp_path)
    assert listed.returncode == 0 and "no task type is promoted" in listed.stdout


def test_score_rejects_a_bad_duration_in_one_line(tmp_path: Path, cli) -> None:
    result = cli("score", "--since", "3 fortnights", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --since: '3 fortnights' is not a duration; use e.g. 90m, 24h, 7d"
    )


@pytest.mark.parametrize("command", [[], ["init"], ["db", "upgrade"], ["demo"], ["fake-llm"], ["summary"], ["score"], ["report"], ["config", "check"], ["spool", "replay"], ["promote"], ["demote"], ["routes"], ["retire"], ["resume"], ["import"], ["replay"], ["eval"], ["calibrate-judge"], ["prune"]])
def test_help(tmp_path: Path, command: list[str], cli) -> None:
    result = cli(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0 and "Usage" in result.stdout
