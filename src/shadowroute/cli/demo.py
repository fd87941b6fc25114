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
import shutil
import time
from importlib import resources
from pathlib import Path
from string import Template
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
from ..report.policies import best_cascade_dict
from ..report.run import default_report_path
from ..routing import Router
from ..routing import promote as route_ops
from ..scoring import run_scoring
from ..store import Store
from .tables import render_scores, render_summary, render_verdicts

__all__ = ["demo_config", "run_demo"]

PRIMARY = "frontier"
TRAFFIC_MIX = {"classify_intent": 12, "extract_order": 2, "summarize_ticket": 2, "sentiment": 8}
ABSTAIN = 0.95
"""How often ``tiny`` says "I don't know." instead of a wrong ``sentiment`` label."""
TOOL_SHARE = 10
"""One tool-calling (``lookup_order``) call through the Responses API per this many calls."""
ROUTED_REQUESTS = 300
"""Calls sent through the Router after the promotions."""
CONCURRENCY = 16
INTENT_LABELS = ClassifyIntent.labels


DEMO_TOML = "templates/demo.toml"


def demo_paths(database: Path) -> dict[str, Path]:
    """The files the demo keeps beside its database: its config, route map, the JSON schema
    of ``extract_order`` and the spool."""
    stem, folder = database.stem, database.parent
    return {
        "config": folder / f"{stem}.toml",
        "routes": folder / f"{stem}-routes.yaml",
        "schema": folder / f"{stem}-extract_order.schema.json",
        "spool": folder / ".shadowroute" / f"{stem}-spool",
    }


def demo_config(base_url: str, database: Path) -> Config:
    """Write the demo's configuration beside ``database`` (``shadowroute-demo.toml``: the fake
    server's roster and prices, five task types with their scorers, the fake ``judge`` model
    as the LLM judge) and load it from there, so the shell sees what the demo saw."""
    paths = demo_paths(database)
    paths["schema"].parent.mkdir(parents=True, exist_ok=True)
    paths["schema"].write_text(json.dumps(EXTRACT_ORDER_SCHEMA, indent=1))
    roster = default_settings().models
    prices = {f"{name.replace('-', '_')}_{side}": getattr(roster[name], f"{side}put_price")
              for name in ("frontier", "small", "tiny", "claude-small", "judge")
              for side in ("in", "out")}
    text = Template(resources.files(__package__).joinpath(DEMO_TOML).read_text()).substitute(
        config_name=_shell_path(paths["config"]),
        base_url=base_url,
        port=base_url.rsplit(":", 1)[-1],
        database_url=f"sqlite+aiosqlite:///{database.resolve()}",
        intent_labels=json.dumps(list(INTENT_LABELS)),
        schema_file=paths["schema"].name,
        spool_dir=paths["spool"].resolve(),
        routes_file=paths["routes"].name,
        **prices,
    )
    paths["config"].write_text(text)
    return load_config(paths["config"])


def _shell_path(path: Path) -> str:
    """``path`` as typed in a shell opened where the demo ran."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


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
    """Promote every task type the report recommends, as a whole or as the cascade or partial
    route its first screen names; the commands it would take."""
    done = []
    async with await Store.open(config.database_url) as store:
        for item in report.overview["promotions"]:
            await route_ops.promote(config, store, item["task"], item["model"],
                                    by="shadowroute demo")
            done.append(item["command"])
        for action in report.actions:
            if action.action not in ("CASCADE", "PARTIAL"):
                continue
            (task,) = [t for t in report.tasks if t.task == action.task]
            (candidate,) = [c for c in task.candidates if c.model == action.model]
            best = best_cascade_dict(candidate.cascades) if action.action == "CASCADE" else None
            await route_ops.promote(config, store, action.task, action.model,
                                    by="shadowroute demo",
                                    cascade=best["policy"] if best else None,
                                    partial=best is None)
            done.append(action.command)
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
            key = f"{item.task} -> {reply.model}"
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
    paths = demo_paths(database)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    paths["routes"].unlink(missing_ok=True)  # a fresh route map too
    shutil.rmtree(paths["spool"], ignore_errors=True)  # and no captures of an earlier run
    final_path = report_path or default_report_path()
    first_path = final_path.with_name(f"{final_path.stem}-night-1.html")
    settings = default_settings(seed=seed)
    # A real primary does not always repeat itself: half of the replays are a fresh sample
    # (two draws of a 97%-accurate model disagree ~6% of the time), the noise floor.
    frontier = settings.models[PRIMARY].with_changes(
        consistency=0.5, task_accuracy={**settings.models[PRIMARY].task_accuracy,
                                        "sentiment": 0.99})
    # tiny knows when it does not know a sentiment: it says so instead of most wrong labels,
    # which makes it a cascade (a refusal check escalates those) though it HOLDs as a whole.
    tiny = settings.models["tiny"].with_changes(abstain={"sentiment": ABSTAIN})
    with FakeLLMServer(settings.with_model(frontier).with_model(tiny)) as server:
        config = demo_config(server.base_url, database)
        console.print(f"fake LLM server on {server.base_url}; primary model: {PRIMARY}; "
                      f"config: {paths['config']}", highlight=False)
        sh, elapsed = anyio.run(_drive, config, server.base_url, requests, seed)
        counts = anyio.run(_summary, config.database_url)
        scored = anyio.run(run_scoring, config)
        report, html, twin = anyio.run(lambda: run_report(config, out=first_path))
        promoted = anyio.run(_promote, config, report)
        served, routed_sh = anyio.run(_routed, config, ROUTED_REQUESTS, seed)
        # The next night: the Router's calls are scored (reverse-shadow pairs included) and
        # the report checks the promoted task type for drift.
        rescored = anyio.run(run_scoring, config)
        final, final_html, final_twin = anyio.run(lambda: run_report(config, out=final_path))
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
    console.print(f"report of the first night: {html}  (json twin: {twin})", highlight=False)
    _print_loop(console, config, report, promoted, served, routed_sh)
    console.print(
        f"second night: scored {rescored.outputs:,} more outputs (the Router's calls); "
        f"{_changes(report, final)}", highlight=False)
    for p in final.promoted:
        if p.mode == "cascade" and p.observed is not None:
            console.print(
                f"{p.task} as a cascade on {p.model}: {p.observed:.1%} of "
                f"{sum(p.served.values()):,} routed calls escalated to {p.primary} (promised "
                f"at most {p.promised:.1%}, break-even {p.break_even:.1%}); drift check "
                f"{p.verdict}", highlight=False)
    console.print(f"report: {final_html}  (json twin: {final_twin})", highlight=False)
    name = _shell_path(paths["config"])
    console.print(
        f"look again (the demo's config and database; `report` reproduces these verdicts):\n"
        f"  shadowroute report  --config {name}\n"
        f"  shadowroute summary --config {name}\n"
        f"  shadowroute routes  --config {name}", highlight=False, soft_wrap=True)
    return counts


def _changes(before: Any, after: Any) -> str:
    """What the second night's report decided differently from the first."""
    def verdicts(report: Any) -> dict[tuple[str, str], str]:
        return {(t.task, c.model): c.verdict for t in report.tasks for c in t.candidates}

    old, new = verdicts(before), verdicts(after)
    moved = [f"{task} -> {model}: {old.get((task, model), 'new')} -> {verdict}"
             for (task, model), verdict in sorted(new.items())
             if old.get((task, model)) != verdict]
    drift = [f"{p.task} on {p.model}: {p.verdict}" for p in after.promoted]
    return ("verdicts changed: " + "; ".join(moved) if moved else "no verdict changed") + (
        "; drift check of the promoted " + "; ".join(drift) if drift else "")


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
        f"they run, ${report.money['evaluation_next']:,.2f}/month at the shares this report "
        "sets (settled and unlikely candidates called less)", highlight=False)
    console.print(
        f"after the promotions, {ROUTED_REQUESTS} calls through the Router: "
        + ", ".join(f"{key}: {n}" for key, n in sorted(served.items()))
        + f"; {sh.stats.reverse_shadows} answered by {PRIMARY} too (reverse shadow), "
        f"{sh.stats.reverse_failed} reverse shadows failed", highlight=False)
    stats = sh.stats
    skipped = stats.skipped_settled + stats.skipped_allocated + stats.skipped_retired
    made = sum(m.calls for name, m in stats.models.items() if name != PRIMARY)
    if skipped:
        console.print(
            f"candidate calls on the sampled traffic: {made} made, {skipped} not made at the "
            f"shares the report set ({skipped / (skipped + made):.0%} fewer: "
            f"{stats.skipped_settled} settled, {stats.skipped_allocated} unlikely to pass)",
            highlight=False)
    console.print(f"route map: {config.routes_file()}; the next `shadowroute score` and "
                  "`shadowroute report` check the reverse-shadow pairs for drift", highlight=False)
