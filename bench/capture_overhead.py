"""What shadowing costs production, and how fast captures reach the database.

1. Added latency: the same steady stream of chat calls to the fake server's primary, once
   direct (the baseline, measured in this run), once through ``shadow()`` and once through an
   httpx client over ``ShadowTransport``, every call sampled and mirrored to two candidates.
   For ``shadow()`` the overhead is also measured exactly per call: its wall time minus the
   wrapped call's own duration.
2. Capture rate stored: captures offered as fast as the queue takes them (no candidates, so
   the figure is the capture -> resolve -> batch-write path), into SQLite and Postgres.

    python bench/capture_overhead.py [--rate 100] [--seconds 10] [--captures 20000]

The fake server runs in its own process so it does not share this interpreter's CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
from _util import (  # bench/ is on sys.path when a script runs
    pct,
    pg_create,
    pg_drop,
    start_fake_server,
)

from shadowroute import Shadow, ShadowTransport, load_config
from shadowroute.fakellm import sample_requests


def config(base_url: str, database_url: str, spool: Path, candidates: list[str]) -> Any:
    return load_config(
        data={
            "database_url": database_url,
            "models": {
                name: {"base_url": base_url + "/v1", "input_price": 0.15, "output_price": 0.6}
                for name in ("small", "tiny")
            },
            "tasks": {
                task: {"candidates": candidates, "sample_rate": 1.0}
                for task in ("classify_intent", "extract_order", "summarize_ticket", "sentiment")
            },
            "mirror": {"queue_size": 100_000},
            "store": {"spool_dir": str(spool)},
        }
    )


async def steady(rate: float, seconds: float, one: Callable[[int], Awaitable[None]]) -> None:
    """Open loop: call ``one(i)`` at start + i/rate, whatever the previous calls are doing."""
    total = int(rate * seconds)
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for i in range(total):
            delay = start + i / rate - anyio.current_time()
            if delay > 0:
                await anyio.sleep(delay)
            tg.start_soon(one, i)


async def latency_phase(base_url: str, rate: float, seconds: float, tmp: Path) -> None:
    requests = [
        {"model": "frontier", **item.request}
        for item in sample_requests(int(rate * seconds), seed=3)
    ]
    tasks = [item.task for item in sample_requests(int(rate * seconds), seed=3)]
    cfg = config(base_url, f"sqlite+aiosqlite:///{tmp / 'latency.db'}", tmp / "spool1", ["small", "tiny"])
    results: dict[str, list[float]] = {"direct": [], "shadow()": [], "ShadowTransport": []}
    overhead_us: list[float] = []

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def direct(i: int) -> None:
            began = time.perf_counter()
            (await client.post("/v1/chat/completions", json=requests[i])).raise_for_status()
            results["direct"].append((time.perf_counter() - began) * 1000)

        await steady(rate, 1.0, direct)  # warm up connections
        results["direct"].clear()
        await steady(rate, seconds, direct)

        async with Shadow(cfg) as sh, httpx.AsyncClient(
            base_url=base_url, timeout=30, transport=ShadowTransport(sh)
        ) as shadowed:

            async def wrapped(i: int) -> None:
                inner: list[float] = []

                async def call() -> dict[str, Any]:
                    began_inner = time.perf_counter()
                    response = await client.post("/v1/chat/completions", json=requests[i])
                    response.raise_for_status()
                    body = response.json()
                    inner.append(time.perf_counter() - began_inner)
                    return body

                began = time.perf_counter()
                await sh.shadow(task=tasks[i], request=requests[i], call=call)
                total = time.perf_counter() - began
                results["shadow()"].append(total * 1000)
                overhead_us.append((total - inner[0]) * 1e6)

            async def transported(i: int) -> None:
                began = time.perf_counter()
                response = await shadowed.post(
                    "/v1/chat/completions", json=requests[i], headers={"X-Shadowroute-Task": tasks[i]}
                )
                response.raise_for_status()
                results["ShadowTransport"].append((time.perf_counter() - began) * 1000)

            await steady(rate, seconds, wrapped)
            await steady(rate, seconds, transported)
        stats = sh.stats

    base50, base99 = pct(results["direct"], 0.5), pct(results["direct"], 0.99)
    print(f"\n== added latency: {rate:g} calls/s for {seconds:g}s per path, every call mirrored "
          f"to 2 candidates (fake primary ~40 ms) ==")
    print(f"{'path':<16} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs direct':>14} {'p99 vs direct':>14}")
    for name, values in results.items():
        p50, p99 = pct(values, 0.5), pct(values, 0.99)
        print(f"{name:<16} {len(values):>5} {p50:>8.2f} {p99:>8.2f} {p50 - base50:>+13.2f}ms "
              f"{p99 - base99:>+13.2f}ms")
    print(f"shadow() own overhead per call (wall time minus the wrapped call): "
          f"p50 {pct(overhead_us, 0.5):.1f} us, p99 {pct(overhead_us, 0.99):.1f} us, "
          f"mean {statistics.fmean(overhead_us):.1f} us")
    print(f"mirrored {stats.mirrored}, candidate calls {stats.candidate_calls}, "
          f"stored {stats.stored_exchanges}, dropped {stats.dropped}, "
          f"candidate errors {dict(stats.candidate_errors)}")


async def store_phase(label: str, database_url: str, captures: int, tmp: Path) -> None:
    cfg = config("http://127.0.0.1:9", database_url, tmp / f"spool-{label}", [])
    traffic = sample_requests(200, seed=5)
    response = {
        "id": "c", "object": "chat.completion", "model": "frontier",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "refund"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 3, "total_tokens": 83},
    }
    async with Shadow(cfg) as sh:
        began = time.perf_counter()
        offer_began = began
        for i in range(captures):
            item = traffic[i % len(traffic)]
            sh.offer(item.task, {"model": "frontier", **item.request}, response, 40.0)
            if i % 1000 == 999:
                await anyio.sleep(0)  # let the workers run, as a server's event loop would
        offered_s = time.perf_counter() - offer_began
        while sh.stats.stored_exchanges + sh.stats.dropped < captures:
            await anyio.sleep(0.01)
        elapsed = time.perf_counter() - began
    print(f"{label:<9} {captures:>7} captures stored in {elapsed:6.2f}s = "
          f"{captures / elapsed:>8,.0f} captures/s  (offer loop {offered_s * 1e6 / captures:.1f} us "
          f"per capture; dropped {sh.stats.dropped})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="per path")
    parser.add_argument("--captures", type=int, default=20_000, help="for the store rate")
    args = parser.parse_args()

    process, base_url = start_fake_server()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        try:
            anyio.run(latency_phase, base_url, args.rate, args.seconds, tmp)
        finally:
            process.terminate()
            process.wait()
        print("\n== capture rate stored (capture -> resolve -> batched write, no candidates) ==")
        anyio.run(store_phase, "sqlite", f"sqlite+aiosqlite:///{tmp / 'rate.db'}", args.captures, tmp)
        url = pg_create()
        if url is not None:
            from shadowroute.store import migrate

            try:
                anyio.run(migrate, url)
                anyio.run(store_phase, "postgres", url, args.captures, tmp)
            finally:
                pg_drop(url)


if __name__ == "__main__":
    main()
