"""The decision counts outlive retention: `prune` folds what it deletes into `evidence_archive`
in the same transaction, so a report after pruning decides on the same evidence as before it
(SQLite and Postgres). Crafted pairs scored with the real `score()`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shadowroute.config import Config
from shadowroute.records import NOISE_FLOOR_MODEL, utcnow
from shadowroute.report import build_report
from shadowroute.scoring import ScoreOptions, plan_for, score
from shadowroute.store import Store
from shadowroute.store.queries.evidence import (
    TASK_ROW,
    add_counts,
    archived_counts,
    evidence_counts,
)
from shadowroute.store.retention import prune
from support.config import BIG_MINI_TINY, ORDER_SCHEMA
from support.report import Out, xchg

pytestmark = pytest.mark.anyio


@pytest.fixture
def config(store: Store, make_config: Callable[..., Config], tmp_path: Path) -> Config:
    schema = tmp_path / "order.schema.json"
    schema.write_text(json.dumps(ORDER_SCHEMA), encoding="utf-8")
    return make_config(store.url, models=BIG_MINI_TINY, tasks={
        "order": {"candidates": ["mini"], "scorers": ["schema", "exact"],
                  "json_schema": str(schema), "min_samples": 10},
    })


def order(ok: bool) -> str:
    return '{"sku": "A1", "qty": 2}' if ok else '{"sku": 7}'


async def seed(store: Store) -> None:
    """40 exchanges 40 days old and 20 from yesterday: mini breaks the schema on every 5th, the
    replay on every 10th (at 3), the primary's own answer on every 20th (at 7)."""
    batch = []
    for i in range(60):
        outs = [Out("mini", order(i % 5 != 0)), Out(NOISE_FLOOR_MODEL, order(i % 10 != 3))]
        batch.append(xchg("order", order(i % 20 != 7), *outs, age_days=40 if i < 40 else 1))
    await store.write(batch)


async def totals(store: Store, keys: dict[str, Any]) -> dict[tuple[str, str], dict[str, int]]:
    async with store.engine.connect() as conn:
        return add_counts(await evidence_counts(conn, keys), await archived_counts(conn, keys))


async def test_prune_keeps_every_decision_count_and_the_verdict(
    store: Store, config: Config, candidate_of,
) -> None:
    await seed(store)
    await score(config, store, ScoreOptions())
    keys = {"order": plan_for(config, "order").keys()}
    before = await totals(store, keys)
    mini = before[("order", "mini")]
    # mini fails i = 0 (mod 5) and, against a broken primary answer, i = 7, 27, 47: 15; the
    # replay fails i = 3 (mod 10) and those three too: 9, three of them on the same exchanges.
    mini = before[("order", "mini")]
    assert (mini["counted"], mini["passed"]) == (60, 45)
    assert before[("order", NOISE_FLOOR_MODEL)]["passed"] == 51
    assert (mini["pairs"], mini["pairs_both_failed"], mini["pairs_candidate_failed"],
            mini["pairs_replay_failed"]) == (60, 3, 12, 6)
    schema = before[("order", TASK_ROW)]
    assert (schema["schema_checked"], schema["schema_invalid"]) == (60, 3)
    report_before = await build_report(config, store)

    result = await prune(store, utcnow() - timedelta(days=30), batch=7, keys_by_task=keys)
    assert result.exchanges == 40 and result.batches == 6 and result.archived > 0

    async with store.engine.connect() as conn:
        stored = await evidence_counts(conn, keys)
        archived = await archived_counts(conn, keys)
    assert stored[("order", "mini")]["counted"] == 20
    assert archived[("order", "mini")]["counted"] == 40  # each batch added once, none twice
    assert await totals(store, keys) == before

    after = await build_report(config, store)
    was, now = candidate_of(report_before, "order", "mini"), candidate_of(after, "order", "mini")
    assert (now.n, now.passed, now.verdict, now.reason) == (was.n, was.passed, was.verdict,
                                                            was.reason)
    assert now.outputs == 20  # what is shown is what is stored


async def test_a_scorer_change_starts_the_evidence_again(
    store: Store, config: Config, make_config: Callable[..., Config],
) -> None:
    """Archived counts are keyed by the scorer versions they were taken under: a task type
    scored differently from now on does not inherit them."""
    await seed(store)
    await score(config, store, ScoreOptions())
    keys = {"order": plan_for(config, "order").keys()}
    await prune(store, utcnow() - timedelta(days=30), keys_by_task=keys)
    changed = make_config(store.url, models=BIG_MINI_TINY, tasks={
        "order": {"candidates": ["mini"], "scorers": ["exact"], "min_samples": 10}})
    other = {"order": plan_for(changed, "order").keys()}
    assert other != keys
    async with store.engine.connect() as conn:
        assert await archived_counts(conn, other) == {}
        assert (await archived_counts(conn, keys))[("order", "mini")]["counted"] == 40


async def test_without_keys_prune_archives_nothing(store: Store, config: Config) -> None:
    await seed(store)
    await score(config, store, ScoreOptions())
    result = await prune(store, utcnow() - timedelta(days=30))
    assert result.archived == 0
    keys = {"order": plan_for(config, "order").keys()}
    assert (await totals(store, keys))[("order", "mini")]["counted"] == 20


async def test_cli_prune_archives_with_the_configs_scorers(
    store: Store, config: Config, cli, tmp_path: Path,
) -> None:
    """`shadowroute prune` passes the config's current scorer versions, so the report that
    follows still decides on all 60 outputs."""
    await seed(store)
    await score(config, store, ScoreOptions())
    toml = tmp_path / "shadowroute.toml"
    toml.write_text(
        f'database_url = "{store.url}"\n'
        '[models.big]\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[models.mini]\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[tasks.order]\ncandidates = ["mini"]\nscorers = ["schema", "exact"]\n'
        f'json_schema = "{tmp_path / "order.schema.json"}"\nmin_samples = 10\n')
    result = cli("prune", "--older-than", "30d", "--config", str(toml), cwd=tmp_path,
                 env={"SHADOWROUTE_DATABASE_URL": ""})
    assert result.returncode == 0, result.stderr
    assert "deleted 40 exchanges" in result.stdout
    assert "their decision counts kept in" in result.stdout
    keys = {"order": plan_for(config, "order").keys()}
    assert (await totals(store, keys))[("order", "mini")]["counted"] == 60
