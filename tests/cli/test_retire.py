"""`shadowroute retire` / `resume` on the command line: a candidate retired from shadowing once
a report has compared it with the task's primary, refused before, typos named with the valid
names, nothing recorded twice, and brought back by hand."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shadowroute.config import load_config
from shadowroute.records import utcnow
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from shadowroute.store.queries.retirements import retired_models
from shadowroute.store.queries.routes import save_report
from support.config import CLOSED
from support.report import Out

pytestmark = pytest.mark.anyio

TOML = f"""
[models.small]
base_url = "{CLOSED}"
[models.tiny]
base_url = "{CLOSED}"

[tasks.classify]
candidates = ["small", "tiny"]
scorers = ["exact"]
[tasks.extract]
candidates = ["small"]
scorers = ["exact"]
"""

RETIRED = ("retired small from classify: no more shadow calls while its primary is big (resumes "
           "by itself when the primary changes; `shadowroute resume classify small` to bring it "
           "back)")


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    path = tmp_path / "shadowroute.toml"
    path.write_text(TOML)
    return path


@pytest.fixture
def run(cli: Callable[..., Any], tmp_path: Path, toml: Path) -> Callable[..., Any]:
    """``run(url, *args)``: the command line on ``toml`` and ``url``, as actor ``carol``."""

    def run(url: str, *args: str) -> Any:
        return cli(*args, "--config", str(toml), "--database-url", url, cwd=tmp_path, env={
            "SHADOWROUTE_CONFIG": "", "SHADOWROUTE_DATABASE_URL": "", "SHADOWROUTE_ACTOR": "carol"})

    return run


@pytest.fixture
async def reported(sqlite_url: str, toml: Path, run, xchg) -> str:
    """A database where `shadowroute report` compared classify's candidates with ``big``."""
    config = load_config(toml).model_copy(update={"database_url": sqlite_url})
    async with await Store.open(sqlite_url) as store:
        await store.write([xchg("classify", "a", Out("small", "a"), Out("tiny", "a"))
                           for _ in range(12)])
        await score(config, store, ScoreOptions())
    result = run(sqlite_url, "report", "--since", "all", "--out", str(toml.parent / "r.html"))
    assert result.returncode == 0, result.stderr
    return sqlite_url


async def retired(url: str) -> dict[str, Any]:
    async with await Store.open(url) as store:
        return await retired_models(store)


def one_line(result: Any) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


async def test_retire_then_resume(reported: str, run) -> None:
    result = run(reported, "retire", "classify", "small", "--reason", "  HOLD for weeks ")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == RETIRED
    state = await retired(reported)
    assert set(state) == {"classify"} and set(state["classify"]) == {"small"}
    entry = state["classify"]["small"]
    assert (entry["primary"], entry["by"], entry["reason"]) == ("big", "carol", "HOLD for weeks")

    again = run(reported, "retire", "classify", "small", "--by", "dave")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().startswith("small is already retired from classify (by carol since ")
    assert again.stdout.strip().endswith(" UTC, while its primary is big); nothing changed")
    assert await retired(reported) == state  # nothing recorded

    resumed = run(reported, "resume", "classify", "small", "--by", "dave")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip().startswith("resumed small on classify: shadowed again (it was "
                                             "retired since ")
    assert resumed.stdout.strip().endswith(" UTC while its primary was big)")
    assert await retired(reported) == {}

    twice = run(reported, "resume", "classify", "small")
    assert twice.returncode == 0, twice.stderr
    assert twice.stdout.strip() == ("small is not retired from classify: it is shadowed already; "
                                    "nothing changed")


async def test_a_retirement_against_an_old_primary_is_renewed(reported: str, run) -> None:
    """A retirement holds while the primary it was compared with serves the task: after a report
    against a new primary, `retire` records one against the new primary."""
    assert run(reported, "retire", "classify", "small").returncode == 0
    async with await Store.open(reported) as store:
        run_id = uuid.uuid4().hex
        await save_report(store, {"id": run_id, "created_at": utcnow(), "since": None,
                                  "overview": {}}, [{
            "report_id": run_id, "created_at": utcnow(), "task_type": "classify",
            "model": "small", "kind": "shadow", "verdict": "HOLD", "reason": "stored",
            "primary_model": "huge", "n": 100, "passed": 60, "pass_rate": 0.6,
            "lower_bound": 0.5, "noise_floor": None, "judge_version": None,
            "monthly_savings": None}])
    renewed = run(reported, "retire", "classify", "small")
    assert renewed.returncode == 0, renewed.stderr
    assert renewed.stdout.strip() == RETIRED.replace("primary is big", "primary is huge")
    assert (await retired(reported))["classify"]["small"]["primary"] == "huge"


async def test_retire_is_refused_before_a_report_compared_the_pair(reported: str, run) -> None:
    refused = run(reported, "retire", "extract", "small")  # the report saw no extract traffic
    assert one_line(refused) == (
        "error: no report has compared small on extract yet: run `shadowroute report` first (a "
        "retirement holds while the primary it was compared with serves the task)")
    assert await retired(reported) == {}


@pytest.mark.parametrize(("args", "message"), [
    (["retire", "clasify", "small"],
     ("cannot retire 'small' on task type 'clasify': it is not declared under [tasks] (task "
      "types: classify, extract); did you mean 'classify'?")),
    (["retire", "classify", "smal"],
     ("cannot retire 'smal' on classify: it is not one of its candidates "
      "(tasks.classify.candidates: small, tiny); did you mean 'small'?")),
    (["resume", "extract", "tiny"],
     ("cannot resume 'tiny' on extract: it is not one of its candidates "
      "(tasks.extract.candidates: small)")),
])
def test_unknown_names_are_one_line_naming_the_valid_ones(
    tmp_path: Path, toml: Path, run, args: list[str], message: str,
) -> None:
    # Named before the database is opened: this one does not exist.
    result = run(f"sqlite+aiosqlite:///{tmp_path / 'absent.db'}", *args)
    assert one_line(result) == f"error: {toml}: {message}"
    assert not (tmp_path / "absent.db").exists()
