"""`shadowroute report` on the command line: the report and its JSON twin where asked, one
error line for a bad duration or a path that cannot be written, dated files by default."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shadowroute.config import load_config
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from support.report import Out

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def run_cli(cli: Callable[..., Any]) -> Callable[..., Any]:
    """The command line with neither a config file nor a database URL from the environment."""
    return functools.partial(cli, env={"SHADOWROUTE_CONFIG": "", "SHADOWROUTE_DATABASE_URL": ""})


async def test_cli_report(sqlite_url: str, tmp_path: Path, run_cli, xchg) -> None:
    toml = tmp_path / "shadowroute.toml"
    toml.write_text(
        'database_url = "sqlite+aiosqlite:////nonexistent/dir/never.db"\n'
        '[models.mini]\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[tasks.classify]\ncandidates = ["mini"]\nscorers = ["exact"]\n'
    )
    config = load_config(toml).model_copy(update={"database_url": sqlite_url})
    async with await Store.open(sqlite_url) as store:
        await store.write([xchg("classify", "a", Out("mini", "a" if i < 9 else "b"))
                           for i in range(12)])
        await score(config, store, ScoreOptions())

    out, twin = tmp_path / "x" / "report.html", tmp_path / "y" / "twin.json"
    result = run_cli("report", "--database-url", sqlite_url, "--config", str(toml), "--out",
                     str(out), "--json", str(twin), "--since", "all", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.is_file() and twin.is_file()
    data = json.loads(twin.read_text(encoding="utf-8"))
    (c,) = data["tasks"][0]["candidates"]
    assert (data["tasks"][0]["task"], c["model"], c["n"], c["passed"]) == ("classify", "mini", 12, 9)
    assert data["since"] is None
    assert "75.0%" in out.read_text(encoding="utf-8")

    bad = run_cli("report", "--since", "nonsense", cwd=tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "error: --since: 'nonsense' is not a duration; use e.g. 90m, 24h, 7d"

    # A path that cannot be written: one line naming the option, the old report untouched.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file")
    out.write_text("the previous report", encoding="utf-8")
    unwritable = run_cli("report", "--database-url", sqlite_url, "--config", str(toml),
                         "--out", str(out), "--json", str(blocker / "r.json"), cwd=tmp_path)
    assert unwritable.returncode == 2
    assert "Traceback" not in unwritable.stderr
    assert unwritable.stderr.strip().startswith("error: --json: cannot write ")
    assert len(unwritable.stderr.strip().splitlines()) == 1
    assert out.read_text(encoding="utf-8") == "the previous report"
    assert not list(tmp_path.glob(".*.tmp"))

    async def reports() -> int:
        from sqlalchemy import func, select

        from shadowroute.store.models import ReportRun
        async with await Store.open(sqlite_url) as store, store.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(ReportRun)))

    assert await reports() == 1  # the report nobody could read was not stored

    work = tmp_path / "work"
    work.mkdir()
    before = datetime.now(UTC).date()
    default = run_cli("report", "--database-url", sqlite_url, "--config", str(toml), cwd=work)
    after = datetime.now(UTC).date()
    assert default.returncode == 0, default.stderr
    written = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    assert written in ([f"reports/shadowroute-{d:%Y-%m-%d}.html", f"reports/shadowroute-{d:%Y-%m-%d}.json"]
                       for d in {before, after})


async def test_terminal_table_has_a_short_reason_per_verdict(
    store: Store, make_config, xchg,
) -> None:
    """``render_verdicts`` (the ``report``/``nightly``/demo table) says in a few words why: the
    bound against the bar for a PROMOTE, the upper bound under the bar for a HOLD, the samples
    still missing for a NEED MORE DATA."""
    from rich.console import Console

    from shadowroute.cli.tables import render_verdicts
    from shadowroute.report import build_report
    from support.config import BIG_MINI_TINY

    config = make_config(store.url, models=BIG_MINI_TINY, tasks={
        "easy": {"candidates": ["mini"], "scorers": ["exact"], "required_quality": 0.8,
                 "margin": 0.5},
        "hard": {"candidates": ["mini"], "scorers": ["exact"]},
        "young": {"candidates": ["mini"], "scorers": ["exact"]}})
    batch = [xchg("easy", "yes", Out("mini", "yes")) for _ in range(300)]
    batch += [xchg("hard", "yes", Out("mini", "no" if i < 50 else "yes")) for i in range(100)]
    batch += [xchg("young", "yes", Out("mini", "yes")) for _ in range(7)]
    await store.write(batch)
    await score(config, store, ScoreOptions())
    report = await build_report(config, store)

    table = render_verdicts(report)
    headers = [str(c.header) for c in table.columns]
    assert headers[-1] == "reason" and "decided by" in headers
    reasons = [str(cell) for cell in table.columns[-1].cells]
    verdicts = [str(cell) for cell in table.columns[2].cells]
    assert [v.split("]")[1].split("[")[0] for v in verdicts] == [
        "PROMOTE", "HOLD", "NEED MORE DATA"]
    assert reasons[0].startswith("bound ") and "≥ 80.0%, excess ≤ " in reasons[0]
    assert reasons[1].startswith("pass ≤ ") and reasons[1].endswith("< bar 95.0%")
    assert reasons[2] == "n 7 < 100 required"
    console = Console(width=160, record=True)
    console.print(table)
    assert "n 7 < 100 required" in console.export_text()
