"""``shadowroute demo``: production-like traffic through shadow() and ShadowTransport, offline.

Starts the fake LLM server on loopback, declares five task types with cheaper candidates, drives
a few hundred calls to the ``frontier`` primary (half through :func:`shadow`, half through an
httpx client built on :class:`ShadowTransport`, a quarter of those streamed without usage, as
many SDK callers do), plus a tool-calling task through the OpenAI Responses API (half of it
streamed) mirrored to a chat and an Anthropic candidate, prints what was stored, then scores it
(label, schema, similarity -- tool calls as calls -- and the fake ``judge`` model; a quarter of
the exchanges also get a second answer from the primary, ``primary@replay``, for the noise
floor), prints the scores and writes the report. Then it closes the loop: it promotes what the report allows, prints the monthly
cost before and after, and sends more traffic through the :class:`~shadowroute.Router`, which
serves promoted task types with their new model and reverse-shadows a slice to the primary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from rich.console import Console

from ..capture.transport import ShadowTransport
from ..config import Config, load_config
from ..fakellm import EXTRACT_ORDER_SCHEMA, FakeLLMServer, default_settings, sample_requests
from ..fakellm.tasks import ClassifyIntent
from ..formats.responses import openai_request_to_responses
from ..pipeline.core import Shadow
from ..report import run_report
from ..routing import Router
from ..routing import promote as route_ops
from ..scoring import run_scoring
from ..store import Store
from .tables import render_scores, render_summary, render_verdicts

__all__ = ["demo_config", "run_demo"]

PRIMARY = "frontier"
TRAFFIC_MIX = {"classify_intent": 12, "extract_order": 2, "summarize_ticket": 2, "sentiment": 1}
TOOL_SHARE = 10
"""One tool-calling (``lookup_order``) call through the Responses API per this many calls."""
ROUTED_REQUESTS = 300
"""Calls sent through the Router after the promotions."""
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
                # A support agent calling tools through the Responses API: its candidates are
                # called in their own APIs (chat completions, Anthropic) and pass only when
                # they make the primary's calls, with the same arguments.
                "lookup_order": {
                    "candidates": ["claude-small", "small"],
                    "sample_rate": 1.0,
                    "noise_floor_rate": 0.25,
                    "scorers": ["similarity"],
                },
            },
            "store": {"spool_dir": str(spool_dir)},
            # Drain every capture at the end, however slow this machine is right now: a
            # capture dropped at the deadline would change the verdicts.
            "mirror": {"shutdown_deadline_s": 300},
            "routes": {"file": str(spool_dir.parent / "demo-routes.yaml"),
                       "reverse_shadow_rate": 0.2},
        }
    )


async def _drive(config: Config, base_url: str, requests: int, seed: int) -> tuple[Shadow, float]:
    traffic = sample_requests(requests, seed=seed, tasks=TRAFFIC_MIX)
    tools = sample_requests(max(requests // TOOL_SHARE, 1), seed=seed + 2, tasks=["lookup_order"])
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    async with Shadow(config) as sh, httpx.AsyncClient(base_url=base_url) as direct, httpx.AsyncClient(
        base_url=base_url, transport=ShadowTransport(sh)
    ) as shadowed:

        async def primary(body: dict[str, Any]) -> dict[str, Any]:
            response = await direct.post("/v1/chat/completions", json=body)
            response.raise_for_status()
            return response.json()

        async def post(path: str, body: dict[str, Any], task: str) -> None:
            """A call through the shadowing transport, read to the end as an SDK would."""
            headers = {"X-Shadowroute-Task": task}
            async with shadowed.stream("POST", path, json=body, headers=headers) as response:
                response.raise_for_status()
                await response.aread()

        async def one(index: int) -> None:
            item = traffic[index]
            body = {"model": PRIMARY, **item.request}
            async with limiter:
                if index % 2 == 0:  # in-process wrapper
                    await sh.shadow(task=item.task, request=body, call=lambda: primary(body))
                elif index % 4 == 1:  # streamed, without stream_options: no usage reported
                    await post("/v1/chat/completions", {**body, "stream": True}, item.task)
                else:  # an SDK-style client over the shadowing transport
                    await post("/v1/chat/completions", body, item.task)

        async def lookup(index: int) -> None:
            body = openai_request_to_responses({"model": PRIMARY, **tools[index].request})
            async with limiter:
                await post("/v1/responses", {**body, "stream": index % 2 == 0}, "lookup_order")

        began = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for index in range(len(traffic)):
                tg.start_soon(one, index)
            for index in range(len(tools)):
                tg.start_soon(lookup, index)
        elapsed = time.perf_counter() - began
    return sh, elapsed


async def _promote(config: Config, report: Any) -> list[str]:
    """Promote every task type the report recommends; the commands it would take."""
    done = []
    async with await Store.open(config.database_url) as store:
        for item in report.overview["promotions"]:
            await route_ops.promote(config, store, item["task"], item["model"],
                                    by="shadowroute demo")
            done.append(item["command"])
    return done


async def _routed(config: Config, requests: int, seed: int) -> tuple[dict[str, int], Shadow]:
    """Production after the promotions: the Router calls each task type's model itself
    (``call=None``: the provider of its [models] entry, Anthropic API included)."""
    served: dict[str, int] = {}
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    async with Shadow(config) as sh, Router(config) as router:

        async def one(item: Any) -> None:
            async with limiter:
                reply = await router.route_and_shadow(
                    task=item.task, request={"model": PRIMARY, **item.request})
            key = f"{item.task} -> {reply['model']}"
            served[key] = served.get(key, 0) + 1

        async with anyio.create_task_group() as tg:
            for item in sample_requests(requests, seed=seed + 1, tasks=TRAFFIC_MIX):
                tg.start_soon(one, item)
    return served, sh


async def _summary(url: str) -> dict[str, Any]:
    async with await Store.open(url) as store:
        return await store.counts()


def run_demo(
    *, requests: int, database: Path, seed: int, console: Console, report_path: Path | None = None
) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    spool_dir = Path(".shadowroute") / "demo-spool"
    (spool_dir.parent / "demo-routes.yaml").unlink(missing_ok=True)  # a fresh route map too
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
        promoted = anyio.run(_promote, config, report)
        served, routed_sh = anyio.run(_routed, config, ROUTED_REQUESTS, seed)
    stats = sh.stats
    console.print(
        f"{stats.offered:,} production calls in {elapsed:.1f}s; sampled {stats.sampled:,}, "
        f"stored {stats.stored_exchanges:,} exchanges with {stats.stored_outputs:,} candidate "
        f"outputs; dropped {stats.dropped:,}, spooled {stats.spool_pending:,}, "
        f"candidate errors {sum(stats.candidate_errors.values()):,}"
    )
    console.print(render_summary(counts))
    for line in scored.lines():
        console.print(line, highlight=False, markup=False)
    console.print(render_scores(scored.summary))
    console.print(render_verdicts(report))
    console.print(f"stored in {database}  (look again: shadowroute summary --database-url "
                  f"sqlite+aiosqlite:///{database})")
    console.print(f"report: {html}  (json twin: {twin})", highlight=False)
    _print_loop(console, config, report, promoted, served, routed_sh)
    return counts


def _print_loop(console: Console, config: Config, report: Any, promoted: list[str],
                served: dict[str, int], sh: Shadow) -> None:
    overview = report.overview
    before = overview["monthly_primary"]
    saved = sum(p["monthly_savings"] or 0.0 for p in overview["promotions"])
    for command in promoted:
        console.print(f"ran: {command}", highlight=False)
    if not promoted:
        console.print("no task type could be promoted this time")
    console.print(
        f"monthly cost at this volume (calls only): before ${before:,.2f} (every task type on "
        f"{PRIMARY}), after ${before - saved:,.2f} ({saved / before if before else 0:.0%} less); "
        f"shadowing and judging cost ${overview['monthly_evaluation']:,.2f}/month on top while "
        "they run", highlight=False)
    console.print(
        f"after the promotions, {ROUTED_REQUESTS} calls through the Router: "
        + ", ".join(f"{key}: {n}" for key, n in sorted(served.items()))
        + f"; {sh.stats.reverse_shadows} answered by {PRIMARY} too (reverse shadow), "
        f"{sh.stats.reverse_failed} reverse shadows failed", highlight=False)
    console.print(f"route map: {config.routes_file()}; the next `shadowroute score` and "
                  "`shadowroute report` check the reverse-shadow pairs for drift", highlight=False)
