"""Settled candidates: a candidate the latest report decided for good (PROMOTE, or HOLD) is
called on ``[decision] maintenance_rate`` of its task's sampled calls, and at the full rate
again when the primary or the task's settings change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shadowroute import Shadow
from shadowroute.config import Config
from shadowroute.store import CandidateOutput, Exchange, Store
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


async def _settle(config: Config, verdict: str) -> None:
    """A report that settled ``small`` for classify_intent against frontier under ``config``."""
    settled = {"classify_intent": {"small": {
        "verdict": verdict, "primary": "frontier",
        "policy": config.policy_fingerprint("classify_intent")}}}
    async with await Store.open(config.database_url) as store:
        await save_report(store, {"id": "r1", "created_at": datetime.now(UTC), "since": None,
                                  "overview": {"settled": settled}}, [])


async def _calls(config: Config, primary: str, fake_candidate, completion) -> dict[str, int]:
    """Candidate outputs stored per model for CALLS sampled calls answered by ``primary``."""
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
        return dict(rows.all())


async def _answer(completion, model: str) -> dict[str, Any]:
    return completion("refund", model=model)


async def test_a_settled_candidate_is_called_at_the_maintenance_rate(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, completion,
) -> None:
    config = _config(make_config, db_url, shadow_preset)
    await _settle(config, "HOLD")
    counts = await _calls(config, "frontier", fake_candidate, completion)
    assert counts["tiny"] == CALLS  # not settled: every sampled call
    # Binomial(400, 0.25): mean 100, sd 8.7; the seeded draw is fixed, the bounds are 4.6 sd.
    assert 60 <= counts["small"] <= 140


async def test_a_new_primary_or_changed_settings_bring_the_full_rate_back(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, completion,
) -> None:
    config = _config(make_config, db_url, shadow_preset)
    await _settle(config, "PROMOTE")
    # Decided against frontier: another primary's calls shadow it at the full rate.
    counts = await _calls(config, "frontier-2", fake_candidate, completion)
    assert counts == {"small": CALLS, "tiny": CALLS}
    # The task's bar moved since the report: its verdict no longer holds until the next one.
    moved = _config(make_config, db_url, shadow_preset, required_quality=0.9)
    assert moved.policy_fingerprint("classify_intent") != config.policy_fingerprint("classify_intent")
    counts = await _calls(moved, "frontier", fake_candidate, completion)
    assert counts == {"small": CALLS, "tiny": CALLS}


async def test_maintenance_rate_one_keeps_every_call(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, completion,
) -> None:
    config = _config(make_config, db_url, shadow_preset, maintenance_rate=1.0)
    await _settle(config, "HOLD")
    counts = await _calls(config, "frontier", fake_candidate, completion)
    assert counts == {"small": CALLS, "tiny": CALLS}
