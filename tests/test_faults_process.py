"""The fault suite, whole processes (``pytest -m fault``): SIGTERM to ``shadowroute serve``
under load, and memory bounded against a stalled candidate -- each in a process of its own.

The traffic, the checks and the table are those of tests/test_faults.py (``support.faults``).
"""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from shadowroute.fakellm import FakeLLMServer, default_settings
from shadowroute.serving import tcp_socket
from support.faultproxy import FaultProxy
from support.faults import CALLS, CONCURRENCY, DELAY_BOUND_S, Row, drive, stored_rows

pytestmark = [pytest.mark.fault]


# --------------------------------------------------------------------------- SIGTERM


LAST_WORDS = re.compile(
    r"lost (?P<lost_short>\d+); captures accepted (?P<accepted>\d+): stored (?P<stored>\d+), "
    r"spooled (?P<spooled>\d+), forwarded \d+, discarded (?P<discarded>\d+)(?: \((?P<why>[^)]*)\))?, "
    r"lost (?P<lost>\d+)"
)


@pytest.mark.anyio
@pytest.mark.parametrize("mirror", ["off", "idle"])
async def test_sigterm_under_load_finishes_calls_in_flight_and_accounts_for_every_capture(
    fault_llm: FakeLLMServer, fault_traffic: list[Any], tmp_path: Path, sqlite_url: str,
    fault_table: Callable[[Row], None], mirror: str,
) -> None:
    """``shadowroute serve`` in its own process; its candidate is slower than the traffic, so a
    queue builds up. SIGTERM arrives while a wave of calls is in flight (each held 0.5 s on the
    way to the upstream) and no call is sent after it. The calls in flight are answered; the
    queue drains until the shutdown deadline (1 s) and what is left is discarded and counted;
    the last line on stderr accounts for every capture, and the database agrees. With
    ``mirror_process = "idle"`` the queue is drained in the mirror process, and the last line
    accounts for both."""
    with tcp_socket("127.0.0.1", 0) as sock:  # a free port for `serve` to bind
        port = sock.getsockname()[1]
    config_file = tmp_path / "shadowroute.toml"
    with FakeLLMServer(default_settings(latency_scale=10)) as slow, FaultProxy(
        fault_llm.host, fault_llm.port, delay_s=0.5
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
anthropic_upstream = "http://{held.url_host}"
mirror_process = "{mirror}"
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
            first, wave = fault_traffic[: CALLS - CONCURRENCY], fault_traffic[CALLS - CONCURRENCY:]
            failures, latencies = await drive(base_url, first)
            async with anyio.create_task_group() as tg:
                results: list[tuple[list[str], list[float]]] = []

                async def in_flight() -> None:
                    results.append(await drive(base_url, wave))

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
    exchanges, _ = await stored_rows(sqlite_url)
    accepted, discarded = int(words["accepted"]), int(words["discarded"])
    stored, spooled = int(words["stored"]), int(words["spooled"])
    assert accepted == len(latencies) == CALLS and stored == exchanges
    assert discarded > 0 and words["why"] == f"shutdown {discarded}"  # the deadline cut the queue
    lost = accepted - exchanges - spooled - discarded
    ordered = sorted(latencies)
    label = "SIGTERM under load (serve)" if mirror == "off" else \
        "SIGTERM under load (serve, mirror process)"
    row = Row(label, len(latencies), len(failures),
              sum(1 for s in latencies if s >= DELAY_BOUND_S), 1000 * ordered[len(ordered) // 2],
              1000 * ordered[-1], accepted, exchanges, spooled, discarded, lost,
              f"{len(wave)} calls in flight at SIGTERM all answered; queue drained 1 s, "
              f"{discarded} discarded (shutdown); last line: lost {words['lost']}")
    fault_table(row)
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
    tmp_path: Path, fault_table: Callable[[Row], None]
) -> None:
    """100k captures offered while the only candidate never answers: the queue (1,000) fills,
    the rest is dropped and counted, and RSS grows by less than queue size x typical capture.
    The same probe with a queue as large as the traffic (the control) blows through that
    ceiling, so the bound is what keeps memory flat."""
    queue_size = 1000
    ceiling = queue_size * TYPICAL_CAPTURE_BYTES + SLACK_BYTES
    probe = Path(__file__).parent / "support" / "memory_probe.py"

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
    fault_table(Row(
        "stalled candidate, 100k captures", got["offered"], 0, 0, math.nan, math.nan,
        got["enqueued"],
        got["ledger"]["stored"], got["ledger"]["spooled"], got["ledger"]["discarded"],
        got["ledger"]["lost"],
        f"offered in-process; RSS +{got['growth'] / 2**20:.1f} MB (ceiling {ceiling / 2**20:.0f} MB = {queue_size} x "
        f"4 KB + 16 MB); {got['dropped_queue_full']:,} dropped (queue full, counted); control "
        f"with an unbounded queue: +{unbounded['growth'] / 2**20:.0f} MB for 30k"))
