"""``shadowroute eval routellm`` on the real RouteLLM data: the loader's exchanges, and verdicts
checked against pass rates computed here, independently, from the raw files.

Skipped only when the data cannot be found (``--data`` / ``$SHADOWROUTE_DATASETS`` /
``shared/datasets`` above the checkout)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import anyio
import pytest
from sqlalchemy import func, select

from shadowroute.errors import ConfigError
from shadowroute.evals import DATASETS_ENV, EVALS, EvalRun, find_data, get_eval, run_eval
from shadowroute.evals.routellm import CANDIDATE, PRIMARY, exchanges, load
from shadowroute.store import CandidateOutput, Exchange, Store

MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
MT_BENCH_CATEGORIES = {"writing", "roleplay", "reasoning", "coding", "extraction", "stem",
                       "humanities"}


@pytest.fixture(scope="module")
def data() -> Path:
    try:
        return find_data(get_eval("routellm"))
    except ConfigError as exc:
        pytest.skip(f"RouteLLM data not found: {exc}")


@pytest.fixture(scope="module")
def expected(data: Path) -> dict[str, tuple[int, int]]:
    """Task type -> (n, passed), from the raw files: a candidate passes when its grade is at
    least GPT-4's (MT-Bench), or when it is right or GPT-4 is wrong too (GSM8K)."""
    category = {}
    for line in (data / "question.jsonl").read_text().splitlines():
        q = json.loads(line)
        category[q["question_id"]] = q["category"]
    grades = {}
    for line in (data / "judgements.jsonl").read_text().splitlines():
        j = json.loads(line)
        grades[(j["question_id"], j["turn"], j["model"])] = j["score"]
    n: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    for (qid, turn, model), grade in grades.items():
        if model == PRIMARY:
            n[category[qid]] += 1
            lost[category[qid]] += grades[(qid, turn, MIXTRAL)] < grade
    with (data / "gsm8k_responses.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            n["math"] += 1
            lost["math"] += row[PRIMARY] == "True" and row[MIXTRAL] == "False"
    return {task: (n[task], n[task] - lost[task]) for task in n}


@pytest.fixture(scope="module")
def eval_run(data: Path) -> EvalRun:
    return anyio.run(lambda: run_eval(get_eval("routellm"), data=data, examples=1))


# --------------------------------------------------------------------------- the loader


def test_the_loader_makes_one_exchange_per_question_turn_and_gsm8k_problem(data: Path) -> None:
    records = list(exchanges(data))
    sources = Counter(r.metadata["source"] for r in records)
    assert sources == {"routellm/mt-bench": 160, "routellm/gsm8k": 1319}
    assert len({r.id for r in records}) == 1479
    assert len({o.id for r in records for o in r.outputs}) == 1479
    tasks = Counter(r.task_type for r in records)
    assert tasks == {**{c: 20 for c in MT_BENCH_CATEGORIES}, "math": 1339}
    assert all(r.primary_model == PRIMARY and r.cost_usd is None and r.input_tokens is None
               for r in records)
    assert all([o.model for o in r.outputs] == [CANDIDATE] and r.outputs[0].cost_usd is None
               for r in records)

    turns = {(r.metadata["question_id"], r.metadata["turn"]): r for r in records
             if r.metadata["source"] == "routellm/mt-bench"}
    first, second = turns[(81, 1)], turns[(81, 2)]
    assert [m["role"] for m in first.request["messages"]] == ["user"]
    assert [m["role"] for m in second.request["messages"]] == ["user", "assistant", "user"]
    # turn 2's request carries GPT-4's own turn-1 answer, as extracted from turn 1's judge prompt
    assert second.request["messages"][1]["content"] == first.primary_output
    assert second.request["messages"][0] == first.request["messages"][0]
    assert second.request["messages"][2]["content"].startswith("Rewrite your previous response")
    assert first.primary_output and "[The End of" not in first.primary_output
    assert second.outputs[0].output and "### Assistant A:" not in second.outputs[0].output
    assert set(first.metadata["outcomes"]) == {PRIMARY, CANDIDATE}
    assert all("grade" in v for v in first.metadata["outcomes"].values())

    gsm = next(r for r in records if r.metadata["source"] == "routellm/gsm8k")
    assert gsm.request["messages"][0]["content"].startswith("Janet")
    assert gsm.metadata["outcomes"] == {PRIMARY: {"correct": True}, CANDIDATE: {"correct": True}}


def test_loading_twice_stores_nothing_twice(data: Path, tmp_path: Path) -> None:
    async def main() -> tuple[int, int]:
        async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}") as store:
            assert await load(store, data) == {"mt-bench": 160, "gsm8k": 1319}
            await load(store, data)
            async with store.engine.connect() as conn:
                x = await conn.scalar(select(func.count()).select_from(Exchange))
                o = await conn.scalar(select(func.count()).select_from(CandidateOutput))
                return int(x or 0), int(o or 0)

    assert anyio.run(main) == (1479, 1479)


# --------------------------------------------------------------------------- the verdicts


def test_the_verdicts_match_the_raw_data(
    eval_run: EvalRun, expected: dict[str, tuple[int, int]]
) -> None:
    rows = {r["task"]: r for r in eval_run.rows()}
    assert set(rows) == MT_BENCH_CATEGORIES | {"math"}
    for task, (n, passed) in expected.items():
        row = rows[task]
        assert (row["model"], row["n"], row["passed"]) == (CANDIDATE, n, passed), task
        assert row["pass_rate"] == pytest.approx(passed / n)
        assert row["lower_bound"] < row["pass_rate"]
        assert row["verdict"] != "PROMOTE", task
    assert rows["math"]["n"] == 1339 and rows["math"]["verdict"] == "HOLD"
    assert rows["math"]["pass_rate"] == pytest.approx(1 - (383 + 9) / 1339)
    for task in MT_BENCH_CATEGORIES:  # 10 questions x 2 turns: too few to decide
        assert (rows[task]["n"], rows[task]["verdict"]) == (20, "NEED MORE DATA"), task
    assert rows["coding"]["pass_rate"] == pytest.approx(7 / 20)
    assert eval_run.scoring.outputs == 1479 and eval_run.scoring.left_unscored == 0


# --------------------------------------------------------------------------- the CLI


def test_the_cli_prints_one_line_per_task_type(data: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "out" / "routellm.json"
    result = cli("eval", "routellm", "--data", str(data.parent), "--json", str(out),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("task "))
    assert re.split(r"\s{2,}", lines[header]) == [
        "task", "candidate", "verdict", "n", "pass rate", "lower bound", "reason"]
    table = [re.split(r"\s{2,}", line, maxsplit=6) for line in lines[header + 1:]
             if not line.startswith("json:")]
    assert sorted(r[0] for r in table) == sorted(MT_BENCH_CATEGORIES | {"math"})
    by_task = {r[0]: r for r in table}
    assert by_task["math"][1:5] == ["mixtral", "HOLD", "1,339", "70.7%"]
    assert by_task["coding"][1:5] == ["mixtral", "NEED MORE DATA", "20", "35.0%"]
    assert "fewer than the 100 required" in by_task["writing"][6]
    twin = json.loads(out.read_text())
    assert {t["task"] for t in twin["tasks"]} == MT_BENCH_CATEGORIES | {"math"}


def test_unknown_evals_and_missing_data_are_one_line_errors(tmp_path: Path, cli) -> None:
    unknown = cli("eval", "nope", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        f"error: NAME: unknown eval 'nope'; known evals: {', '.join(sorted(EVALS))}")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = cli("eval", "routellm", "--data", str(empty), cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: --data: ") and "question.jsonl" in missing.stderr
    from_env = cli("eval", "routellm", env={DATASETS_ENV: str(empty)}, cwd=tmp_path)
    assert from_env.returncode == 2 and f"error: {DATASETS_ENV}: " in from_env.stderr


def test_without_data_anywhere_the_error_names_the_option_and_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shadowroute import datasets
    from shadowroute.evals import runner

    monkeypatch.delenv(DATASETS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "_checkout", lambda: tmp_path)
    monkeypatch.setattr(datasets, "project_datasets_dir", lambda: None)  # an installed wheel
    with pytest.raises(ConfigError, match=rf"pass --data DIR or set \${DATASETS_ENV}"):
        find_data(get_eval("routellm"))


def test_the_eval_data_ships_with_the_project_and_its_licences(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    from shadowroute.datasets import datasets_dirs, project_datasets_dir

    own = project_datasets_dir()
    assert own is not None and own.parent.name == "evals"
    for name in ("routellm/LICENSE", "routellm/gsm8k_responses.csv", "routellm/question.jsonl",
                 "routellm/judgements.jsonl", "llmbar/LICENSE", "llmbar/mt_bench_human.json"):
        assert (own / name).is_file(), name
    monkeypatch.delenv(DATASETS_ENV, raising=False)
    assert own in datasets_dirs(cwd=tmp_path)  # found from anywhere, no shared/ folder needed
