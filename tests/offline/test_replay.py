"""`shadowroute replay`: candidates over imported exchanges, resumable, within budget."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import select

from shadowroute import load_config
from shadowroute.errors import ConfigError, StoreError
from shadowroute.fakellm import FakeLLMServer, default_settings
from shadowroute.offline.importer import import_file
from shadowroute.offline.replay import Replay, replay
from shadowroute.records import Completion
from shadowroute.report import build_report
from shadowroute.scoring import ScoreOptions, run_scoring
from shadowroute.store import CandidateOutput, Store
from support.config import MODELS
from support.pipeline import FakeCandidate

pytestmark = pytest.mark.anyio

TASK = "classify_intent"

REPLAY = {
    "models": {**MODELS, "tiny": {**MODELS["tiny"], "max_retries": 0}},
    "tasks": {TASK: {"candidates": [], "noise_floor_rate": 0.0}},
    "mirror": {"retry_backoff_s": 0.0, "circuit_failures": 3},
    "store": {"flush_interval_s": 0.01},
}
"""The config preset of replays: frontier's imported traffic, nothing mirrored, no retry wait."""


class Counting(FakeCandidate):
    """Answers like the primary did ("answer i"); counts completed calls per request; can stop
    the run (cancel ``scope``) on its ``stop_after``-th call, which then never completes."""

    def __init__(self, name: str, *, stop_after: int | None = None, cost: float = 0.001) -> None:
        super().__init__(name)
        self.completed: Counter[str] = Counter()
        self.stop_after = stop_after
        self.scope: anyio.CancelScope | None = None
        self.cost = cost

    async def complete(self, request: dict[str, Any]) -> Completion:
        self.requests.append(request)
        if self.stop_after is not None and len(self.requests) >= self.stop_after:
            assert self.scope is not None
            self.scope.cancel()  # like Ctrl-C: the run is cancelled with this call in flight
            await anyio.sleep_forever()
        if self.mode == "error":
            return await super().complete(request)
        await anyio.sleep(0)
        content = request["messages"][-1]["content"]
        self.completed[content] += 1
        text = "answer " + content.rsplit(" ", 1)[-1].rstrip("?")
        return Completion(model=self.name, text=text, response={}, input_tokens=12,
                          output_tokens=3, latency_ms=1.0, cost_usd=self.cost)


@pytest.fixture
def imported(make_config: Callable[..., Any], chat_line: Callable[..., Any],
             write_jsonl: Callable[..., Path]) -> Callable[..., Awaitable[Any]]:
    """``imported(tmp_path, db_url, n)``: ``n`` logged exchanges of TASK imported; their config."""

    async def imported(tmp_path: Path, db_url: str, n: int = 10) -> Any:
        config = make_config(db_url, REPLAY)
        path = write_jsonl(tmp_path / "traffic.jsonl", [chat_line(i, task=TASK) for i in range(n)])
        async with await Store.open(db_url) as store:
            report = await import_file(config, store, path)
        assert report.imported == n
        return config

    return imported


async def outputs(url: str) -> list[CandidateOutput]:
    async with await Store.open(url) as store, store.session() as session:
        return list((await session.scalars(select(CandidateOutput))).all())


async def do_replay(config: Any, candidates: list[str], providers: dict[str, Any] | None,
                    **kwargs: Any) -> Any:
    async with await Store.open(config.database_url) as store:
        return await replay(config, store, TASK, candidates, providers=providers, **kwargs)


async def test_replay_stores_outputs_then_skips_them(tmp_path: Path, db_url: str, imported) -> None:
    config = await imported(tmp_path, db_url)
    small, tiny = Counting("small"), Counting("tiny")
    seen: list[tuple[int, int]] = []
    async with await Store.open(db_url) as store:
        report = await replay(config, store, TASK, ["small", "tiny"],
                              providers={"small": small, "tiny": tiny},
                              progress=lambda done, total: seen.append((done, total)))
    assert report.stored == {"small": 10, "tiny": 10} and not report.errors
    assert (report.exchanges, report.to_do, report.already_done, report.left) == (10, 20, 0, 0)
    assert report.cost_usd == pytest.approx(0.02) and report.calls == 20
    assert seen[0] == (0, 20) and seen[-1] == (20, 20)
    rows = await outputs(db_url)
    assert len(rows) == 20 and all(r.error_kind is None and r.cost_usd == 0.001 for r in rows)
    assert sum(1 for r in rows if r.output and r.output.startswith("answer ")) == 20

    again = await do_replay(config, ["small", "tiny"], {"small": small, "tiny": tiny})
    assert again.outputs == 0 and again.already_done == 20 and again.calls == 0
    assert len(small.requests) == len(tiny.requests) == 10
    assert "20 pairs already had an output" in "\n".join(again.lines())


async def test_interrupted_replay_resumes_without_calling_a_pair_twice(
    tmp_path: Path, db_url: str, imported
) -> None:
    config = await imported(tmp_path, db_url, n=12)
    small, tiny = Counting("small", stop_after=7), Counting("tiny")
    with anyio.CancelScope() as scope:
        small.scope = scope
        await do_replay(config, ["small", "tiny"], {"small": small, "tiny": tiny},
                        concurrency=2)
    assert scope.cancelled_caught
    first = await outputs(db_url)
    # What arrived before the interruption was written on the way out.
    assert {r.model for r in first} == {"small", "tiny"}
    assert len([r for r in first if r.model == "small"]) == sum(small.completed.values())
    assert len([r for r in first if r.model == "tiny"]) == sum(tiny.completed.values())
    assert len(first) < 24

    small.stop_after = None
    report = await do_replay(config, ["small", "tiny"], {"small": small, "tiny": tiny})
    assert report.already_done == len(first) and report.left == 0
    rows = await outputs(db_url)
    assert Counter((r.exchange_id, r.model) for r in rows).most_common(1)[0][1] == 1
    assert len(rows) == 24
    # Every pair answered exactly once over both runs.
    for fake in (small, tiny):
        assert len(fake.completed) == 12 and set(fake.completed.values()) == {1}


async def test_limit_and_since(tmp_path: Path, db_url: str, imported) -> None:
    config = await imported(tmp_path, db_url)
    small = Counting("small")
    report = await do_replay(config, ["small"], {"small": small}, limit=4)
    assert report.outputs == 4 and report.left == 6
    assert "6 pairs still lack an output" in report.lines()[-1]
    from datetime import UTC, datetime, timedelta

    future = datetime.now(UTC) + timedelta(days=1)
    report = await do_replay(config, ["small"], {"small": small}, since=future)
    assert report.exchanges == 0 and report.outputs == 0
    report = await do_replay(config, ["small"], {"small": small})
    assert report.outputs == 6 and report.already_done == 4 and len(small.requests) == 10


async def test_budget_caps_stop_calling(tmp_path: Path, db_url: str, make_config, imported) -> None:
    config = await imported(tmp_path, db_url)
    # Calls in flight reserve their estimated cost (the exchange's tokens at the model's
    # prices): 8 at once cannot overshoot the cap.
    estimate = (12 * 0.15 + 3 * 0.6) / 1e6
    exact = Counting("small", cost=estimate)
    report = await do_replay(config, ["small"], {"small": exact}, budget_usd=3.5 * estimate,
                             concurrency=8)
    assert len(exact.requests) == 3 and report.outputs == 3 and report.left == 7
    await _forget_outputs(db_url)

    small = Counting("small", cost=0.001)
    report = await do_replay(config, ["small"], {"small": small}, budget_usd=0.0025,
                             concurrency=1)
    assert len(small.requests) == 3 and report.outputs == 3
    assert report.budget_reached == "--budget $0.0025 for this run" and report.left == 7
    assert "budget reached" in "\n".join(report.lines())

    # The task's daily cap counts what is already stored today (0.003) against it.
    capped = make_config(db_url, REPLAY, tasks={TASK: {"candidates": [], "noise_floor_rate": 0.0,
                                                         "daily_budget_usd": 0.005}})
    report = await do_replay(capped, ["small"], {"small": small}, concurrency=1)
    assert report.outputs == 2 and len(small.requests) == 5
    assert report.budget_reached is not None and "daily_budget_usd" in report.budget_reached


async def _forget_outputs(url: str) -> None:
    from sqlalchemy import delete

    async with await Store.open(url) as store, store.engine.begin() as conn:
        await conn.execute(delete(CandidateOutput.__table__))


async def test_failures_are_stored_and_the_circuit_skips(
    tmp_path: Path, db_url: str, imported,
) -> None:
    config = await imported(tmp_path, db_url)
    tiny = Counting("tiny")
    tiny.mode = "error"
    report = await do_replay(config, ["tiny"], {"tiny": tiny}, concurrency=1)
    # Three failures open the circuit (circuit_failures = 3): the rest are left to do.
    assert report.errors == {"server_error": 3} and report.outputs == 3
    assert report.skipped_circuit_open == 7 and report.left == 7
    assert "server_error: 3" in "\n".join(report.lines())
    assert {r.error_kind for r in await outputs(db_url)} == {"server_error"}


async def test_a_database_failure_is_one_store_error(
    tmp_path: Path, sqlite_url: str, imported,
) -> None:
    config = await imported(tmp_path, sqlite_url)
    async with await Store.open(sqlite_url) as store:
        writes = 0
        real_write = store.write

        async def failing_second_write(exchanges: Any, traffic: Any = ()) -> None:
            nonlocal writes
            writes += 1
            if writes > 1:
                raise StoreError("cannot write 1 exchanges to the test database: disk full")
            await real_write(exchanges, traffic)

        store.write = failing_second_write  # type: ignore[method-assign]
        run = Replay(config, store, TASK, ["small"], providers={"small": Counting("small")},
                     concurrency=1, batch_size=4)
        with pytest.raises(StoreError, match="disk full"):
            await run.run()
    assert run.report.interrupted and run.report.outputs == 4
    assert len(await outputs(sqlite_url)) == 4  # the first batch stays


async def test_unknown_candidate_or_task_is_a_clear_error(
    tmp_path: Path, db_url: str, imported,
) -> None:
    config = await imported(tmp_path, db_url, n=1)
    with pytest.raises(ConfigError, match=r"--candidates: unknown model 'gpt-5': declare it "
                                          r"under \[models\].*models: frontier, small, tiny"):
        await do_replay(config, ["small", "gpt-5"], None)
    async with await Store.open(db_url) as store:
        with pytest.raises(ConfigError, match=r"--task: no exchanges of task type 'nope' are "
                                              r"stored \(stored task types: classify_intent\)"):
            await replay(config, store, "nope", ["small"], providers={"small": Counting("small")})


async def test_replayed_outputs_are_scored_and_reported(
    tmp_path: Path, db_url: str, imported,
) -> None:
    config = await imported(tmp_path, db_url, n=6)
    # primary@replay calls each exchange's primary again: the noise floor, offline.
    frontier = Counting("frontier")
    report = await do_replay(config, ["small", "primary@replay"],
                             {"small": Counting("small"), "frontier": frontier})
    assert report.stored == {"small": 6, "primary@replay": 6} and len(frontier.requests) == 6
    scored = await run_scoring(config, ScoreOptions(task=TASK))
    assert scored.outputs == 12 and scored.left_unscored == 0
    async with await Store.open(db_url) as store:
        report = await build_report(config, store)
    [task] = [t for t in report.tasks if t.task == TASK]
    [candidate] = [c for c in task.candidates if c.model == "small"]
    assert candidate.outputs == 6 and candidate.n == 6 and candidate.passed == 6
    assert candidate.noise_floor == 0.0


def test_cli_against_the_fake_llm_server(tmp_path: Path, cli, write_jsonl) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    traffic = [{"request": {"model": "frontier", "messages": [
                    {"role": "user", "content": f"Classify: I want my money back for order {i}"}]},
                "response": {"model": "frontier", "choices": [{"index": 0, "message": {
                    "role": "assistant", "content": "refund"}}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 1}}}
               for i in range(8)]
    path = write_jsonl(tmp_path / "traffic.jsonl", traffic)
    with FakeLLMServer(default_settings(latency_scale=0.0)) as server:
        base = server.base_url + "/v1"
        (tmp_path / "shadowroute.toml").write_text(
            f'database_url = "{url}"\n'
            f'[models.frontier]\nbase_url = "{base}"\ninput_price = 2.5\noutput_price = 10\n'
            f'[models.small]\nbase_url = "{base}"\ninput_price = 0.15\noutput_price = 0.6\n'
            f'[models.tiny]\nbase_url = "{base}"\ninput_price = 0.05\noutput_price = 0.2\n'
            f'[tasks.{TASK}]\nnoise_floor_rate = 0\n')
        config = load_config(tmp_path / "shadowroute.toml")

        async def load() -> None:
            async with await Store.open(url) as store:
                await import_file(config, store, path, task=TASK)

        anyio.run(load)
        result = cli("replay", "--task", TASK, "--candidates", "small, tiny", "--limit", "5",
                     cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"replayed {TASK}: stored 10 outputs (small: 5, tiny: 5)" in result.stdout
        assert "6 pairs still lack an output" in result.stdout
        result = cli("replay", "--task", TASK, "--candidates", "small,tiny", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "stored 6 outputs (small: 3, tiny: 3)" in result.stdout
        assert "10 pairs already had an output (skipped)" in result.stdout
        assert "next: `shadowroute score`" in result.stdout
        assert server.calls("small") == server.calls("tiny") == 8

    async def stored() -> list[Any]:
        async with await Store.open(url) as store, store.session() as session:
            return list((await session.execute(
                select(CandidateOutput.model, CandidateOutput.output, CandidateOutput.cost_usd)
            )).all())

    rows = anyio.run(stored)
    assert len(rows) == 16 and all(output and cost > 0 for _, output, cost in rows)
