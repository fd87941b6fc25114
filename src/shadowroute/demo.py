"""``shadowroute demo``: production-like traffic through shadow() and ShadowTransport, offline.

Starts the fake LLM server on loopback, declares four task types with cheaper candidates, drives
a few hundred calls to the ``frontier`` primary (half through :func:`shadow`, half through an
httpx client built on :class:`ShadowTransport`), prints what was stored, then scores it (label,
schema, similarity and the fake ``judge`` model; a quarter of the exchanges also get a second
answer from the primary, ``primary@replay``, for the noise floor) and prints the scores.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from rich.console import Console

from .config import Config, load_config
from .fakellm import EXTRACT_ORDER_SCHEMA, FakeLLMServer, default_settings, sample_requests
from .fakellm.tasks import ClassifyIntent
from .pipeline import Shadow
from .store import Store
from .scoring import run_scoring
from .report import run_report
from .summary import render_scores, render_summary, render_verdicts
from .transport import ShadowTransport

__all__ = ["demo_config", "run_demo"]

PRIMARY = "frontier"
TRAFFIC_MIX = {"classify_intent": 12, "extract_order": 2, "summarize_ticket": 2, "sentiment": 1}
CONCURRENCY = 16
INTENT_LABELS = ClassifyIntent.labels


def demo_config(base_url: str, database: Path, spool_dir: Path) -> Config:
    """The demo's configuration: the fake server's roster and prices, four task types with
    their scorers, and the fake ``judge`` model as the LLM judge."""
    roster = default_settings().models
    schema = spool_dir.parent / "extract_order.schema.json"
    schema.parent.mkdir(parents=True, exist_ok=True)
    schema.write_text(json.dumps(EXTRACT_ORDER_SCHEMA, indent=1))
    models: dict[str, Any] = {}
    for name in ("frontier", "small", "tiny", "claude-small", "judge"):
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
            "judge": {"model": "judge", "concurrency": 16},
            "tasks": {
                # A low-stakes classifier: the label must match the primary's; 90% agreement
                # and at most 5 points more disagreement than the primary has with itself.
                "classify_intent": {
                    "candidates": ["claude-small", "small", "tiny"],
                    "sample_rate": 1.0,
                    "noise_floor_rate": 0.5,
                    "scorers": {"label": {"labels": list(INTENT_LABELS)}},
                    "required_quality": 0.9,
                    "margin": 0.05,
                },
                "extract_order": {
                    "candidates": ["small", "claude-small"],
                    "sample_rate": 1.0,
                    "noise_floor_rate": 0.25,
                    "json_schema": str(schema),
                    "scorers": ["schema", "similarity", "judge"],
                },
                "summarize_ticket": {
                    "candidates": ["small", "claude-small"],
                    "sample_rate": 1.0,
                    "noise_floor_rate": 0.25,
                    "scorers": {"similarity": {"threshold": 0.95}, "judge": {}},
                },
                "sentiment": {
                    "candidates": ["tiny"],
                    "sample_rate": 0.3,
                    "noise_floor_rate": 0.25,
                    "scorers": {"label": {"labels": ["positive", "negative", "neutral"]},
                                "judge": {}},
                },
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


def run_demo(
    *, requests: int, database: Path, seed: int, console: Console, report_path: Path | None = None
) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    spool_dir = Path(".shadowroute") / "demo-spool"
    settings = default_settings(seed=seed)
    # A real primary does not always repeat itself: half of the replays are a fresh sample
    # (two draws of a 97%-accurate model disagree ~6% of the time), the noise floor.
    frontier = settings.models[PRIMARY].with_changes(consistency=0.5)
    with FakeLLMServer(settings.with_model(frontier)) as server:
        config = demo_config(server.base_url, database, spool_dir)
        console.print(f"fake LLM server on {server.base_url}; primary model: {PRIMARY}")
        sh, elapsed = anyio.run(_drive, config, server.base_url, requests, seed)
        counts = anyio.run(_summary, config.database_url)
        scored = anyio.run(run_scoring, config)
        report, html, twin = anyio.run(lambda: run_report(config, out=report_path))
    stats = sh.stats
    console.print(
        f"{stats.offered:,} production calls in {elapsed:.1f}s; sampled {stats.sampled:,}, "
        f"stored {stats.stored_exchanges:,} exchanges with {stats.stored_outputs:,} candidate "
        f"outputs; dropped {stats.dropped:,}, spooled {stats.spool_pending:,}, "
        f"candidate errors {sum(stats.candidate_errors.values()):,}"
    )
    console.print(render_summary(counts))
    for line in scored.lines():
        console.print(line, highlight=False)
    console.print(render_scores(scored.summary))
    console.print(render_verdicts(report))
    console.print(f"stored in {database}  (look again: shadowroute summary --database-url "
                  f"sqlite+aiosqlite:///{database})")
    console.print(f"report: {html}  (json twin: {twin})", highlight=False)
    return counts
