"""Candidate shares: a candidate the latest report decided for good (PROMOTE, or HOLD) is
called on ``[decision] maintenance_rate`` of its task's sampled calls, an undecided one on the
share the report allocated it, a retired one on none; each at the full rate again when the
primary or the task's settings change (or, retired, on ``resume``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shadowroute import Shadow
from shadowroute.config import Config
from shadowroute.store import CandidateOutput, Exchange, Store
from shadowroute.store.queries.retirements import record_retirement
from shadowroute.store.queries.routes import save_report

pytestmark = pytest.mark.anyio

CALLS = 400
RATE = 0.25


def _config(make_config, db_url: str, shadow_preset: dict[str, Any], **decision: Any) -> Config:
    return make_config(db_url, shadow_preset, {
        "seed": 11,
        "tasks": {"classify_intent": {"candidates": ["small", "tiny"], "sample_rate": 1.0}},
        "decision": {"maintenance_rate": RATE, **decision},
        "mirror": {"queue_size": 1000},
    })


async def _settle(config: Config, verdict: str, rate: float = RATE,
                  why: str = "settled") -> None:
    """A report that put ``small`` for classify_intent against frontier at ``rate`` under
    ``config``."""
    rates = {"classify_intent": {"small": {
        "rate": rate, "why": why, "verdict": verdict, "primary": "frontier",
        "policy": config.policy_fingerprint("classify_intent")}}}
    async with await Store.open(config.database_url) as store:
        await save_report(store, {"id": "r1", "created_at": datetime.now(UTC), "since": None,
                                  "overview": {"shadow_rates": rates}}, [])


async def _calls(config: Config, primary: str, fake_candidate,
                 completion) -> tuple[dict[str, int], Any]:
    """After CALLS more sampled calls answered by ``primary``: the candidate outputs stored per
    model for that primary's exchanges (all so far), and this pipeline's stats."""
    providers = {"small": fake_candidate("small"), "tiny": fake_candidate("tiny")}
    async with Shadow(config, providers=providers) as sh:
        for i in range(CALLS):
            request = {"model": primary, "messages": [{"role": "user", "content": f"q{i}"}]}
            await sh.shadow(task="classify_intent", request=request,
                            call=lambda: _answer(completion, primary))
    async with await Store.open(config.database_url) as store, store.session() as s:
        rows = await s.execute(
            select(CandidateOutput.model, func.count())
            .join(Exchange, Exchange.id == CandidateOutput.exchange_id)
            .where(Exchange.primary_model == primary).group_by(CandidateOutput.model))
        return dict(rows.all()), sh.stats


async def _answer(completion, model: str) -> dict[str, Any]:
    return completion("refund", model=model)


async def test_a_settled_candidate_is_called_at_the_maintenance_rate(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, completion,
) -> None:
    config = _config(make_config, db_url, shadow_preset)
    await _settle(config, "HOLD")
    counts, stats = await _calls(config, "frontier", fake_candidate, completion)
    assert counts["tiny"] == CALLS  # not settled: every sampled call
    # Binomial(400, 0.25): mean 100, sd 8.7; the seeded draw is fixed, the bounds are 4.6 sd.
    assert 60 <= counts["small"] <= 140
    assert stats.skipped_settled == CALLS - counts["small"]
    assert stats.skipped_allocated == stats.skipped_retired == 0


async def test_an_undecided_candidate_is_called_on_its_allocated_share(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, completion,
) -> None:
    config = _config(make_config, db_url, shadow_preset)
    await _settle(config, "NEED MORE DATA", rate=0.5, why="allocated")
    counts, stats = await _calls(config, "frontier", fake_candidate, completion)
    assert counts["tiny"] == CALLS
    assert 160 <= counts["small"] <= 240  # Binomial(400, 0.5): sd 10
    assert stats.skipped_allocated == CALLS - counts["small"]


async def test_a_retired_candidate_is_not_called_until_resumed_or_a_new_primary(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, completion,
) -> None:
    config = _config(make_config, db_url, shadow_preset)
    await _settle(config, "HOLD")  # the retirement wins over the report's share
    async with await Store.open(config.database_url) as store:
        await record_retirement(store, task="classify_intent", model="small", action="retire",
                                primary="frontier", actor="test", reason=None)
    counts, stats = await _calls(config, "frontier", fake_candidate, completion)
    assert counts == {"tiny": CALLS}
    assert stats.skipped_retired == CALLS
    counts, _ = await _calls(config, "frontier-2", fake_candidate, completion)
    assert counts == {"small": CALLS, "tiny": CALLS}  # a new primary: shadowed again
    async with await Store.open(config.database_url) as store:
        await record_retirement(store, task="classify_intent", model="small", action="resume",
                                primary="frontier", actor="test", reason=None)
    counts, _ = await _calls(config, "frontier", fake_candidate, completion)
    assert 60 <= counts["small"] <= 140  # back to the report's maintenance rate


async def test_a_new_primary_or_changed_settings_bring_the_full_rate_back(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, completion,
) -> None:
    config = _config(make_config, db_url, shadow_preset)
    await _settle(config, "PROMOTE")
    # Decided against frontier: another primary's calls shadow it at the full rate.
    counts, _ = await _calls(config, "frontier-2", fake_candidate, completion)
    assert counts == {"small": CALLS, "tiny": CALLS}
    # The task's bar moved since the report: its verdict no longer holds until the next one.
    moved = _config(make_config, db_url, shadow_preset, required_quality=0.9)
    assert moved.policy_fingerprint("classify_intent") != config.policy_fingerprint("classify_intent")
    counts, _ = await _calls(moved, "frontier", fake_candidate, completion)
    assert counts == {"small": CALLS, "tiny": CALLS}


async def test_maintenance_rate_one_keeps_every_call(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, completion,
) -> None:
    config = _config(make_config, db_url, shadow_preset, maintenance_rate=1.0)
    await _settle(config, "HOLD", rate=1.0)
    counts, _ = await _calls(config, "frontier", fake_candidate, completion)
    assert counts == {"small": CALLS, "tiny": CALLS}
