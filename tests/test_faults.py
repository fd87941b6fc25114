"""The fault-injection suite (``pytest -m fault``): production calls through the sidecar while
what shadowroute depends on breaks, injected by ``tests/faultproxy.py`` on loopback.

Each scenario sends CALLS production calls (OpenAI and Anthropic, half of them streamed,
CONCURRENCY at a time) through the sidecar, the app's own path, and checks:

- **primary**: every call gets exactly what the upstream sent (status and answer), and none
  takes longer than DELAY_BOUND_S, the shortest time a call that had waited on the fault would
  take (the candidates' timeout; the Retry-After plus a second attempt);
- **captures**: every accepted capture is stored (rows counted in the database, not taken from
  the counters), waiting in the spool, or discarded by a counted policy; *lost*, accepted minus
  all of those, is 0;
- **a log line** names what broke.

Each scenario adds a row to the table printed at the end of the run (``conftest.py``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from faultproxy import FaultProxy, TcpProxy
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from test_sidecar import _answer_text, anthropic_kwargs

from shadowroute import load_config
from shadowroute.config import Config
from shadowroute.fakellm import FakeLLMServer, default_settings, sample_requests
from shadowroute.scoring import score
from shadowroute.serving import BackgroundServer, tcp_socket
from shadowroute.sidecar import create_app
from shadowroute.stats import Stats
from shadowroute.store import CandidateOutput, Exchange, Store
from shadowroute.store.models import Score

pytestmark = [pytest.mark.fault]

CALLS = 48
CONCURRENCY = 8
CANDIDATE_TIMEOUT_S = 2.0
RETRY_AFTER_S = 1.0
DELAY_BOUND_S = CANDIDATE_TIMEOUT_S
"""A call slower than this waited on the fault: a hanging or dripping candidate is cut at the
timeout, a rate-limited one waits Retry-After then fails again. Calls themselves take ~50 ms."""
KINDS = ("openai", "openai-stream", "anthropic", "anthropic-stream")
TASK_HEADER = {"x-shadowroute-task": "classify_intent"}


@dataclass
class Row:
    fault: str
    calls: int
    failed: int
    delayed: int
    p50_ms: float
    max_ms: float
    accepted: int
    stored: int
    spooled: int
    discarded: int
    lost: int
    note: str




@pytest.fixture
def table(record_property: Callable[[str, object], None]) -> Callable[[Row], None]:
    """Adds the scenario's row to the table ``conftest.pytest_terminal_summary`` prints (as a
    test report property, so it also reaches the summary from pytest-xdist workers)."""
    return lambda row: record_property("fault_row", asdict(row))


# --------------------------------------------------------------------------- the setting


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default_settings(latency_scale=0.2)) as server:
        yield server


def _body(kind: str, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    stream = kind.endswith("stream")
    if kind.startswith("openai"):
        return "/v1/chat/completions", {"model": "frontier", **request, "stream": stream}
    return "/v1/messages", {**anthropic_kwargs(request), "stream": stream}


@pytest.fixture(scope="module")
def traffic(llm: FakeLLMServer) -> list[tuple[str, dict[str, Any], str]]:
    """(kind, request, the upstream's answer text) for each of the CALLS calls."""
    requests = [d.request for d in sample_requests(12, seed=5)]
    calls = []
    with httpx.Client(base_url=llm.base_url, timeout=30) as client:
        for i in range(CALLS):
            kind, request = KINDS[i % len(KINDS)], requests[i % len(requests)]
            path, body = _body(kind, request)
            calls.append((kind, request, _answer_text(kind, client.post(path, json=body))))
    return calls


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
        "sidecar": {"upstream": upstream},
        "mirror": {"workers": 8, "circuit_failures": 4, "circuit_reset_s": 60,
                   "retry_backoff_s": 0.05, "shutdown_deadline_s": 10},
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05,
                  "retry_interval_s": 0.2, "batch_size": 16},
    }
    if judge is not None:
        data["models"]["judge"] = {"base_url": judge + "/v1", "max_retries": 0, "timeout_s": 5}
        data["judge"] = {"model": "judge", "concurrency": 8}
        data["tasks"]["classify_intent"]["scorers"] = ["exact", "judge"]
    return load_config(data=data)


async def _drive(base_url: str, traffic: list[tuple[str, dict[str, Any], str]],
                 expect: Callable[[str, str], Callable[[httpx.Response], bool]] | None = None,
                 on_call: Callable[[int], Any] | None = None) -> tuple[list[str], list[float]]:
    """Send the calls; (failures, latencies in seconds). ``expect(kind, text)`` builds the check
    of one response (default: status 200 and the upstream's answer text)."""
    failures: list[str] = []
    latencies: list[float] = []
    limiter = anyio.Semaphore(CONCURRENCY)

    def same_answer(kind: str, text: str) -> Callable[[httpx.Response], bool]:
        return lambda response: response.status_code == 200 and _answer_text(kind, response) == text

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one(i: int) -> None:
            kind, request, text = traffic[i]
            path, body = _body(kind, request)
            async with limiter:
                began = time.perf_counter()
                response = await client.post(path, json=body, headers=TASK_HEADER)
                latencies.append(time.perf_counter() - began)
            if not (expect or same_answer)(kind, text)(response):
                failures.append(f"call {i} ({kind}): {response.status_code} {response.text[:200]}")
            if on_call is not None:
                await on_call(len(latencies))

        async with anyio.create_task_group() as tg:
            for i in range(len(traffic)):
                tg.start_soon(one, i)
    return failures, latencies


async def _rows(db_url: str) -> tuple[int, list[tuple[Any, ...]]]:
    """(exchanges, every candidate output as (exchange, model, output, error kind))."""
    async with await Store.open(db_url) as store, store.session() as session:
        exchanges = await session.scalar(select(func.count()).select_from(Exchange))
        outputs = sorted((await session.execute(select(
            CandidateOutput.exchange_id, CandidateOutput.model, CandidateOutput.output,
            CandidateOutput.error_kind))).all())
    return int(exchanges or 0), outputs


async def _account(table: Callable[[Row], None], fault: str, stats: Stats, db_url: str,
                   spool_pending: int, latencies: list[float], failures: list[str],
                   note: str) -> None:
    """Check the ledger against the database and add the scenario's row."""
    exchanges, _ = await _rows(db_url)
    discarded = sum(stats.discarded.values())
    lost = stats.enqueued - exchanges - spool_pending - discarded
    ordered = sorted(latencies)
    row = Row(fault, len(latencies), len(failures),
              sum(1 for s in latencies if s >= DELAY_BOUND_S),
              1000 * ordered[len(ordered) // 2], 1000 * ordered[-1],
              stats.enqueued, exchanges, spool_pending, discarded, lost, note)
    table(row)
    assert failures == [], failures[:5]
    assert row.delayed == 0, f"max primary latency {row.max_ms:.0f} ms"
    assert row.lost == 0 and stats.ledger()["pending"] == 0, (row, stats.ledger())


def _sidecar(config: Config) -> BackgroundServer:
    return BackgroundServer(create_app(config), server_header=False, date_header=False,
                            timeout_graceful_shutdown=1.0)


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
    fault: str, llm: FakeLLMServer, traffic: list[Any], tmp_path: Path, sqlite_url: str,
    caplog: pytest.LogCaptureFixture, table: Callable[[Row], None],
) -> None:
    kind, error = CANDIDATE_FAULTS[fault]
    caplog.set_level(logging.WARNING, logger="shadowroute")
    host, port = llm.host, llm.port
    with FaultProxy(host, port, fault=fault, retry_after=RETRY_AFTER_S) as proxy:
        config = _config(tmp_path, sqlite_url, upstream=llm.base_url,
                         candidates=f"http://{proxy.url_host}")
        async with _sidecar(config) as sidecar:
            stats = sidecar.app.state.sidecar.shadow.stats
            failures, latencies = await _drive(sidecar.base_url, traffic)
            with anyio.fail_after(30):  # hung candidates are cut by their timeout
                while stats.mirrored < stats.enqueued:
                    await anyio.sleep(0.02)
        assert proxy.hits[fault] > 0
    _, outputs = await _rows(sqlite_url)
    assert {o[3] for o in outputs} == {kind}, "each stored answer records the failure"
    _logged(caplog, rf"circuit for '(small|claude-small)' opened after 4 consecutive failures "
                    rf"\(last: .*{error}")
    await _account(table, f"candidate {fault}", stats, sqlite_url, 0, latencies, failures,
                   f"{len(outputs)} failed answers stored ({kind}), then circuit open")


# --------------------------------------------------------------------------- primary faults


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["bad_sse", "bad_json"])
async def test_a_broken_primary_answer_is_relayed_untouched(
    fault: str, llm: FakeLLMServer, traffic: list[Any], tmp_path: Path, sqlite_url: str,
    caplog: pytest.LogCaptureFixture, table: Callable[[Row], None],
) -> None:
    """The upstream itself answers garbage: the app gets those exact bytes (it is the app's
    business), and the capture that cannot be read is discarded, counted and logged."""
    caplog.set_level(logging.WARNING, logger="shadowroute")
    with FaultProxy(llm.host, llm.port, fault=fault) as proxy:
        config = _config(tmp_path, sqlite_url, upstream=f"http://{proxy.url_host}",
                         candidates=llm.base_url)
        canned = proxy._canned(fault)
        sent = canned[canned.index(b"\r\n\r\n") + 4:]
        streamed = [t for t in traffic if t[0].endswith("stream") == (fault == "bad_sse")]
        async with _sidecar(config) as sidecar:
            stats = sidecar.app.state.sidecar.shadow.stats
            failures, latencies = await _drive(
                sidecar.base_url, streamed,
                expect=lambda kind, text: lambda r: r.status_code == 200 and r.content == sent)
            with anyio.fail_after(10):
                while stats.mirrored + stats.capture_errors < stats.enqueued:
                    await anyio.sleep(0.02)
    assert stats.discarded["capture_error"] == len(streamed) == stats.enqueued
    _logged(caplog, r"capture error")
    await _account(table, f"primary {fault}", stats, sqlite_url, 0, latencies, failures,
                   f"bytes relayed as sent; {stats.discarded['capture_error']} unreadable "
                   "captures discarded (capture_error)")


# --------------------------------------------------------------------------- the judge


@pytest.mark.anyio
async def test_a_judge_that_returns_garbage_leaves_the_pairs_and_scores_intact(
    llm: FakeLLMServer, traffic: list[Any], tmp_path: Path, sqlite_url: str,
    table: Callable[[Row], None],
) -> None:
    """Nightly scoring against a judge answering prose instead of a verdict, then cut JSON:
    the deterministic scores are written, the judge's are "not applicable" or left for the
    next run, and no stored pair is touched."""
    config = _config(tmp_path, sqlite_url, upstream=llm.base_url, candidates=llm.base_url)
    async with _sidecar(config) as sidecar:
        stats = sidecar.app.state.sidecar.shadow.stats
        failures, latencies = await _drive(sidecar.base_url, traffic)
        with anyio.fail_after(10):
            while stats.mirrored < stats.enqueued:
                await anyio.sleep(0.02)
    exchanges, outputs = await _rows(sqlite_url)

    llm.update_model("judge", verdict_garbage_rate=1.0)
    try:
        with FaultProxy(llm.host, llm.port) as proxy:
            judged = _config(tmp_path, sqlite_url, upstream=llm.base_url, candidates=llm.base_url,
                             judge=f"http://{proxy.url_host}")
            async with await Store.open(sqlite_url) as store:
                prose = await score(judged, store)
                na = await _take_judge_scores(store)
                proxy.fault = "bad_json"
                cut = await score(judged, store)
                assert await _take_judge_scores(store) == []
    finally:
        llm.update_model("judge", verdict_garbage_rate=0.0)
    # Prose: the first order is retried once, then the pair is "not applicable" (no verdict).
    assert prose.judge_retries == len(outputs) and prose.scores["judge"] == len(outputs)
    assert prose.scores["exact"] == len(outputs)
    assert {(s.value, s.passed) for s in na} == {(None, None)}
    # Cut JSON: the judge is unavailable; nothing is written, so the next run tries again.
    assert cut.judge_unavailable == len(outputs) and cut.scores["judge"] == 0
    assert "judge unavailable for" in "\n".join(cut.lines())
    assert await _rows(sqlite_url) == (exchanges, outputs)  # no stored pair touched
    await _account(table, "judge garbage / cut JSON", stats, sqlite_url, 0, latencies, failures,
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
    llm: FakeLLMServer, traffic: list[Any], tmp_path: Path, postgres_url: str,
    caplog: pytest.LogCaptureFixture, table: Callable[[Row], None],
) -> None:
    """Postgres goes away a third of the way through, once rows have been written (every
    connection reset, new ones refused), and comes back two thirds through: batches go to the
    spool meanwhile and are replayed, each exchange stored once."""
    caplog.set_level(logging.WARNING, logger="shadowroute")
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as link:
        via_proxy = url.set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False)
        config = _config(tmp_path, via_proxy, upstream=llm.base_url, candidates=llm.base_url)

        async def outage(done: int) -> None:
            if done == CALLS // 3:
                with anyio.fail_after(10):  # rows already written when it goes down
                    while stats.stored_exchanges == 0:
                        await anyio.sleep(0.01)
                await anyio.to_thread.run_sync(link.cut)
            elif done == 2 * CALLS // 3:
                await anyio.sleep(0.5)  # let the writer fail and spool at least once
                await anyio.to_thread.run_sync(link.restore)

        async with _sidecar(config) as sidecar:
            stats = sidecar.app.state.sidecar.shadow.stats
            failures, latencies = await _drive(sidecar.base_url, traffic, on_call=outage)
            with anyio.fail_after(20):
                while stats.stored_exchanges + stats.replayed_exchanges < stats.enqueued:
                    await anyio.sleep(0.05)
    assert stats.stored_exchanges > 0 and stats.store_errors > 0 and stats.spooled_exchanges > 0
    assert stats.replayed_exchanges == stats.spooled_exchanges
    line = _logged(caplog, r"store error")
    await _account(table, "Postgres stopped + restarted", stats, postgres_url, stats.spool_pending,
                   latencies, failures,
                   f"{stats.stored_exchanges} stored before the cut, "
                   f"{stats.spooled_exchanges} spooled during the outage, all replayed; "
                   f"log: {line[:50]}...")


# --------------------------------------------------------------------------- SIGTERM



LAST_WORDS = re.compile(
    r"lost (?P<lost_short>\d+); captures accepted (?P<accepted>\d+): stored (?P<stored>\d+), "
    r"spooled (?P<spooled>\d+), forwarded \d+, discarded (?P<discarded>\d+)(?: \((?P<why>[^)]*)\))?, "
    r"lost (?P<lost>\d+)"
)


@pytest.mark.anyio
async def test_sigterm_under_load_finishes_calls_in_flight_and_accounts_for_every_capture(
    llm: FakeLLMServer, traffic: list[Any], tmp_path: Path, sqlite_url: str,
    table: Callable[[Row], None],
) -> None:
    """``shadowroute serve`` in its own process; its candidate is slower than the traffic, so a
    queue builds up. SIGTERM arrives while a wave of calls is in flight (each held 0.5 s on the
    way to the upstream) and no call is sent after it. The calls in flight are answered; the
    queue drains until the shutdown deadline (1 s) and what is left is discarded and counted;
    the last line on stderr accounts for every capture, and the database agrees."""
    with tcp_socket("127.0.0.1", 0) as sock:  # a free port for `serve` to bind
        port = sock.getsockname()[1]
    config_file = tmp_path / "shadowroute.toml"
    with FakeLLMServer(default_settings(latency_scale=10)) as slow, FaultProxy(
        llm.host, llm.port, delay_s=0.5
    ) as held:
        config_file.write_text(f"""
database_url = "{sqlite_url}"
[models.small]
base_url = "{slow.base_url}/v1"
[tasks.classify_intent]
candidates = ["small"]
sample_rate = 1.0
noise_floor_rate = 0.0
[sidecar]
upstream = "http://{held.url_host}"
[mirror]
workers = 1
shutdown_deadline_s = 1.0
[store]
spool_dir = "{tmp_path / 'spool'}"
flush_interval_s = 0.05
""")
        process = subprocess.Popen(
            [sys.executable, "-m", "shadowroute", "serve", "--config", str(config_file),
             "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            await _wait_healthy(base_url, process)
            first, wave = traffic[: CALLS - CONCURRENCY], traffic[CALLS - CONCURRENCY:]
            failures, latencies = await _drive(base_url, first)
            async with anyio.create_task_group() as tg:
                results: list[tuple[list[str], list[float]]] = []

                async def in_flight() -> None:
                    results.append(await _drive(base_url, wave))

                tg.start_soon(in_flight)
                with anyio.fail_after(5):
                    while held.hits["pass"] < CALLS:  # the whole wave reached the upstream
                        await anyio.sleep(0.01)
                process.send_signal(signal.SIGTERM)
            failures += results[0][0]
            latencies += results[0][1]
            _, stderr = await anyio.to_thread.run_sync(lambda: process.communicate(timeout=30))
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    # uvicorn re-raises the signal once shut down: the exit status says SIGTERM stopped it.
    assert process.returncode == -signal.SIGTERM, stderr.decode()[-2000:]
    last = stderr.decode().strip().splitlines()[-1]
    words = LAST_WORDS.search(last)
    assert words, last
    exchanges, _ = await _rows(sqlite_url)
    accepted, discarded = int(words["accepted"]), int(words["discarded"])
    stored, spooled = int(words["stored"]), int(words["spooled"])
    assert accepted == len(latencies) == CALLS and stored == exchanges
    assert discarded > 0 and words["why"] == f"shutdown {discarded}"  # the deadline cut the queue
    lost = accepted - exchanges - spooled - discarded
    ordered = sorted(latencies)
    row = Row("SIGTERM under load (serve)", len(latencies), len(failures),
              sum(1 for s in latencies if s >= DELAY_BOUND_S), 1000 * ordered[len(ordered) // 2],
              1000 * ordered[-1], accepted, exchanges, spooled, discarded, lost,
              f"{len(wave)} calls in flight at SIGTERM all answered; queue drained 1 s, "
              f"{discarded} discarded (shutdown); last line: lost {words['lost']}")
    table(row)
    assert failures == [], failures[:5]
    assert row.delayed == 0, f"max primary latency {row.max_ms:.0f} ms"
    assert lost == 0 and int(words["lost"]) == 0 and int(words["lost_short"]) == 0


async def _wait_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        with anyio.fail_after(30):
            while process.poll() is None:
                try:
                    if (await client.get(base_url + "/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    await anyio.sleep(0.05)
    raise AssertionError(f"shadowroute serve exited with {process.returncode}")


# --------------------------------------------------------------------------- bounded memory

TYPICAL_CAPTURE_BYTES = 4096
"""A ~1 KB chat request held as Python objects, its answer and the Capture around them
(measured ~3 KB each with an unbounded queue)."""
SLACK_BYTES = 16 * 1024 * 1024
"""Allocator and database pages that come and go, whatever the queue holds."""


def test_memory_stays_bounded_against_a_stalled_candidate(
    tmp_path: Path, table: Callable[[Row], None]
) -> None:
    """100k captures offered while the only candidate never answers: the queue (1,000) fills,
    the rest is dropped and counted, and RSS grows by less than queue size x typical capture.
    The same probe with a queue as large as the traffic (the control) blows through that
    ceiling, so the bound is what keeps memory flat."""
    queue_size = 1000
    ceiling = queue_size * TYPICAL_CAPTURE_BYTES + SLACK_BYTES
    probe = Path(__file__).with_name("memory_probe.py")

    def start(name: str, captures: int, size: int) -> subprocess.Popen[str]:
        (tmp_path / name).mkdir()
        return subprocess.Popen(
            [sys.executable, str(probe), str(tmp_path / name), "--captures", str(captures),
             "--queue-size", str(size)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)

    bounded = start("bounded", 100_000, queue_size)
    control = start("control", 30_000, 30_200)
    (out, log), (control_out, _) = (p.communicate(timeout=120) for p in (bounded, control))
    assert bounded.returncode == control.returncode == 0, log
    got, unbounded = json.loads(out), json.loads(control_out)
    # One line says drops began (then at most one a minute), not one per dropped capture.
    assert log.count("queue full ([mirror] queue_size = 1000): new captures are dropped") == 1
    assert got["enqueued"] + got["dropped_queue_full"] == got["offered"] == 100_200
    assert got["dropped_queue_full"] >= 100_200 - queue_size - 8  # 4 workers hold one each
    assert got["growth"] < ceiling, got
    assert got["ledger"]["pending"] == 0 and got["ledger"]["lost"] == 0
    assert unbounded["growth"] > ceiling, unbounded  # without the bound, memory follows traffic
    table(Row(
        "stalled candidate, 100k captures", got["offered"], 0, 0, math.nan, math.nan,
        got["enqueued"],
        got["ledger"]["stored"], got["ledger"]["spooled"], got["ledger"]["discarded"],
        got["ledger"]["lost"],
        f"offered in-process; RSS +{got['growth'] / 2**20:.1f} MB (ceiling {ceiling / 2**20:.0f} MB = {queue_size} x "
        f"4 KB + 16 MB); {got['dropped_queue_full']:,} dropped (queue full, counted); control "
        f"with an unbounded queue: +{unbounded['growth'] / 2**20:.0f} MB for 30k"))
