"""Done means no primary call fails: 200 calls through the sidecar while every candidate and
the database fail, then a restarted sidecar replays what was spooled."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text

from shadowroute.config import Config
from shadowroute.fakellm import FakeLLMServer, default_settings, sample_requests
from shadowroute.serving import tcp_socket
from shadowroute.store import Spool, Store
from support.sidecar import ANTHROPIC_KEY, OPENAI_KEY, SECRETS, TASK


async def traffic_total(url: str) -> int:
    async with await Store.open(url) as store, store.session() as session:
        total = (await session.execute(text("SELECT SUM(requests) FROM traffic_daily"))).scalar()
    return int(total or 0)


# --------------------------------------------------------------------------- done means


def _pg_allow_connections(db_url: str, allow: bool) -> None:
    """Open or shut a Postgres database: ALLOW_CONNECTIONS, and when shutting it, terminate
    every open session (the sidecar's pool included)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    url = make_url(db_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{url.database}" WITH ALLOW_CONNECTIONS {str(allow).lower()}'))
            if not allow:
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = :name AND pid <> pg_backend_pid()"),
                    {"name": url.database},
                )
    finally:
        admin.dispose()


@asynccontextmanager
async def _database_outage(db_url: str) -> AsyncIterator[Callable[[], Any]]:
    """Yields ``cut()``; whatever happens, the database is open again afterwards."""
    cut_done = False

    async def cut() -> None:
        nonlocal cut_done
        cut_done = True
        await anyio.to_thread.run_sync(_pg_allow_connections, db_url, False)

    try:
        yield cut
    finally:
        if cut_done:
            await anyio.to_thread.run_sync(_pg_allow_connections, db_url, True)


CANDIDATE_TIMEOUT_S = 4.0
"""Candidates that hang are cut at this; a primary call that waited on one would take longer."""


@pytest.mark.anyio
async def test_done_means_no_primary_call_fails_while_candidates_and_database_fail(
    tmp_path: Path, db_url: str, stored, stored_text, make_config, sidecar_server, anthropic_kwargs, sidecar_preset, await_until, answer_text, sidecar_state, metrics, spool_text
) -> None:
    """200 calls (concurrent, half streamed, OpenAI and Anthropic) through the sidecar while
    every candidate starts to fail mid-run (one hangs, one answers 500) and the database is
    unreachable (Postgres: shut mid-run; SQLite run: a database server that refuses
    connections from the start). Every primary call succeeds with the right answer; captures
    are spooled; a restarted sidecar with a working database replays them all."""
    postgres = db_url.startswith("postgresql")
    closed = tcp_socket("127.0.0.1", 0)
    outage_url = db_url if postgres else f"postgresql+psycopg://postgres@127.0.0.1:{closed.getsockname()[1]}/gone"
    demos = [d.request for d in sample_requests(20, seed=5)]
    n_calls, kinds = 200, ("openai", "openai-stream", "anthropic", "anthropic-stream")
    spool_dir = tmp_path / "spool"

    def body_for(kind: str, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if kind.startswith("openai"):
            return "/v1/chat/completions", {"model": "frontier", **request, "stream": kind.endswith("stream")}
        return "/v1/messages", {**anthropic_kwargs(request), "stream": kind.endswith("stream")}

    with FakeLLMServer(default_settings(latency_scale=0.05)) as llm:
        async with httpx.AsyncClient(base_url=llm.base_url, timeout=30) as client:
            expected = {}
            for i, request in enumerate(demos):
                for kind in ("openai", "anthropic"):
                    path, body = body_for(kind, request)
                    expected[(i, kind)] = answer_text(kind, await client.post(path, json=body))
        assert all(expected.values())

        def config_with(url: str) -> Config:
            return make_config(
                url, sidecar_preset(llm.base_url),
                models={
                    "small": {"base_url": llm.base_url + "/v1", "timeout_s": CANDIDATE_TIMEOUT_S, "max_retries": 0,
                              "max_concurrency": 32},
                    "claude-small": {"base_url": llm.base_url, "api": "anthropic", "timeout_s": CANDIDATE_TIMEOUT_S,
                                     "max_retries": 1, "max_concurrency": 32},
                },
                tasks={"classify_intent": {"candidates": ["small", "claude-small"], "sample_rate": 1.0}},
                mirror={"circuit_failures": 5, "circuit_reset_s": 0.5, "retry_backoff_s": 0.05,
                        "shutdown_deadline_s": 10.0},
                store={"batch_size": 25},
            )

        latencies: list[float] = []
        failures: list[str] = []
        try:
            async with _database_outage(db_url) as cut_database:
                async with sidecar_server(config_with(outage_url)) as sc, httpx.AsyncClient(
                    base_url=sc.base_url, timeout=30,
                    limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
                ) as client:
                    sidecar = sidecar_state(sc)
                    stats = sidecar.shadow.stats
                    limiter = anyio.Semaphore(16)
                    done = 0

                    async def one(i: int) -> None:
                        nonlocal done
                        index, kind = i % len(demos), kinds[i % len(kinds)]
                        path, body = body_for(kind, demos[index])
                        async with limiter:
                            began = time.perf_counter()
                            response = await client.post(path, json=body, headers={
                                TASK: "classify_intent",
                                "authorization": f"Bearer {OPENAI_KEY}", "x-api-key": ANTHROPIC_KEY,
                            })
                            latencies.append(time.perf_counter() - began)
                        answer = answer_text(kind, response) if response.status_code == 200 else None
                        if answer != expected[(index, kind.removesuffix("-stream"))]:
                            failures.append(f"call {i} ({kind}): {response.status_code} {response.text[:200]}")
                        done += 1
                        if done == 50:
                            llm.update_model("small", hang=True)
                        elif done == 80:
                            llm.update_model("claude-small", error_rate=1.0, error_status=500)
                        elif done == 100 and postgres:
                            # Some captures stored before the cut (on a loaded machine the
                            # first batch can still be on its way after 100 calls).
                            await await_until(lambda: stats.stored_exchanges > 0, timeout=10,
                                              what="a first batch stored")
                            await cut_database()

                    async with anyio.create_task_group() as tg:
                        for i in range(n_calls):
                            tg.start_soon(one, i)

                    assert failures == [] and len(latencies) == n_calls
                    # Nothing on the primary path waited on a candidate timeout (calls take
                    # ~0.1 s; the timeout is far above what CPU contention on 2 cores adds).
                    assert max(latencies) < CANDIDATE_TIMEOUT_S, max(latencies)
                    await await_until(lambda: stats.mirrored == n_calls, timeout=20, what="mirroring drained")
                    await await_until(
                        lambda: stats.stored_exchanges + stats.spooled_exchanges == n_calls, timeout=10
                    )
                    health = (await client.get("/healthz")).json()
                    samples = await anyio.to_thread.run_sync(metrics, sc.base_url)
                # Phase 1 over: the sidecar stopped while the database was still unreachable.
                assert stats.offered == stats.sampled == n_calls
                assert (stats.primary_errors, stats.capture_errors, stats.dropped, stats.abandoned) == (0, 0, 0, 0)
                assert stats.candidate_errors["timeout"] >= 1 and stats.candidate_errors["server_error"] >= 1
                assert stats.spooled_exchanges > 0 and stats.store_errors > 0
                if not postgres:
                    assert stats.stored_exchanges == 0 and stats.spooled_exchanges == n_calls
                else:
                    assert stats.stored_exchanges > 0  # written before the outage
                # The probe says what is true: the database does not answer (captures spool).
                assert health["database"] == "unreachable"
                assert health["spool_pending"] == stats.spool_pending > 0
                assert samples[("shadowroute_spool_pending", ())] == stats.spool_pending
                assert samples[("shadowroute_spooled_exchanges_total", ())] == stats.spooled_exchanges
                assert samples[("shadowroute_captured_total", ())] == n_calls
                assert samples[("shadowroute_dropped_total", (("reason", "queue_full"),))] == 0
                assert samples[("shadowroute_upstream_latency_seconds_count", (("api", "openai"),))] == n_calls // 2
                stored_before = stats.stored_exchanges
                assert Spool(spool_dir).pending() == n_calls - stored_before
                assert not any(secret in spool_text(spool_dir) for secret in SECRETS)
        finally:
            closed.close()

        # Phase 2: restarted with a working database, the sidecar replays the spool.
        async with sidecar_server(config_with(db_url)) as sc:
            replay = sidecar_state(sc).shadow.stats
            await await_until(lambda: replay.spool_pending == 0 and replay.replayed_exchanges > 0, timeout=15)
            async with httpx.AsyncClient(base_url=sc.base_url) as client:
                health = (await client.get("/healthz")).json()
        assert replay.replayed_exchanges == n_calls - stored_before
        assert health["database"] == "ok"
    assert Spool(spool_dir).pending() == 0
    exchanges, outputs = await stored(db_url)
    assert len(exchanges) == n_calls and {e.task_type for e in exchanges} == {"classify_intent"}
    index_of = {json.dumps(r["messages"][-1]): i for i, r in enumerate(demos)}
    for e in exchanges:
        assert e.primary_output == expected[(index_of[json.dumps(e.request["messages"][-1])], "openai")]
    kinds_seen = {(o.model, o.error_kind) for o in outputs}
    assert {("small", None), ("claude-small", None), ("small", "timeout"), ("claude-small", "server_error")} <= kinds_seen
    assert await traffic_total(db_url) == n_calls
    dump = await stored_text(db_url)
    assert not any(secret in dump for secret in SECRETS)
