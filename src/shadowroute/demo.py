"""``shadowroute demo``: production-like traffic through shadow() and ShadowTransport, offline.

Starts the fake LLM server on loopback, declares four task types with cheaper candidates, drives
a few hundred calls to the ``frontier`` primary (half through :func:`shadow`, half through an
httpx client built on :class:`ShadowTransport`), then prints what was stored.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from rich.console import Console

from .config import Config, load_config
from .fakellm import FakeLLMServer, default_settings, sample_requests
from .pipeline import Shadow
from .store import Store
from .summary import render_summary
from .transport import ShadowTransport

__all__ = ["demo_config", "run_demo"]

PRIMARY = "frontier"
TRAFFIC_MIX = {"classify_intent": 5, "extract_order": 2, "summarize_ticket": 2, "sentiment": 1}
CONCURRENCY = 16


def demo_config(base_url: str, database: Path, spool_dir: Path) -> Config:
    """The demo's configuration: the fake server's roster and prices, four task types."""
    roster = default_settings().models
    models: dict[str, Any] = {}
    for name in ("frontier", "small", "tiny", "claude-small"):
        fake = roster[name]
        anthropic = name.startswith("claude")
        models[name] = {
            "base_url": base_url if anthropic else base_url + "/v1",
            "api": "anthropic" if anthropic else "openai",
            "input_price": fake.input_price,
            "output_price": fake.output_price,
        }
    return load_config(
        data={
            "database_url": f"sqlite+aiosqlite:///{database}",
            "seed": 7,
            "models": models,
            "tasks": {
                "classify_intent": {"candidates": ["small", "tiny"], "sample_rate": 0.5},
                "extract_order": {"candidates": ["small", "claude-small"], "sample_rate": 1.0},
                "summarize_ticket": {"candidates": ["small", "claude-small"], "sample_rate": 1.0},
                "sentiment": {"candidates": ["tiny"], "sample_rate": 0.3},
            },
            "store": {"spool_dir": str(spool_dir)},
        }
    )


async def _drive(config: Config, base_url: str, requests: int, seed: int) -> tuple[Shadow, float]:
    traffic = sample_requests(requests, seed=seed, tasks=TRAFFIC_MIX)
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    async with Shadow(config) as sh, httpx.AsyncClient(base_url=base_url) as direct, httpx.AsyncClient(
        base_url=base_url, transport=ShadowTransport(sh)
    ) as shadowed:

        async def primary(body: dict[str, Any]) -> dict[str, Any]:
            response = await direct.post("/v1/chat/completions", json=body)
            response.raise_for_status()
            return response.json()

        async def one(index: int) -> None:
            item = traffic[index]
            body = {"model": PRIMARY, **item.request}
            async with limiter:
                if index % 2 == 0:  # in-process wrapper
                    await sh.shadow(task=item.task, request=body, call=lambda: primary(body))
                else:  # an SDK-style client over the shadowing transport
                    response = await shadowed.post(
                        "/v1/chat/completions", json=body, headers={"X-Shadowroute-Task": item.task}
                    )
                    response.raise_for_status()

        began = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for index in range(len(traffic)):
                tg.start_soon(one, index)
        elapsed = time.perf_counter() - began
    return sh, elapsed


async def _summary(url: str) -> dict[str, Any]:
    async with await Store.open(url) as store:
        return await store.counts()


def run_demo(*, requests: int, database: Path, seed: int, console: Console) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    spool_dir = Path(".shadowroute") / "demo-spool"
    with FakeLLMServer(default_settings(seed=seed)) as server:
        config = demo_config(server.base_url, database, spool_dir)
        console.print(f"fake LLM server on {server.base_url}; primary model: {PRIMARY}")
        sh, elapsed = anyio.run(_drive, config, server.base_url, requests, seed)
        counts = anyio.run(_summary, config.database_url)
    stats = sh.stats
    console.print(
        f"{stats.offered:,} production calls in {elapsed:.1f}s; sampled {stats.sampled:,}, "
        f"stored {stats.stored_exchanges:,} exchanges with {stats.stored_outputs:,} candidate "
        f"outputs; dropped {stats.dropped:,}, spooled {stats.spool_pending:,}, "
        f"candidate errors {sum(stats.candidate_errors.values()):,}"
    )
    console.print(render_summary(counts))
    console.print(f"stored in {database}  (look again: shadowroute summary --database-url "
                  f"sqlite+aiosqlite:///{database})")
    return counts
