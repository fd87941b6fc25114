"""shadow() and Shadow: pass-through, sampling, queue limits, resilience, shutdown, storage."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from shadowroute import Shadow, shadow
from shadowroute.errors import ServerError
from shadowroute.records import Completion
from shadowroute.store import Exchange, Store
from support.config import MODELS
from support.pipeline import REQUEST

pytestmark = pytest.mark.anyio


@pytest.fixture
def primary_call(
    completion: Callable[..., dict[str, Any]],
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The production call: the primary answers ``text``, after ``delay`` seconds."""

    async def primary_call(text: str = "shipping", delay: float = 0.0) -> dict[str, Any]:
        if delay:
            await anyio.sleep(delay)
        return completion(text)

    return primary_call


async def test_result_and_exceptions_pass_through_unchanged(
    tmp_path: Path, db_url: str, make_config, shadow_preset, completion, fake_candidate,
) -> None:
    config = make_config(db_url, shadow_preset)
    async with Shadow(config, providers={"small": fake_candidate("small")}) as sh:
        answer = completion("refund")
        result = await shadow(task="classify_intent", request=REQUEST, call=lambda: _value(answer))
        assert result is answer

        class Boom(Exception):
            pass

        boom = Boom("primary is down")

        async def failing() -> None:
            raise boom

        with pytest.raises(Boom) as caught:
            await sh.shadow(task="classify_intent", request=REQUEST, call=failing)
        assert caught.value is boom
    assert sh.stats.primary_errors == 1
    assert sh.stats.offered == 2 and sh.stats.mirrored == 1 and sh.stats.stored_exchanges == 1


async def _value(value: Any) -> Any:
    return value


async def test_pairs_are_stored_with_usage_latency_cost_and_snapshot_of_request(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, stored,
    primary_call,
) -> None:
    config = make_config(db_url, shadow_preset, tasks={"classify_intent": {"candidates": ["small", "tiny"], "sample_rate": 1.0}})
    small, tiny = fake_candidate("small", text="shipping"), fake_candidate("tiny", text="refund")
    request = {"model": "frontier", "messages": [{"role": "user", "content": "Where is my parcel?"}]}
    async with Shadow(config, providers={"small": small, "tiny": tiny}) as sh:
        await sh.shadow(task="classify_intent", request=request, call=primary_call, metadata={"user": "u1"})
        # A chat loop appends to its history right after the call: the capture must not change.
        request["messages"].append({"role": "assistant", "content": "shipping"})
    exchanges, outputs = await stored(config.database_url)
    assert len(exchanges) == 1
    exchange = exchanges[0]
    assert exchange.task_type == "classify_intent"
    assert exchange.primary_model == "frontier"
    assert exchange.source == "shadow()"
    assert exchange.request["messages"] == [{"role": "user", "content": "Where is my parcel?"}]
    assert exchange.primary_output == "shipping"
    assert (exchange.input_tokens, exchange.output_tokens) == (12, 1)
    assert exchange.cost_usd == pytest.approx((12 * 2.5 + 1 * 10) / 1e6)
    assert exchange.latency_ms is not None and exchange.latency_ms >= 0
    assert exchange.meta == {"user": "u1"}
    by_model = {o.model: o for o in outputs}
    assert by_model["small"].output == "shipping" and by_model["tiny"].output == "refund"
    assert all(o.exchange_id == exchange.id and o.error_kind is None for o in outputs)
    assert small.requests[0]["messages"] == [{"role": "user", "content": "Where is my parcel?"}]


@pytest.mark.parametrize("mode, kind", [("hang", None), ("error", "server_error"), ("garbage", "bad_response")])
async def test_failing_candidate_never_delays_primary_and_is_recorded(
    tmp_path: Path, db_url: str, mode: str, kind: str | None, make_config, shadow_preset,
    fake_candidate, stored, primary_call,
) -> None:
    config = make_config(db_url, shadow_preset, models={
        **MODELS,
        "frontier": {"base_url": "http://127.0.0.1:9/v1"},
        "small": {"base_url": "http://127.0.0.1:9/v1", "max_retries": 0},
    }, mirror={"circuit_failures": 100})
    candidate = fake_candidate("small", mode=mode)
    async with Shadow(config, providers={"small": candidate}) as sh:
        slowest = 0.0
        for _ in range(20):
            began = time.perf_counter()
            await sh.shadow(task="classify_intent", request=REQUEST, call=lambda: primary_call(delay=0.01))
            slowest = max(slowest, time.perf_counter() - began)
        # Each call is the primary's 10 ms plus scheduling; a candidate that hangs forever or
        # fails must add nothing (the bound is loose: two test workers share two cores).
        assert slowest < 1.0
        await sh.aclose(deadline_s=0.2)
    exchanges, outputs = await stored(config.database_url)
    if kind is None:
        # 4 workers stuck on the hanging candidate until the shutdown deadline cut them: their
        # exchanges are stored without an answer; the captures still queued were dropped.
        assert sh.stats.cut_shutdown == 4 and len(exchanges) == 4 and outputs == []
        assert sh.stats.dropped_shutdown == 16
    else:
        assert len(exchanges) == 20, "every primary exchange is stored, whatever the candidate did"
        assert len(outputs) == 20 and {o.error_kind for o in outputs} == {kind}
        assert sh.stats.candidate_errors[kind] == 20


async def test_full_queue_drops_and_counts_without_blocking(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, stored,
    primary_call,
) -> None:
    config = make_config(db_url, shadow_preset, mirror={"workers": 1, "queue_size": 3})
    candidate = fake_candidate("small", mode="block")
    async with Shadow(config, providers={"small": candidate}) as sh:
        for _ in range(3):
            await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
        await anyio.sleep(0.05)  # the worker takes one capture and blocks on the candidate
        began = time.perf_counter()
        for _ in range(10):
            await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
        assert time.perf_counter() - began < 1.0  # a blocking put would wait forever
        assert sh.stats.enqueued == 4  # 1 in flight + a full queue of 3
        assert sh.stats.dropped_queue_full == 9
        candidate.release.set()
    assert sh.stats.stored_exchanges == 4
    exchanges, _ = await stored(config.database_url)
    assert len(exchanges) == 4


async def test_sampling_rate_and_seeded_determinism(
    tmp_path: Path, db_url: str, make_config, shadow_preset, primary_call,
) -> None:
    config = make_config(db_url, shadow_preset, tasks={"classify_intent": {"candidates": [], "sample_rate": 0.3}}, seed=11)
    requests = [
        {"model": "frontier", "messages": [{"role": "user", "content": f"message {i}"}]} for i in range(400)
    ]
    picks = []
    for _ in range(2):
        async with Shadow(config, providers={}) as sh:
            for req in requests:
                await sh.shadow(task="classify_intent", request=req, call=primary_call)
        picks.append(sh.stats.sampled)
    assert picks[0] == picks[1], "same seed, same requests: same sample"
    assert 80 <= picks[0] <= 160  # 30% of 400, loosely
    assert sh.stats.not_sampled == 400 - picks[0]


async def test_undeclared_task_is_counted_not_captured_at_rate_zero(
    tmp_path: Path, db_url: str, make_config, shadow_preset, primary_call, fake_candidate,
) -> None:
    config = make_config(db_url, shadow_preset, default_sample_rate=0.0)
    async with Shadow(config, providers={"small": fake_candidate("small")}) as sh:
        await sh.shadow(task="never_declared", request=REQUEST, call=primary_call)
    assert sh.stats.offered == 1 and sh.stats.not_sampled == 1 and sh.stats.enqueued == 0
    async with await Store.open(config.database_url) as store:
        counts = await store.counts()
    assert counts["traffic"]["never_declared"]["requests"] == 1


async def test_retries_honour_retry_after_then_succeed(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, stored,
    primary_call,
) -> None:
    config = make_config(db_url, shadow_preset)
    candidate = fake_candidate("small", mode="rate_limited")
    candidate.failures_left = 2
    async with Shadow(config, providers={"small": candidate}) as sh:
        await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
    _, outputs = await stored(config.database_url)
    assert outputs[0].error_kind is None and outputs[0].attempts == 3
    assert sh.stats.candidate_calls == 3


async def test_circuit_opens_after_consecutive_failures(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, primary_call,
) -> None:
    config = make_config(db_url, shadow_preset, mirror={"workers": 1, "circuit_failures": 3, "circuit_reset_s": 60})
    config = config.model_copy(update={"models": {**config.models, "small": config.models["small"].model_copy(update={"max_retries": 0})}})
    candidate = fake_candidate("small", mode="error")
    async with Shadow(config, providers={"small": candidate}) as sh:
        for _ in range(10):
            await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
    assert len(candidate.requests) == 3
    assert sh.stats.skipped_circuit_open == 7
    assert sh.stats.stored_exchanges == 10


async def test_daily_budget_caps_candidate_spend_and_survives_restart(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, primary_call,
) -> None:
    config = make_config(db_url, shadow_preset, mirror={"workers": 1})
    config = config.model_copy(update={"tasks": {"classify_intent": config.tasks["classify_intent"].model_copy(update={"daily_budget_usd": 0.0025})}})
    candidate = fake_candidate("small")  # $0.001 a call
    async with Shadow(config, providers={"small": candidate}) as sh:
        for _ in range(6):
            await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
    assert len(candidate.requests) == 3  # 0.000, 0.001, 0.002 < cap; then 0.003 >= cap
    assert sh.stats.skipped_budget == 3
    again = fake_candidate("small")
    async with Shadow(config, providers={"small": again}) as sh2:
        await sh2.shadow(task="classify_intent", request=REQUEST, call=primary_call)
    assert again.requests == [] and sh2.stats.skipped_budget == 1


async def test_every_task_type_has_a_daily_budget_by_default(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, primary_call,
) -> None:
    """No ``daily_budget_usd`` in the config: the default $10 a day still caps the spend, so
    nobody who reaches the capture path can spend without limit; ``inf`` lifts it."""
    config = make_config(db_url, shadow_preset, mirror={"workers": 1})
    assert config.tasks["classify_intent"].daily_budget_usd == 10.0
    candidate = fake_candidate("small", cost_usd=4.0)
    async with Shadow(config, providers={"small": candidate}) as sh:
        for _ in range(5):
            await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
    assert len(candidate.requests) == 3  # $0, $4, $8 < $10; then $12 >= $10
    assert sh.stats.skipped_budget == 2
    uncapped = config.model_copy(update={"tasks": {"classify_intent": config.tasks[
        "classify_intent"].model_copy(update={"daily_budget_usd": float("inf")})}})
    free = fake_candidate("small", cost_usd=4.0)
    async with Shadow(uncapped, providers={"small": free}) as sh2:
        await sh2.shadow(task="classify_intent", request=REQUEST, call=primary_call)
    assert len(free.requests) == 1 and sh2.stats.skipped_budget == 0


async def test_shutdown_deadline_drops_waiting_and_keeps_in_flight_exchange(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate, stored,
    primary_call,
) -> None:
    config = make_config(db_url, shadow_preset, mirror={"workers": 1, "queue_size": 50})
    candidate = fake_candidate("small", mode="hang")
    sh = Shadow(config, providers={"small": candidate})
    await sh.start()
    for _ in range(5):
        await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
    began = time.perf_counter()
    report = await sh.aclose(deadline_s=0.1)
    assert time.perf_counter() - began < 2.0
    assert report.dropped == 4 and sh.stats.cut_shutdown == 1
    assert "dropped 4" in str(report) and report.lost == 0
    # Every accepted capture is accounted for: 1 stored (cut), 4 discarded at the deadline.
    assert sh.stats.ledger() == {"accepted": 5, "stored": 1, "spooled": 0, "forwarded": 0,
                                 "discarded": 4, "lost": 0, "pending": 0}
    assert "discarded 4 (shutdown 4), lost 0" in sh.stats.ledger_line()
    exchanges, outputs = await stored(config.database_url)
    assert len(exchanges) == 1 and outputs == []


async def test_graceful_shutdown_drains_the_queue(
    tmp_path: Path, db_url: str, make_config, shadow_preset, stored, fake_candidate,
    primary_call,
) -> None:
    config = make_config(db_url, shadow_preset, mirror={"workers": 2})
    async with Shadow(config, providers={"small": fake_candidate("small")}) as sh:
        for _ in range(50):
            await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
    assert sh.shutdown_report is not None and sh.shutdown_report.dropped == 0
    exchanges, outputs = await stored(config.database_url)
    assert len(exchanges) == 50 and len(outputs) == 50


async def test_dead_database_spools_then_replays_without_loss(
    tmp_path: Path, db_url: str, make_config, shadow_preset, stored, fake_candidate,
    primary_call,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database directory should be")
    dead = make_config(db_url, shadow_preset, database_url=f"sqlite+aiosqlite:///{blocker / 'sr.db'}")
    errors: list[str] = []
    async with Shadow(dead, providers={"small": fake_candidate("small")}, on_error=lambda stage, exc: errors.append(stage)) as sh:
        for _ in range(30):
            result = await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
            assert result["choices"][0]["message"]["content"] == "shipping"
    assert sh.stats.stored_exchanges == 0 and sh.stats.spooled_exchanges == 30
    assert sh.stats.ledger()["spooled"] == 30 and sh.stats.ledger()["pending"] == 0
    assert "store" in errors
    assert sh.shutdown_report is not None and sh.shutdown_report.spooled == 30

    alive = make_config(db_url, shadow_preset)  # same spool directory, a database that works
    async with Shadow(alive, providers={"small": fake_candidate("small")}) as sh2:
        with anyio.fail_after(5):
            while sh2.stats.replayed_exchanges < 30:
                await anyio.sleep(0.02)
    exchanges, outputs = await stored(alive.database_url)
    assert len(exchanges) == 30 and len(outputs) == 30
    assert sh2.spool.pending() == 0


async def test_shadow_without_running_shadow_just_calls(completion) -> None:
    answer = completion()
    assert await shadow(task="x", request=REQUEST, call=lambda: _value(answer)) is answer


async def test_unreadable_primary_result_is_counted_not_raised(
    tmp_path: Path, db_url: str, make_config, shadow_preset, fake_candidate,
) -> None:
    seen: list[tuple[str, str]] = []
    config = make_config(db_url, shadow_preset)
    async with Shadow(config, providers={"small": fake_candidate("small")}, on_error=lambda s, e: seen.append((s, str(e)))) as sh:
        result = await sh.shadow(task="classify_intent", request=REQUEST, call=lambda: _value(12345))
        assert result == 12345
    assert sh.stats.capture_errors == 1
    assert seen and "output=" in seen[0][1]
    async with await Store.open(config.database_url) as store, store.session() as session:
        assert await session.scalar(select(func.count()).select_from(Exchange)) == 0


def test_sync_shadow_passes_results_and_exceptions_through(
    tmp_path: Path, db_url: str, make_config, shadow_preset, completion, stored, fake_candidate,
) -> None:
    from shadowroute import SyncShadow

    config = make_config(db_url, shadow_preset)
    answer = completion("billing")
    boom = ValueError("primary refused")

    def failing() -> None:
        raise boom

    request = {"model": "frontier", "messages": [{"role": "user", "content": "invoice?"}]}
    with SyncShadow(config, providers={"small": fake_candidate("small")}) as sh:
        for _ in range(5):
            assert sh.shadow(task="classify_intent", request=request, call=lambda: answer) is answer
        request["messages"].append({"role": "assistant", "content": "billing"})  # after the call
        with pytest.raises(ValueError) as caught:
            sh.shadow(task="classify_intent", request=REQUEST, call=failing)
        assert caught.value is boom
    report = sh.close()  # idempotent: returns the report of the shutdown that already ran
    assert report is not None and report.dropped == 0
    assert sh.stats.primary_errors == 1 and sh.stats.stored_exchanges == 5
    exchanges, outputs = anyio.run(stored, db_url)
    assert len(exchanges) == 5 and len(outputs) == 5
    assert all(len(e.request["messages"]) == 1 for e in exchanges)


async def test_calls_waiting_for_a_slot_are_skipped_once_the_circuit_opens(
    tmp_path: Path, db_url: str, fake_candidate, make_config, shadow_preset, primary_call,
) -> None:
    config = make_config(db_url, shadow_preset, mirror={"workers": 8, "circuit_failures": 2, "circuit_reset_s": 60})
    small = config.models["small"].model_copy(update={"max_concurrency": 2, "max_retries": 0})
    config = config.model_copy(update={"models": {**config.models, "small": small}})

    class SlowFailure(fake_candidate):
        async def complete(self, request: dict[str, Any]) -> Completion:
            self.requests.append(request)
            await anyio.sleep(0.1)
            raise ServerError("HTTP 500", model="small", status=500)

    candidate = SlowFailure("small")
    async with Shadow(config, providers={"small": candidate}) as sh:
        for _ in range(8):  # 8 workers take 8 captures at once; 2 slots
            await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
    # The first two fail and open the circuit; the calls that waited for a slot never go out
    # (one may slip through between the two failures). Without the re-check all 8 would.
    assert len(candidate.requests) <= 3
    assert sh.stats.skipped_circuit_open == 8 - len(candidate.requests)
    assert sh.stats.stored_exchanges == 8


async def test_retry_after_from_a_server_error_is_honoured(
    tmp_path: Path, db_url: str, fake_candidate, make_config, shadow_preset, stored,
    primary_call,
) -> None:
    config = make_config(db_url, shadow_preset, mirror={"retry_backoff_s": 60.0, "retry_backoff_max_s": 60.0})

    class BusyOnce(fake_candidate):
        async def complete(self, request: dict[str, Any]) -> Completion:
            if not self.requests:
                self.requests.append(request)
                raise ServerError("HTTP 503", model="small", status=503, retry_after=0.01)
            return await super().complete(request)

    candidate = BusyOnce("small")
    began = time.perf_counter()
    async with Shadow(config, providers={"small": candidate}) as sh:
        await sh.shadow(task="classify_intent", request=REQUEST, call=primary_call)
    assert time.perf_counter() - began < 2  # waited 0.01 s as asked, not a jittered 0-60 s
    _, outputs = await stored(config.database_url)
    assert outputs[0].error_kind is None and outputs[0].attempts == 2
