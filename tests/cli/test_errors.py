"""Errors that used to mislead or stay silent (tracker issue 21): each is one line saying what to
do, and a command that fails creates and stores nothing.

Commands run in-process through the ``cli`` fixture, with neither a config file nor a database
URL from the environment unless the test writes one.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from shadowroute.config import load_config
from shadowroute.records import utcnow
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from shadowroute.store.models import Base
from shadowroute.store.queries.routes import save_report
from support.report import Out

CONFIG = """
[models.frontier]
base_url = "http://127.0.0.1:9/v1"

[models.small]
base_url = "http://127.0.0.1:9/v1"

[tasks.classify_intent]
candidates = ["small"]
scorers = ["exact"]
"""

NO_DATABASE = (
    "error: no database at {url} (the file {path} does not exist): check --database-url (or "
    "database_url in the config, $SHADOWROUTE_DATABASE_URL), or create it with "
    "`shadowroute db upgrade`"
)


@pytest.fixture
def run(cli: Callable[..., Any], tmp_path: Path) -> Callable[..., Any]:
    """The command line in ``tmp_path``, on no config file and no database URL but its own."""
    return functools.partial(cli, cwd=tmp_path,
                             env={"SHADOWROUTE_CONFIG": None, "SHADOWROUTE_DATABASE_URL": None})


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    path = tmp_path / "shadowroute.toml"
    path.write_text(CONFIG)
    return path


def one_line(result: Any) -> str:
    """The one ``error:`` line of a failed command (exit code 2, no traceback)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def rows(url: str) -> dict[str, int]:
    """Rows per table of the database at ``url``."""

    async def count() -> dict[str, int]:
        async with await Store.open(url, create=False) as store, store.engine.connect() as conn:
            return {name: int(await conn.scalar(select(func.count()).select_from(table)))
                    for name, table in Base.metadata.tables.items()}

    return anyio.run(count)


def upgraded(run: Callable[..., Any], url: str) -> str:
    assert run("db", "upgrade", "--database-url", url).returncode == 0
    return url


# --------------------------------------------------------------------------- 1. a missing SQLite file


@pytest.mark.parametrize("command", [
    ["summary"], ["score"], ["report"], ["nightly"], ["routes"], ["routes", "--history"],
    ["routes", "--export"], ["promote", "classify_intent", "--to", "small"],
    ["demote", "classify_intent"], ["prune", "--older-than", "30d"],
])
def test_a_command_that_reads_refuses_a_missing_sqlite_file(
    tmp_path: Path, run, toml: Path, command: list[str],
) -> None:
    before = files(tmp_path)
    url = "sqlite+aiosqlite:///shadowroute-dmo.db"
    result = run(*command, "--config", str(toml), "--database-url", url)
    assert one_line(result) == NO_DATABASE.format(url=url, path=tmp_path / "shadowroute-dmo.db")
    assert files(tmp_path) == before  # no database file, no reports/, no routes.yaml


def test_a_missing_sqlite_file_in_a_missing_folder_creates_neither(tmp_path: Path, run) -> None:
    url = "sqlite:///typo/dir/shadowroute.db"
    assert one_line(run("summary", "--database-url", url)) == NO_DATABASE.format(
        url="sqlite+aiosqlite:///typo/dir/shadowroute.db", path=tmp_path / "typo/dir/shadowroute.db")
    assert files(tmp_path) == []


def test_commands_that_bring_data_still_create_the_database(tmp_path: Path, run) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new' / 'fresh.db'}"
    assert run("db", "upgrade", "--database-url", url).returncode == 0
    assert (tmp_path / "new" / "fresh.db").is_file()
    listed = run("summary", "--database-url", url)  # and a reader then finds it
    assert listed.returncode == 0 and "0 exchanges" in listed.stdout


@pytest.mark.anyio
async def test_store_open_create_false(tmp_path: Path) -> None:
    from shadowroute.errors import StoreError
    from shadowroute.store.engine import require_database, sqlite_file

    missing = tmp_path / "missing.db"
    for url in (f"sqlite+aiosqlite:///{missing}",
                f"sqlite+aiosqlite:///file:{missing}?mode=ro&uri=true"):
        with pytest.raises(StoreError, match=r"^no database at .* does not exist\)"):
            await Store.open(url, create=False)
        assert not missing.exists()
    # In-memory databases never exist beforehand: create=False does not refuse them.
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:",
                f"sqlite+aiosqlite:///file:{missing}?mode=memory&uri=true"):
        assert sqlite_file(url) is None
        require_database(url)
    assert sqlite_file("sqlite:///rel/x.db") == Path("rel/x.db")
    assert sqlite_file("postgresql://u@h/db") is None


# --------------------------------------------------------------------------- 2. score with no data


def test_score_with_nothing_captured_says_how_to_capture(tmp_path: Path, run, toml: Path) -> None:
    url = upgraded(run, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    result = run("score", "--config", str(toml), "--database-url", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == (
        "nothing to score: no candidate outputs are stored; capture traffic with shadow() or "
        "`shadowroute serve` (or load logs with `shadowroute import`), then run score again")
    assert set(rows(url).values()) <= {0, 1}  # only alembic's version row
    assert rows(url)["exchanges"] == 0


def test_score_when_everything_is_scored_says_so(tmp_path: Path, run, toml: Path, xchg) -> None:
    url = upgraded(run, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    config = load_config(toml).model_copy(update={"database_url": url})

    async def fill() -> None:
        async with await Store.open(url) as store:
            await store.write([xchg("classify_intent", "a", Out("small", "a"))
                               for _ in range(3)])
            await score(config, store, ScoreOptions())

    anyio.run(fill)
    before = rows(url)
    result = run("score", "--config", str(toml), "--database-url", url, "--task",
                 "classify_intent")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == (
        "nothing new to score for task type classify_intent: every stored candidate output "
        "already has its task's current scores; `shadowroute report` shows the verdicts")
    assert rows(url) == before


# --------------------------------------------------------------------------- 3. a misspelled task type


def test_promote_of_a_misspelled_task_type_says_did_you_mean(
    tmp_path: Path, run, toml: Path,
) -> None:
    url = upgraded(run, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")

    async def report() -> None:  # a report that decided a task type the config does not list
        async with await Store.open(url) as store:
            now = utcnow()
            await save_report(store, {"id": "r1", "created_at": now, "since": None,
                                      "overview": {}},
                              [{"report_id": "r1", "created_at": now, "task_type": "summarize",
                                "model": "small", "kind": "shadow", "verdict": "HOLD",
                                "reason": "r", "primary_model": "frontier", "n": 10,
                                "passed": 9}])

    anyio.run(report)
    before = rows(url)
    for extra in ([], ["--force", "--reason", "cheaper"]):
        refused = run("promote", "clasify_intent", "--to", "small", *extra, "--config",
                      str(toml), "--database-url", url)
        assert one_line(refused) == (
            "error: unknown task type 'clasify_intent': it is not under [tasks], in the latest "
            "report or in the route map; did you mean 'classify_intent'?")
    from_report = run("promote", "sumarize", "--to", "small", "--config", str(toml),
                      "--database-url", url)
    assert one_line(from_report).endswith("did you mean 'summarize'?")
    assert "--force" not in from_report.stderr
    assert rows(url) == before
    assert not (tmp_path / "routes.yaml").exists()


def test_promote_without_a_report_does_not_offer_a_force_that_would_fail(
    tmp_path: Path, run, toml: Path,
) -> None:
    url = upgraded(run, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    refused = run("promote", "classify_intent", "--to", "small", "--config", str(toml),
                  "--database-url", url)
    assert one_line(refused) == (
        "error: no report has decided classify_intent -> small yet: run `shadowroute score` and "
        "`shadowroute report` first (a promotion needs a report that has seen classify_intent's "
        "primary, to roll back to)")
    assert rows(url)["route_changes"] == 0


# --------------------------------------------------------------------------- 4. report --json


@pytest.fixture
def reported_db(tmp_path: Path, run) -> str:
    return upgraded(run, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")


def test_report_json_into_a_directory_names_json(tmp_path: Path, run, reported_db: str) -> None:
    (tmp_path / "twin").mkdir()
    result = run("report", "--database-url", reported_db, "--out", "out/r.html", "--json",
                 "twin")
    assert one_line(result) == "error: --json: cannot write twin: Is a directory"
    assert rows(reported_db)["reports"] == 0
    assert not list(tmp_path.rglob(".*.tmp"))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_report_json_whose_folder_cannot_be_made_names_json(
    tmp_path: Path, run, reported_db: str,
) -> None:
    # /proc takes no new folder: the one that fails is /proc/shadowroute, two levels up.
    result = run("report", "--database-url", reported_db, "--out", "out/r.html", "--json",
                 "/proc/shadowroute/reports/r.json")
    assert one_line(result) == (
        "error: --json: cannot write /proc/shadowroute: No such file or directory")
    assert rows(reported_db)["reports"] == 0
    assert not (tmp_path / "out" / "r.html").exists()


def test_report_out_that_cannot_be_written_still_names_out(
    tmp_path: Path, run, reported_db: str,
) -> None:
    (tmp_path / "blocker").write_text("a file")
    result = run("report", "--database-url", reported_db, "--out", "blocker/r.html", "--json",
                 "ok/r.json")
    assert one_line(result).startswith("error: --out: cannot write blocker")
    assert rows(reported_db)["reports"] == 0
    assert not (tmp_path / "ok" / "r.json").exists()


def test_report_json_failing_late_leaves_no_html(tmp_path: Path, run, reported_db: str) -> None:
    (tmp_path / "twin").mkdir()
    result = run("report", "--database-url", reported_db, "--out", "out/r.html", "--json", "twin")
    assert one_line(result).startswith("error: --json: cannot write twin")
    assert not (tmp_path / "out" / "r.html").exists()  # no HTML without its twin
    assert rows(reported_db)["reports"] == 0


# --------------------------------------------------------------------------- 5. config typos


def test_several_config_problems_are_listed_each_with_its_key(tmp_path: Path, run) -> None:
    (tmp_path / "bad.toml").write_text(
        '[modles.x]\n[tasks.t]\nsampel_rate = 0.5\n[mirror]\nworkers = 0\n')
    result = run("config", "check", "--config", "bad.toml")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: bad.toml has 3 problems:",
        "  tasks.t.sampel_rate: unknown key; did you mean `sample_rate`?",
        "  mirror.workers: Input should be greater than or equal to 1",
        "  modles: unknown key; did you mean `models`?",
    ]
    assert result.stdout == ""


def test_one_config_problem_is_one_line_with_did_you_mean(tmp_path: Path, run) -> None:
    (tmp_path / "bad.toml").write_text('[tasks.t.scorers.similarity]\ntreshold = 0.9\n')
    result = run("config", "check", "--config", "bad.toml")
    assert one_line(result) == (
        "error: bad.toml: tasks.t.scorers.similarity.treshold: unknown key; did you mean "
        "`threshold`?")


# --------------------------------------------------------------------------- 6. unsupported databases


@pytest.mark.parametrize("command", [["summary"], ["db", "upgrade"], ["score"]])
def test_an_unsupported_database_names_the_supported_ones(
    tmp_path: Path, run, command: list[str],
) -> None:
    drivers = {"MySQLdb", "pymysql", "aiomysql"}
    result = run(*command, "--database-url", "mysql://app:hunter2@db.internal/shadow")
    assert one_line(result) == (
        "error: unsupported database mysql://app:***@db.internal/shadow: shadowroute stores to "
        "SQLite (sqlite+aiosqlite:///path.db; sqlite:///path.db is accepted too) or Postgres "
        "(postgresql+psycopg://user@host/db; postgresql:// is accepted too)")
    assert not drivers & set(sys.modules)  # refused before any driver was imported
    assert files(tmp_path) == []


# --------------------------------------------------------------------------- 7. no [judge]

JUDGE_WARNING = (
    "warning: no [judge] configured: the default scorers of task type classify_intent leave the "
    "LLM judge out (similarity, or schema with a json_schema, only); add a [judge] section, or "
    "list their scorers explicitly to keep it this way"
)


def test_default_scorers_without_a_judge_warn_in_config_check_and_score(
    tmp_path: Path, run,
) -> None:
    toml = tmp_path / "shadowroute.toml"
    toml.write_text(CONFIG.replace('scorers = ["exact"]\n', ""))
    checked = run("config", "check", "--config", str(toml))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().splitlines()[-1] == JUDGE_WARNING
    url = upgraded(run, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    scored = run("score", "--config", str(toml), "--database-url", url)
    assert scored.returncode == 0, scored.stderr
    assert scored.stdout.splitlines()[0] == JUDGE_WARNING
    assert scored.stdout.count("warning:") == 1
    # Listed scorers say what is meant: no warning.
    (tmp_path / "explicit.toml").write_text(CONFIG)
    explicit = run("config", "check", "--config", "explicit.toml")
    assert explicit.returncode == 0, explicit.stderr
    assert "warning:" not in explicit.stdout


def test_a_task_listing_judge_without_a_judge_is_an_error_naming_it(tmp_path: Path, run) -> None:
    (tmp_path / "bad.toml").write_text(CONFIG.replace('["exact"]', '["exact", "judge"]'))
    assert one_line(run("config", "check", "--config", "bad.toml")) == (
        "error: bad.toml: tasks.classify_intent.scorers uses 'judge' but no [judge] is "
        "configured: add a [judge] section, or remove 'judge' from the task's scorers")
