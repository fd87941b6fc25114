"""How fast ``shadowroute score`` gets through stored pairs, with and without the LLM judge.

1. Deterministic scorers (no judge) on ``--pairs`` stored (exchange, candidate output) pairs:
   classify_intent ``label`` + ``similarity``, extract_order ``schema`` + ``similarity`` (JSON
   field by field), summarize_ticket ``similarity``. The pairs are realistic: requests from
   ``sample_requests`` answered offline (no HTTP) by the fake server's simulators for the
   primary (``frontier``, 97% accurate) and two candidates (``small`` 85%, ``tiny`` 70%).
   Per backend (a temporary SQLite file; a fresh Postgres database, dropped at the end): the
   fill rate (``Store.write`` in batches), then ``score()`` end to end with 1 and 2 workers
   (scores deleted between runs), then a re-run with nothing left to score (the cost of the
   idempotency check). The baseline, measured in the same run, is the same scorers over the
   same pairs in a tight in-memory loop (no database), in the job's order (one task type at a
   time, the candidates of an exchange side by side); each run is printed as a share of that
   ceiling, i.e. what the database path costs.
2. Judged pairs/s: ``--judge-pairs`` pairs on SQLite scored ``exact`` + ``judge``, the judge
   being the fake server's ``judge`` model (its own process) at ``[judge] concurrency`` C.
   The judge asks in both orders, so the ceiling is C / (2 x the judge's mean latency).

    python bench/scoring_throughput.py [--pairs 100000] [--judge-pairs 2000]
        [--judge-concurrency 16] [--no-postgres] [--seed 11]

On Postgres the tables are ANALYZEd after the fill and ``scores`` is VACUUMed after each
delete (what autovacuum would do on a live server); SQLite is used as shadowroute leaves it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from _util import (  # bench/ is on sys.path when a script runs
    CANDIDATES,
    TASKS,
    admin_sql,
    generate_exchanges,
    pg_create,
    pg_drop,
    scoring_config,
    start_fake_server,
)
from sqlalchemy import text

from shadowroute.config import Config
from shadowroute.fakellm import EXTRACT_ORDER_SCHEMA
from shadowroute.records import ExchangeRecord
from shadowroute.scoring import ScoreOptions, ScoreRunReport, plan_for, score
from shadowroute.store import Store, migrate

WRITE_BATCH = 500
"""Exchanges per ``Store.write`` (1,000 pairs)."""


def say(message: str) -> None:
    print(message, flush=True)


def baseline(config: Config, exchanges: list[ExchangeRecord]) -> float:
    """Seconds for every configured scorer over every pair, in memory (fresh scorers), in the
    job's order: one task type at a time, exchanges by id, their candidates side by side."""
    plans = {task: plan_for(config, task) for task in TASKS}
    work = [(plans[x.task_type].scorers, x.primary_output, o.output, x.task_type, x.id)
            for x in exchanges for o in x.outputs]
    work.sort(key=lambda item: (item[3], item[4]))
    began = time.perf_counter()
    for specs, primary, output, _, _ in work:
        for spec in specs:
            spec.scorer.score(primary, output)  # type: ignore[arg-type]
    return time.perf_counter() - began


async def timed_score(
    store: Store, config: Config, workers: int, **kwargs: Any
) -> tuple[ScoreRunReport, float]:
    began = time.perf_counter()
    report = await score(config, store, ScoreOptions(workers=workers), **kwargs)
    return report, time.perf_counter() - began


async def fill(store: Store, exchanges: list[ExchangeRecord]) -> float:
    began = time.perf_counter()
    for start in range(0, len(exchanges), WRITE_BATCH):
        await store.write(exchanges[start : start + WRITE_BATCH])
    return time.perf_counter() - began


async def deterministic_phase(
    label: str, url: str, exchanges: list[ExchangeRecord], config: Config, ceiling: float
) -> None:
    pairs = sum(len(x.outputs) for x in exchanges)
    say(f"  {label}: filling {pairs:,} pairs ...")
    async with await Store.open(url) as store:
        postgres = store.engine.dialect.name == "postgresql"
        fill_s = await fill(store, exchanges)
        note = ""
        if postgres:
            await admin_sql(store, "ANALYZE")
            async with store.engine.connect() as conn:
                note = f"; server autovacuum {await conn.scalar(text('SHOW autovacuum'))}"
        say(f"{label:<9} fill: {len(exchanges):,} exchanges / {pairs:,} pairs in {fill_s:.1f}s "
            f"= {pairs / fill_s:,.0f} pairs/s ({len(exchanges) / fill_s:,.0f} exchanges/s, "
            f"batches of {WRITE_BATCH} exchanges{note})")
        say(f"{'backend':<9} {'workers':>7} {'seconds':>8} {'outputs':>8} {'outputs/s':>10} "
            f"{'scores/s':>9} {'of ceiling':>10}")
        for workers in (1, 2):
            async with store.engine.begin() as conn:
                await conn.execute(text("DELETE FROM scores"))
            if postgres:
                await admin_sql(store, "VACUUM ANALYZE scores")
            report, seconds = await timed_score(store, config, workers)
            rows = sum(report.scores.values())
            rate = report.outputs / seconds
            say(f"{label:<9} {workers:>7} {seconds:>8.1f} {report.outputs:>8,} {rate:>10,.0f} "
                f"{rows / seconds:>9,.0f} {rate / ceiling:>10.1%}")
            if report.outputs != pairs or report.left_unscored or report.scorer_errors:
                say(f"  !! expected {pairs:,} outputs; left unscored {report.left_unscored:,}, "
                    f"scorer errors {report.scorer_errors:,}")
        report, seconds = await timed_score(store, config, 2)
        say(f"{label:<9} re-run with nothing to score: {seconds:.2f}s "
            f"({report.outputs} outputs scored, {report.left_unscored} left)")


async def judge_phase(
    url: str, exchanges: list[ExchangeRecord], config: Config, concurrency: int, latency_s: float
) -> None:
    pairs = sum(len(x.outputs) for x in exchanges)
    async with await Store.open(url) as store:
        await fill(store, exchanges)
        report, seconds = await timed_score(store, config, 2)
    judged = report.scores["judge"]
    ceiling = concurrency / (2 * latency_s)
    rate = judged / seconds
    say(f"{'pairs':>6} {'seconds':>8} {'judged/s':>9} {'ceiling/s':>10} {'of ceiling':>10} "
        f"{'calls':>6} {'retries':>7} {'flips':>6} {'judge $':>9}")
    say(f"{pairs:>6,} {seconds:>8.1f} {rate:>9,.1f} {ceiling:>10,.1f} {rate / ceiling:>10.1%} "
        f"{report.judge_calls:>6,} {report.judge_retries:>7,} {report.judge_flips:>6,} "
        f"{report.judge_cost_usd:>9.4f}")
    if judged != pairs or report.left_unscored or report.judge_unavailable:
        say(f"  !! judged {judged:,} of {pairs:,}; left unscored {report.left_unscored:,}, "
            f"judge unavailable {report.judge_unavailable:,}")






def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=100_000, help="deterministic phase")
    parser.add_argument("--judge-pairs", type=int, default=2_000, help="judge phase")
    parser.add_argument("--judge-concurrency", type=int, default=16, help="[judge] concurrency")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--seed", type=int, default=11, help="of the sampled requests")
    args = parser.parse_args()

    n_exchanges = max(args.pairs, args.judge_pairs) // len(CANDIDATES)
    say(f"generating {n_exchanges:,} exchanges x {len(CANDIDATES)} candidate outputs offline ...")
    began = time.perf_counter()
    exchanges = generate_exchanges(n_exchanges, args.seed)
    say(f"  generated in {time.perf_counter() - began:.1f}s")
    scored = exchanges[: args.pairs // len(CANDIDATES)]
    pairs = sum(len(x.outputs) for x in scored)

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        schema_path = tmp / "extract_order.schema.json"
        schema_path.write_text(json.dumps(EXTRACT_ORDER_SCHEMA))
        config = scoring_config(schema_path)

        say(f"\n== deterministic scorers: {pairs:,} pairs ({len(scored):,} exchanges x "
            f"{len(CANDIDATES)} candidates), no judge ==")
        rows = sum(len(plan_for(config, x.task_type).scorers) * len(x.outputs) for x in scored)
        job_s = baseline(config, scored)
        ceiling = pairs / job_s
        say(f"baseline  in-memory loop, no database: {job_s:.1f}s = "
            f"{ceiling:,.0f} outputs/s, {rows / job_s:,.0f} scores/s  (the ceiling)")
        anyio.run(deterministic_phase, "sqlite", f"sqlite+aiosqlite:///{tmp / 'scores.db'}",
                  scored, config, ceiling)
        if not args.no_postgres:
            pg_url = pg_create()
            if pg_url is not None:
                try:
                    anyio.run(migrate, pg_url)
                    anyio.run(deterministic_phase, "postgres", pg_url, scored, config, ceiling)
                finally:
                    pg_drop(pg_url)

        process, base_url = start_fake_server()
        try:
            fake = httpx.get(base_url + "/_fake/settings", timeout=5).json()
            model = fake["models"]["judge"]
            latency_s = model["latency_ms"] * fake["latency_scale"] / 1000
            c = args.judge_concurrency
            judge_config = scoring_config(schema_path, {
                "model": {"base_url": base_url + "/v1", "input_price": model["input_price"],
                          "output_price": model["output_price"], "max_concurrency": c},
                "settings": {"model": "judge", "concurrency": c},
            })
            judged = exchanges[: args.judge_pairs // len(CANDIDATES)]
            say(f"\n== judged pairs: {sum(len(x.outputs) for x in judged):,} pairs on SQLite, "
                f"scorers exact + judge, fake judge {latency_s * 1000:.0f} ms mean "
                f"(+/- {model['latency_jitter_ms'] * fake['latency_scale']:.0f}), "
                f"concurrency {c}, 2 calls per pair ==")
            anyio.run(judge_phase, f"sqlite+aiosqlite:///{tmp / 'judge.db'}", judged,
                      judge_config, c, latency_s)
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
