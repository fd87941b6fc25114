"""`shadowroute nightly`: score, dated report, index, what changed, route check, retention and
the webhook in one run; exit codes 0 / 1 / 2 / 3; a lock against overlapping runs (SQLite and
Postgres). Crafted pairs, the real `score()` and report, a webhook receiver on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shadowroute.config import Config
from shadowroute.ops import EXIT_ATTENTION, EXIT_LOCKED, EXIT_OK, changes_between, run_nightly
from shadowroute.records import TrafficRecord, utcnow
from shadowroute.serving import BackgroundServer
from shadowroute.store import Store
from shadowroute.store.locks import exclusive
from support.config import BIG_MINI_TINY
from support.report import Out, xchg

pytestmark = pytest.mark.anyio


class Webhook:
    """A loopback webhook receiver; ``fail`` first answers with that many 500s."""

    def __init__(self, fail: int = 0) -> None:
        self.posts: list[dict[str, Any]] = []
        self.fail = fail

        async def hook(request: Request) -> Response:
            if self.fail:
                self.fail -= 1
                return Response(status_code=500)
            self.posts.append(json.loads(await request.body()))
            return JSONResponse({"ok": True})

        self.app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    hook = Webhook()
    with BackgroundServer(hook.app) as server:
        monkeypatch.setenv("SR_TEST_WEBHOOK", server.base_url + "/hook")
        yield hook


def config_for(make_config: Callable[..., Config], url: str, **extra: Any) -> Config:
    return make_config(url, models=BIG_MINI_TINY, decision={"sequential": False},
                       notify={"webhook_url_env": "SR_TEST_WEBHOOK", "retries": 2}, tasks={
                           "easy": {"candidates": ["mini"], "scorers": ["exact"],
                                    "required_quality": 0.9, "margin": 0.1, "min_samples": 50},
                       }, **extra)


async def seed(store: Store, n: int = 100, *, miss_every: int = 50,
               age_days: float = 0) -> None:
    await store.write([xchg("easy", "yes", Out("mini", "miss" if i % miss_every == 0 else "yes",
                                                cost=0.001), cost=0.01, age_days=age_days)
                       for i in range(n)],
                      traffic=[TrafficRecord(utcnow().date(), "easy", "big", requests=1000)])


async def test_one_run_does_the_loop_and_a_second_says_nothing_new(
    store: Store, make_config, webhook: Webhook, tmp_path: Path,
) -> None:
    config = config_for(make_config, store.url)
    await seed(store)
    out = tmp_path / "reports"
    first = await run_nightly(config, out, since=None)
    assert first.scored == 100
    day = f"{datetime.now(UTC):%Y-%m-%d}"
    assert first.html == out / f"shadowroute-{day}.html" and first.html.exists()
    assert (out / f"shadowroute-{day}.json").exists()
    assert (out / "latest.html").read_text() == first.html.read_text()
    index = (out / "index.html").read_text()
    assert f'<a href="shadowroute-{day}.html">' in index and "1 report," in index
    assert [(c.kind, c.task, c.model) for c in first.changes] == [("new PROMOTE", "easy", "mini")]
    assert first.changes[0].command == "shadowroute promote easy --to mini"
    assert first.exit_code == EXIT_ATTENTION
    assert len(webhook.posts) == 1
    post = webhook.posts[0]
    assert post["change"]["kind"] == "new PROMOTE" and post["change"]["task"] == "easy"
    assert "new PROMOTE: easy -> mini" in post["text"]
    assert "shadowroute promote easy --to mini" in post["text"]
    assert "changes: new PROMOTE easy -> mini" in first.summary()
    assert first.summary().endswith("exit 1 (needs a person)")

    second = await run_nightly(config, out, since=None)  # nothing new stored
    assert (second.scored, second.changes, second.exit_code) == (0, [], EXIT_OK)
    assert len(webhook.posts) == 1  # no change, no post
    assert second.summary().endswith("no changes; route map ok; exit 0 (nothing to do)")


async def test_a_verdict_that_goes_away_is_a_change_too(
    store: Store, make_config, webhook: Webhook, tmp_path: Path,
) -> None:
    config = config_for(make_config, store.url)
    await seed(store)
    await run_nightly(config, tmp_path, since=None)
    await seed(store, 100, miss_every=2)  # mini now misses half: no longer good enough
    again = await run_nightly(config, tmp_path, since=None)
    assert [(c.kind, c.previous) for c in again.changes] == [("PROMOTE withdrawn", "PROMOTE")]
    assert again.exit_code == EXIT_ATTENTION
    assert len(webhook.posts) == 2


async def test_a_second_run_while_one_holds_the_lock_does_nothing(
    store: Store, make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SR_TEST_WEBHOOK", raising=False)
    config = config_for(make_config, store.url)
    await seed(store)
    async with exclusive(store, "nightly") as held:
        assert held
        blocked = await run_nightly(config, tmp_path, since=None)
    assert blocked.locked and blocked.exit_code == EXIT_LOCKED
    assert "another run holds the lock" in blocked.summary()
    assert not list(tmp_path.glob("*.html"))  # nothing done
    async with store.engine.connect() as conn:
        from sqlalchemy import func, select

        from shadowroute.store.models import Score
        assert await conn.scalar(select(func.count()).select_from(Score)) == 0
    after = await run_nightly(config, tmp_path, since=None)  # released: the next run works
    assert not after.locked and after.scored == 100


async def test_retention_from_config_and_a_failing_webhook_never_fail_the_run(
    store: Store, make_config, tmp_path: Path,
) -> None:
    hook = Webhook(fail=10)
    with BackgroundServer(hook.app) as server:
        import os
        os.environ["SR_TEST_WEBHOOK"] = server.base_url + "/hook"
        try:
            config = config_for(make_config, store.url, retention={"keep_days": 30})
            await seed(store, 60, age_days=40)
            await seed(store)
            result = await run_nightly(config, tmp_path, since=None)
        finally:
            del os.environ["SR_TEST_WEBHOOK"]
    assert result.pruned is not None and result.pruned.exchanges == 60
    assert result.notified is not None and result.notified.failed == 1
    assert hook.posts == [] and hook.fail == 10 - 3  # the first try and 2 retries
    assert "notified 0 of 1 (notification FAILED for the rest)" in result.summary()
    assert result.exit_code == EXIT_ATTENTION  # the PROMOTE is still news


def test_changes_between_reports() -> None:
    def row(task: str, model: str, verdict: str, kind: str = "shadow") -> dict[str, str]:
        return {"task_type": task, "model": model, "kind": kind, "verdict": verdict,
                "reason": f"{verdict} because"}

    before = [row("a", "m", "NEED MORE DATA"), row("b", "m", "PROMOTE"), row("c", "m", "PROMOTE"),
              row("d", "m", "HOLDS", "drift")]
    now = [row("a", "m", "PROMOTE"), row("b", "m", "PROMOTE"), row("d", "m",
           "DEMOTE RECOMMENDED", "drift"), row("e", "m", "CONFIG PROBLEM")]
    changes = changes_between(before, now, {("a", "m", "shadow"): "shadowroute promote a --to m"})
    assert [(c.kind, c.task, c.previous) for c in changes] == [
        ("new PROMOTE", "a", "NEED MORE DATA"), ("DEMOTE RECOMMENDED", "d", "HOLDS"),
        ("CONFIG PROBLEM", "e", None), ("PROMOTE withdrawn", "c", "PROMOTE")]
    assert changes[0].line() == ("new PROMOTE: a -> m (was NEED MORE DATA): PROMOTE because -> "
                                 "run `shadowroute promote a --to m`")


def test_exit_codes_from_the_command_line(tmp_path: Path, cli, make_config) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"

    async def fill() -> None:
        async with await Store.open(url) as store:
            await seed(store)

    anyio.run(fill)
    toml = tmp_path / "shadowroute.toml"
    toml.write_text(
        f'database_url = "{url}"\n[models.big]\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[models.mini]\nbase_url = "http://127.0.0.1:9/v1"\n[decision]\nsequential = false\n'
        '[tasks.easy]\ncandidates = ["mini"]\nscorers = ["exact"]\nrequired_quality = 0.9\n'
        'margin = 0.1\nmin_samples = 50\n')
    env = {"SHADOWROUTE_DATABASE_URL": ""}
    first = cli("nightly", "--config", str(toml), "--out-dir", "out", cwd=tmp_path, env=env)
    assert first.returncode == 1, first.stderr
    assert "new PROMOTE: easy -> mini" in first.stdout
    assert "exit 1 (needs a person)" in first.stdout
    second = cli("nightly", "--config", str(toml), "--out-dir", "out", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    broken = cli("nightly", "--config", str(toml), "--since", "a while", cwd=tmp_path, env=env)
    assert broken.returncode == 2, broken.stderr
    assert broken.stderr.strip() == ("error: --since: 'a while' is not a duration; use e.g. "
                                     "90m, 24h, 7d")


async def test_two_runs_at_once_one_works_and_an_interrupted_run_leaves_no_duplicates(
    store: Store, make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import func, select

    from shadowroute.store.models import ReportRun, Score

    monkeypatch.delenv("SR_TEST_WEBHOOK", raising=False)
    config = config_for(make_config, store.url)
    await seed(store, 300)
    with anyio.move_on_after(0.05):  # killed part-way (wherever it had got to)
        await run_nightly(config, tmp_path, since=None)
    results = []

    async def one() -> None:
        results.append(await run_nightly(config, tmp_path, since=None))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)
    assert sorted(r.locked for r in results) == [False, True]
    assert [r.exit_code for r in results if r.locked] == [EXIT_LOCKED]
    async with store.engine.connect() as conn:
        scores = await conn.scalar(select(func.count()).select_from(Score))
        distinct = await conn.scalar(select(func.count()).select_from(
            select(Score.output_id, Score.scorer, Score.version).distinct().subquery()))
        reports = await conn.scalar(select(func.count()).select_from(ReportRun))
    assert scores == distinct == 300  # every output scored once, none twice
    assert reports in (1, 2)  # the interrupted run's report, if it got that far, and this one
