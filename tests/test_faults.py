"""The fault-injection suite (``pytest -m fault``): production calls through the sidecar while
what shadowroute depends on breaks, injected by ``tests/support/faultproxy.py`` on loopback.

Each scenario sends CALLS production calls (OpenAI and Anthropic, half of them streamed,
CONCURRENCY at a time) through the sidecar, the app's own path, and checks:

- **primary**: every call gets exactly what the upstream sent (status and answer), and none
  takes longer than DELAY_BOUND_S, the shortest time a call that had waited on the fault would
  take (the candidates' timeout; the Retry-After plus a second attempt);
- **captures**: every accepted capture is stored (rows counted in the database, not taken from
  the counters), waiting in the spool, or discarded by a counted policy; *lost*, accepted minus
  all of those, is 0;
- **a log line** names what broke.

Each scenario adds a row to the table printed at the end of the run (``conftest.py``). The
traffic and its accounting are shared with test_faults_process.py (SIGTERM, bounded memory)
through ``support/faults.py``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from shadowroute import load_config
from shadowroute.config import Config
from shadowroute.fakellm import FakeLLMServer
from shadowroute.scoring import ScoreOptions, score
from shadowroute.stats import Stats
from shadowroute.store import Store
from shadowroute.store.models import Score
from support.faultproxy import FaultProxy, TcpProxy
from support.faults import (
    CALLS,
    CANDIDATE_TIMEOUT_S,
    DELAY_BOUND_S,
    RETRY_AFTER_S,
    Row,
    drive,
    stored_rows,
)

pytestmark = [pytest.mark.fault]


# --------------------------------------------------------------------------- the setting


def _config(tmp_path: Path, db_url: str, *, upstream: str, candidates: str,
            judge: str | None = None) -> Config:
    model = {"timeout_s": CANDIDATE_TIMEOUT_S, "max_retries": 1, "max_concurrency": 16}
    data: dict[str, Any] = {
        "database_url": db_url,
        "models": {
            "small": {"base_url": candidates + "/v1", **model},
            "claude-small": {"base_url": candidates, "api": "anthropic", **model},
        },
        "tasks": {"classify_intent": {"candidates": ["small", "claude-small"],
                                      "sample_rate": 1.0, "noise_floor_rate": 0.0}},
        "sidecar": {"upstream": upstream, "anthropic_upstream": upstream,
                    "mirror_process": "off"},
        "mirror": {"workers": 8, "circuit_failures": 4, "circuit_reset_s": 60,
                   "retry_backoff_s": 0.05, "shutdown_deadline_s": 10},
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05,
                  "retry_interval_s": 0.2, "batch_size": 16},
    }
    if judge is not None:
        data["models"]["judge"] = {"base_url": judge + "/v1", "max_retries": 0, "timeout_s": 5}
        data["judge"] = {"model": "judge", "concurrency": 8, "when": "always"}  # exact decides every pair
        data["tasks"]["classify_intent"]["scorers"] = ["exact", "judge"]
    return load_config(data=data)


async def _account(fault_table: Callable[[Row], None], fault: str, stats: Stats, db_url: str,
                   spool_pending: int, latencies: list[float], failures: list[str],
                   note: str) -> None:
    """Check the ledger against the database and add the scenario's row."""
    exchanges, _ = await stored_rows(db_url)
    discarded = sum(stats.discarded.values())
    lost = stats.enqueued - exchanges - spool_pending - discarded
    ordered = sorted(latencies)
    row = Row(fault, len(latencies), len(failures),
              sum(1 for s in latencies if s >= DELAY_BOUND_S),
              1000 * ordered[len(ordered) // 2], 1000 * ordered[-1],
              stats.enqueued, exchanges, spool_pending, discarded, lost, note)
    fault_table(row)
    assert failures == [], failures[:5]
    assert row.delayed == 0, f"max primary latency {row.max_ms:.0f} ms"
    assert row.lost == 0 and stats.ledger()["pending"] == 0, (row, stats.ledger())


def _logged(caplog: pytest.LogCaptureFixture, pattern: str) -> str:
    found = [r.getMessage() for r in caplog.records if re.search(pattern, r.getMessage())]
    assert found, f"no log line matches {pattern!r}"
    return found[0]


# --------------------------------------------------------------------------- candidate faults

CANDIDATE_FAULTS = {
    # fault: (error kind stored for the candidate, what the log line says)
    "hang": ("timeout", rf"no answer within {CANDIDATE_TIMEOUT_S:g}s"),
    "drip": ("timeout", rf"no answer within {CANDIDATE_TIMEOUT_S:g}s"),
    "reset": ("connection", r"cannot reach"),
    "429": ("rate_limited", r"rate limited \(HTTP 429\), retry after 1s"),
    "500": ("server_error", r"HTTP 500 server error"),
    "bad_json": ("bad_response", r"unusable HTTP 200 response"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("fault", list(CANDIDATE_FAULTS))
async def test_a_failing_candidate_never_reaches_the_primary(
    fault: str, fault_llm: FakeLLMServer, fault_traffic: list[Any], tmp_path: Path, sqlite_url: str,
    caplog: pytest.LogCaptureFixture, fault_table: Callable[[Row], None], sidecar_server,
) -> None:
    kind, error = CANDIDATE_FAULTS[fault]
    caplog.set_level(logging.WARNING, logger="shadowroute")
    host, port = fault_llm.host, fault_llm.port
    with FaultProxy(host, port, fault=fault, retry_after=RETRY_AFTER_S) as proxy:
        config = _config(tmp_path, sqlite_url, upstream=fault_llm.base_url,
                         candidates=f"http://{proxy.url_host}")
        async with sidecar_server(config) as sidecar:
            stats = sidecar.app.state.sidecar.shadow.stats
            failures, latencies = await drive(sidecar.base_url, fault_traffic)
            with anyio.fail_after(30):  # hung candidates are cut by their timeout
                while stats.mirrored < stats.enqueued:
                    await anyio.sleep(0.02)
        assert proxy.hits[fault] > 0
    _, outputs = await stored_rows(sqlite_url)
    assert {o[3] for o in outputs} == {kind}, "each stored answer records the failure"
    _logged(caplog, rf"circuit for '(small|claude-small)' opened after 4 consecutive failures "
                    rf"\(last: .*{error}")
    await _account(fault_table, f"candidate {fault}", stats, sqlite_url, 0, latencies, failures,
                   f"{len(outputs)} failed answers stored ({kind}), then circuit open")


# --------------------------------------------------------------------------- primary faults


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["bad_sse", "bad_json"])
async def test_a_broken_primary_answer_is_relayed_untouched(
    fault: str, fault_llm: FakeLLMServer, fault_traffic: list[Any], tmp_path: Path, sqlite_url: str,
    caplog: pytest.LogCaptureFixture, fault_table: Callable[[Row], None], sidecar_server,
) -> None:
    """The upstream itself answers garbage: the app gets those exact bytes (it is the app's
    business), and the capture that cannot be read is discarded, counted and logged."""
    caplog.set_level(logging.WARNING, logger="shadowroute")
    with FaultProxy(fault_llm.host, fault_llm.port, fault=fault) as proxy:
        config = _config(tmp_path, sqlite_url, upstream=f"http://{proxy.url_host}",
                         candidates=fault_llm.base_url)
        canned = proxy._canned(fault)
        sent = canned[canned.index(b"\r\n\r\n") + 4:]
        streamed = [t for t in fault_traffic if t[0].endswith("stream") == (fault == "bad_sse")]
        async with sidecar_server(config) as sidecar:
            stats = sidecar.app.state.sidecar.shadow.stats
            failures, latencies = await drive(
                sidecar.base_url, streamed,
                expect=lambda kind, text: lambda r: r.status_code == 200 and r.content == sent)
            with anyio.fail_after(10):
                while stats.mirrored + stats.capture_errors < stats.enqueued:
                    await anyio.sleep(0.02)
    assert stats.discarded["capture_error"] == len(streamed) == stats.enqueued
    _logged(caplog, r"capture error")
    await _account(fault_table, f"primary {fault}", stats, sqlite_url, 0, latencies, failures,
                   f"bytes relayed as sent; {stats.discarded['capture_error']} unreadable "
                   "captures discarded (capture_error)")


# --------------------------------------------------------------------------- the judge


@pytest.mark.anyio
async def test_a_judge_that_returns_garbage_leaves_the_pairs_and_scores_intact(
    fault_llm: FakeLLMServer, fault_traffic: list[Any], tmp_path: Path, sqlite_url: str,
    fault_table: Callable[[Row], None], sidecar_server,
) -> None:
    """Nightly scoring against a judge answering prose instead of a verdict, then cut JSON:
    the deterministic scores are written, the judge's are "not applicable" or left for the
    next run, and no stored pair is touched."""
    config = _config(tmp_path, sqlite_url, upstream=fault_llm.base_url, candidates=fault_llm.base_url)
    async with sidecar_server(config) as sidecar:
        stats = sidecar.app.state.sidecar.shadow.stats
        failures, latencies = await drive(sidecar.base_url, fault_traffic)
        with anyio.fail_after(10):
            while stats.mirrored < stats.enqueued:
                await anyio.sleep(0.02)
    exchanges, outputs = await stored_rows(sqlite_url)

    fault_llm.update_model("judge", verdict_garbage_rate=1.0)
    try:
        with FaultProxy(fault_llm.host, fault_llm.port) as proxy:
            judged = _config(tmp_path, sqlite_url, upstream=fault_llm.base_url, candidates=fault_llm.base_url,
                             judge=f"http://{proxy.url_host}")
            async with await Store.open(sqlite_url) as store:
                prose = await score(judged, store)
                na = await _take_judge_scores(store)
                proxy.fault = "bad_json"
                cut = await score(judged, store, ScoreOptions(rescan=True))  # scores deleted
                assert await _take_judge_scores(store) == []
    finally:
        fault_llm.update_model("judge", verdict_garbage_rate=0.0)
    # Prose: the first order is retried once, then the pair is "not applicable" (no verdict).
    assert prose.judge_retries == len(outputs) and prose.scores["judge"] == len(outputs)
    assert prose.scores["exact"] == len(outputs)
    assert {(s.value, s.passed) for s in na} == {(None, None)}
    # Cut JSON: the judge is unavailable; nothing is written, so the next run tries again.
    assert cut.judge_unavailable == len(outputs) and cut.scores["judge"] == 0
    assert "judge unavailable for" in "\n".join(cut.lines())
    assert await stored_rows(sqlite_url) == (exchanges, outputs)  # no stored pair touched
    await _account(fault_table, "judge garbage / cut JSON", stats, sqlite_url, 0, latencies, failures,
                   f"{len(outputs)} outputs: prose -> N/A after 1 retry; cut JSON -> "
                   "judge unavailable, left for the next run; exact scores all written")


async def _take_judge_scores(store: Store) -> list[Score]:
    """The judge's score rows, deleted (so the next run judges the same outputs again)."""
    from sqlalchemy import delete

    async with store.session() as session:
        found = list((await session.scalars(select(Score).where(Score.scorer == "judge"))).all())
        await session.execute(delete(Score).where(Score.scorer == "judge"))
        await session.commit()
    return found


# --------------------------------------------------------------------------- the database


@pytest.mark.anyio
async def test_postgres_stopped_and_restarted_mid_run(
    fault_llm: FakeLLMServer, fault_traffic: list[Any], tmp_path: Path, postgres_url: str,
    caplog: pytest.LogCaptureFixture, fault_table: Callable[[Row], None], sidecar_server,
) -> None:
    """Postgres goes away a third of the way through, once rows have been written (every
    connection reset, new ones refused), and comes back two thirds through: batches go to the
    spool meanwhile and are replayed, each exchange stored once."""
    caplog.set_level(logging.WARNING, logger="shadowroute")
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as link:
        via_proxy = url.set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False)
        config = _config(tmp_path, via_proxy, upstream=fault_llm.base_url, candidates=fault_llm.base_url)

        async def outage(done: int) -> None:
            if done == CALLS // 3:
                with anyio.fail_after(10):  # rows already written when it goes down
                    while stats.stored_exchanges == 0:
                        await anyio.sleep(0.01)
                await anyio.to_thread.run_sync(link.cut)
            elif done == 2 * CALLS // 3:
                await anyio.sleep(0.5)  # let the writer fail and spool at least once
                await anyio.to_thread.run_sync(link.restore)

        async with sidecar_server(config) as sidecar:
            stats = sidecar.app.state.sidecar.shadow.stats
            failures, latencies = await drive(sidecar.base_url, fault_traffic, on_call=outage)
            with anyio.fail_after(20):
                while stats.stored_exchanges + stats.replayed_exchanges < stats.enqueued:
                    await anyio.sleep(0.05)
    assert stats.stored_exchanges > 0 and stats.store_errors > 0 and stats.spooled_exchanges > 0
    assert stats.replayed_exchanges == stats.spooled_exchanges
    line = _logged(caplog, r"store error")
    await _account(fault_table, "Postgres stopped + restarted", stats, postgres_url, stats.spool_pending,
                   latencies, failures,
                   f"{stats.stored_exchanges} stored before the cut, "
                   f"{stats.spooled_exchanges} spooled during the outage, all replayed; "
                   f"log: {line[:50]}...")
