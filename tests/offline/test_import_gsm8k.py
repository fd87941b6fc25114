"""The issue's acceptance, end to end on real outputs: GSM8K answers of GPT-4 Turbo (primary)
and Mixtral 8x7B (candidate), written as ``shadowroute import`` lines with ``candidates``,
imported, scored with ``extract`` (its defaults) and decided by the report.

"On the GSM8K pairs, imported with `import` (primary GPT-4, candidate Mixtral) and scored with
`extract` defaults: precision >= 0.97 and recall >= 0.80 against the recorded correctness, and
the report says HOLD for Mixtral on math. With no scorer configured, the default scorer does not
promote Mixtral on math."

Precision and recall are computed here from the CSV's correctness columns, not from the
``correctness`` scorer: truth = Mixtral is right, or GPT-4 is wrong too.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import select

from shadowroute.config import Config
from shadowroute.datasets import project_datasets_dir
from shadowroute.offline.candidates import output_id
from shadowroute.offline.importer import exchange_id, import_file
from shadowroute.report import build_report
from shadowroute.scoring import run_scoring
from shadowroute.store import Store
from shadowroute.store.models import Score
from support.offline import write_jsonl

PRIMARY = "gpt-4-1106-preview"
UPSTREAM = "mistralai/Mixtral-8x7B-Instruct-v0.1"
MODELS = {
    PRIMARY: {"base_url": "http://127.0.0.1:9/v1", "input_price": 10.0, "output_price": 30.0},
    "mixtral": {"base_url": "http://127.0.0.1:9/v1", "model": UPSTREAM, "input_price": 0.6,
                "output_price": 0.6},
}


def import_lines() -> list[dict[str, Any]]:
    """One import line per GSM8K problem: the prompt, GPT-4's answer as text, Mixtral's as a
    candidate, and both recorded outcomes."""
    datasets = project_datasets_dir()
    assert datasets is not None, "the GSM8K outputs ship in evals/datasets/ of the checkout"
    with (datasets / "routellm" / "gsm8k_responses.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [{
        "request": {"model": PRIMARY, "messages": [{"role": "user", "content": row["prompt"]}]},
        "response": row[f"{PRIMARY}_response"],
        "candidates": {"mixtral": row[f"{UPSTREAM}_response"]},
        "task": "math",
        "metadata": {"outcomes": {PRIMARY: {"correct": row[PRIMARY] == "True"},
                                  "mixtral": {"correct": row[UPSTREAM] == "True"}}},
    } for row in rows]


def verdict(config: Config) -> Any:
    async def main() -> Any:
        await run_scoring(config)
        async with await Store.open(config.database_url) as store:
            report = await build_report(config, store, since=None, examples=1)
        (math,) = [t for t in report.tasks if t.task == "math"]
        (mixtral,) = math.candidates
        return mixtral

    return anyio.run(main)


def test_gsm8k_imported_and_scored_with_extract_holds_mixtral_on_math(
    tmp_path: Path, make_config,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gsm8k.db'}"
    lines = import_lines()
    truth = {output_id(exchange_id(line), "mixtral"):
             line["metadata"]["outcomes"]["mixtral"]["correct"]
             or not line["metadata"]["outcomes"][PRIMARY]["correct"] for line in lines}
    assert (len(truth), sum(truth.values())) == (1319, 936)
    path = write_jsonl(tmp_path / "gsm8k.jsonl", lines)
    with_extract = make_config(url, models=MODELS, tasks={
        "math": {"candidates": ["mixtral"], "scorers": ["extract"]}})

    async def do_import() -> Any:
        async with await Store.open(url, auto_migrate=True) as store:
            return await import_file(with_extract, store, path)

    report = anyio.run(do_import)
    assert (report.imported, report.outputs, report.bad) == (1319, 1319, 0), report.summary()
    assert dict(report.tasks) == {"math": 1319} and not report.undeclared
    assert report.unknown_usage == 1319  # text answers: no usage, so no cost either

    mixtral = verdict(with_extract)
    assert (mixtral.model, mixtral.verdict) == ("mixtral", "HOLD"), mixtral.reason
    assert mixtral.n == 1319 and mixtral.pass_rate < 0.95

    async def extract_scores() -> dict[str, bool | None]:
        async with await Store.open(url) as store, store.session() as session:
            rows = await session.execute(select(Score.output_id, Score.passed)
                                         .where(Score.scorer == "extract"))
            return {oid: ok for oid, ok in rows}

    passed = anyio.run(extract_scores)
    assert set(passed) == set(truth)  # every imported output was scored, under its own id
    tp = sum(1 for oid, p in passed.items() if p and truth[oid])
    fp = sum(1 for oid, p in passed.items() if p and not truth[oid])
    fn = sum(1 for oid, p in passed.items() if p is False and truth[oid])
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert precision >= 0.97 and recall >= 0.80, (precision, recall)
    assert mixtral.passed == tp + fp

    # Re-scored with no scorer configured: the default scorer does not promote Mixtral either.
    default = make_config(url, models=MODELS, tasks={"math": {"candidates": ["mixtral"]}})
    mixtral = verdict(default)
    assert mixtral.verdict != "PROMOTE" and mixtral.n == 1319, mixtral.reason

