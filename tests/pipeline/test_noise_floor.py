"""The noise floor: a slice of exchanges gets a second answer from the primary
(``primary@replay``), scored like any candidate; end to end against the fake server."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shadowroute import Shadow, load_config
from shadowroute.fakellm import FakeLLMServer, default_settings, sample_requests
from shadowroute.records import NOISE_FLOOR_MODEL, utcnow
from shadowroute.scoring import run_scoring
from shadowroute.store import CandidateOutput, Store
from shadowroute.store.models import Score
from shadowroute.store.queries.routes import save_report
from support.pipeline import REQUEST

pytestmark = pytest.mark.anyio


@pytest.fixture
def primary_answer(
    completion: Callable[..., dict[str, Any]],
) -> Callable[[str], Awaitable[dict[str, Any]]]:
    """The production call: the primary answers ``text``."""

    async def answer(text: str) -> dict[str, Any]:
        return completion(text)

    return answer


async def test_replays_the_primary_on_the_configured_slice(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, stored,
    primary_answer,
) -> None:
    config = make_config(db_url, shadow_preset, tasks={"classify_intent": {
        "candidates": ["small"], "sample_rate": 1.0, "noise_floor_rate": 1.0}})
    frontier, small = fake_candidate("frontier", text="refund"), fake_candidate("small")
    async with Shadow(config, providers={"small": small, "frontier": frontier}) as sh:
        for i in range(5):
            request = {**REQUEST, "messages": [{"role": "user", "content": f"parcel {i}"}]}
            await sh.shadow(task="classify_intent", request=request, call=lambda: primary_answer("shipping"))
    exchanges, outputs = await stored(config.database_url)
    assert len(exchanges) == 5 and sh.stats.primary_replays == 5
    replays = [o for o in outputs if o.model == NOISE_FLOOR_MODEL]
    assert len(replays) == 5 and {o.output for o in replays} == {"refund"}
    assert all(o.cost_usd is not None for o in replays)  # the replay's spend is shadow spend
    assert len(frontier.requests) == 5 and frontier.requests[0]["messages"][0]["content"] == "parcel 0"


async def test_no_replay_without_candidates_or_at_rate_zero(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, primary_answer,
) -> None:
    config = make_config(db_url, shadow_preset, default_sample_rate=1.0, tasks={
        "classify_intent": {"candidates": ["small"], "sample_rate": 1.0, "noise_floor_rate": 0.0}})
    frontier = fake_candidate("frontier")
    async with Shadow(config, providers={"small": fake_candidate("small"), "frontier": frontier}) as sh:
        await sh.shadow(task="classify_intent", request=REQUEST, call=lambda: primary_answer("x"))
        await sh.shadow(task="undeclared", request=REQUEST, call=lambda: primary_answer("x"))
    assert frontier.requests == [] and sh.stats.primary_replays == 0


async def test_an_undeclared_primary_is_counted_and_logged_once(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture, make_config, shadow_preset, stored, fake_candidate, primary_answer
) -> None:
    config = make_config(db_url, shadow_preset, tasks={"classify_intent": {
        "candidates": ["small"], "sample_rate": 1.0, "noise_floor_rate": 1.0}})
    request = {**REQUEST, "model": "gpt-unknown"}
    with caplog.at_level(logging.WARNING, logger="shadowroute"):
        async with Shadow(config, providers={"small": fake_candidate("small")}) as sh:
            for _ in range(3):
                await sh.shadow(task="classify_intent", request=request, call=lambda: primary_answer("x"))
    assert sh.stats.replay_unavailable == 3 and sh.stats.primary_replays == 0
    warnings = [r for r in caplog.records if "no noise floor for primary 'gpt-unknown'" in r.getMessage()]
    assert len(warnings) == 1
    _, outputs = await stored(config.database_url)
    assert {o.model for o in outputs} == {"small"}


async def test_seeded_replay_choice_is_independent_of_sampling(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, primary_answer,
) -> None:
    config = make_config(db_url, shadow_preset, seed=11, mirror={"queue_size": 1000}, tasks={
        "classify_intent": {"candidates": ["small"], "sample_rate": 0.5, "noise_floor_rate": 0.5}})
    frontier = fake_candidate("frontier")
    async with Shadow(config, providers={"small": fake_candidate("small"), "frontier": frontier}) as sh:
        for i in range(300):
            request = {**REQUEST, "messages": [{"role": "user", "content": f"q{i}"}]}
            await sh.shadow(task="classify_intent", request=request, call=lambda: primary_answer("x"))
    # Same hash for both decisions would replay every sampled call (or none): it must be ~half.
    assert 100 <= sh.stats.sampled <= 200 and sh.stats.mirrored == sh.stats.sampled
    assert 0.3 < sh.stats.primary_replays / sh.stats.sampled < 0.7


async def test_capture_replay_and_score_end_to_end(tmp_path: Path) -> None:
    """Real HTTP against the fake server: a frontier that re-samples every repeat disagrees
    with itself on some requests, and the scores show it; the judge scores every pair."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}"
    settings = default_settings(latency_scale=0.0)
    with FakeLLMServer(settings) as srv:
        srv.update_model("frontier", consistency=0.0, task_accuracy={"classify_intent": 0.7})
        base = srv.base_url + "/v1"
        config = load_config(data={
            "database_url": url,
            "seed": 3,
            "models": {name: {"base_url": base, "input_price": 1.0, "output_price": 2.0}
                       for name in ("frontier", "small", "judge")},
            "judge": {"model": "judge", "concurrency": 8, "when": "always"},  # exact decides each pair
            "tasks": {"classify_intent": {
                "candidates": ["small"], "sample_rate": 1.0, "noise_floor_rate": 1.0,
                "scorers": ["exact", "judge"]}},
            "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
        })
        async with Shadow(config) as sh:
            async with httpx.AsyncClient(base_url=base) as client:
                for item in sample_requests(60, seed=5, tasks=["classify_intent"]):
                    body = {"model": "frontier", **item.request}

                    async def call(body: dict[str, Any] = body) -> dict[str, Any]:
                        response = await client.post("/chat/completions", json=body)
                        return response.json()

                    await sh.shadow(task="classify_intent", request=body, call=call)
        report = await run_scoring(config)
        judge_calls = srv.stats()["models"]["judge"]["calls"]

    assert sh.stats.primary_replays == 60
    assert report.outputs == 120 and report.left_unscored == 0
    assert judge_calls == report.judge_calls == 2 * 120  # both orders, every output
    async with await Store.open(url) as store, store.session() as s:
        rows = (await s.execute(
            select(CandidateOutput.model, Score.scorer, Score.passed)
            .join(Score, Score.output_id == CandidateOutput.id)
        )).all()
    replay_exact = [passed for model, scorer, passed in rows if model == NOISE_FLOOR_MODEL and scorer == "exact"]
    assert len(replay_exact) == 60
    disagreement = replay_exact.count(False) / 60
    # Two independent draws of a 70%-accurate model disagree on roughly 40% of requests.
    assert 0.15 < disagreement < 0.7
    assert {scorer for _, scorer, _ in rows} == {"exact", "judge"}


async def _save_replay_shares(db_url: str, shares: dict[str, float]) -> None:
    """A report whose overview says which replay share each task type should run at."""
    async with await Store.open(db_url) as store:
        await save_report(store, {"id": "r1", "created_at": utcnow(), "since": None,
                                  "overview": {"replay_shares": shares}}, [])


async def test_the_latest_report_raises_the_replay_share_while_a_decision_is_open(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, primary_answer,
) -> None:
    """The report raises a task type's replay share to ``evaluation_replay_rate`` while the
    noise floor keeps non-inferiority open; a running pipeline replays that share, never more
    than the configured evaluation rate and never any when ``noise_floor_rate`` is 0."""
    tasks = {"classify_intent": {"candidates": ["small"], "sample_rate": 1.0,
                                 "noise_floor_rate": 0.1},
             "extract_order": {"candidates": ["small"], "sample_rate": 1.0,
                               "noise_floor_rate": 0.0}}
    config = make_config(db_url, shadow_preset, seed=5, mirror={"queue_size": 1000},
                         decision={"evaluation_replay_rate": 0.6}, tasks=tasks)

    async def replayed(task: str) -> float:
        frontier = fake_candidate("frontier")
        async with Shadow(config, providers={"small": fake_candidate("small"),
                                             "frontier": frontier}) as sh:
            for i in range(300):
                request = {**REQUEST, "messages": [{"role": "user", "content": f"q{i}"}]}
                await sh.shadow(task=task, request=request, call=lambda: primary_answer("x"))
        return sh.stats.primary_replays / sh.stats.sampled

    assert 0.04 < await replayed("classify_intent") < 0.17  # the base 10%: no report yet
    await _save_replay_shares(db_url, {"classify_intent": 0.9, "extract_order": 0.9})
    assert 0.5 < await replayed("classify_intent") < 0.7  # capped at evaluation_replay_rate
    assert await replayed("extract_order") == 0.0  # replays turned off stay off
