"""Scale on Postgres: ingest, scoring and report on one store of ``--exchanges`` exchanges
(default 1M) with 2 candidate outputs each, all measured in one run on a fresh database
(dropped at the end, also on errors and Ctrl-C; ``--keep`` keeps it).

1. Ingest through the sidecar's write path, ``Store.write(exchanges, traffic, batch_id=...)``
   in batches of ``StoreConfig().batch_size``, each with its own id as the sidecar's writer
   gives it (so ``applied_batches`` gets its row too): primary ``frontier``, candidates
   ``small`` and ``tiny``, task types classify_intent / extract_order / summarize_ticket,
   texts from a pool of 3,000 offline-answered requests (``sample_requests`` +
   ``simulate``), every record with its own id (as the pipeline makes it: ``new_id`` of the
   record's time), timestamps (30 days), tokens, latency and cost, plus ``traffic_daily``
   increments.
   Each writer is a process with its own Store, like a sidecar, and builds its records before
   the clock starts: the first ``--writer-split`` of the exchanges from 1 writer, the rest
   from 2 at once, interleaved (both write the same stretch of time, as two sidecars do).
   Then ANALYZE (the bench server runs with autovacuum off). ``--ingest-only`` stops here.
2. Scoring with the real ``score()`` job and the deterministic scorers (no judge), each run on
   a slice of ``--score-slice`` outputs (a third per task type, ``ScoreOptions(task, limit)``):
   1 worker, then 2 workers in this process, then 2 processes of 1 worker (two ``shadowroute
   score`` sharing the work through ``FOR UPDATE SKIP LOCKED``); ``--score-all`` then scores
   the rest with 2 workers. Rates are end to end, and net of the job's fixed cost (pending
   counts before and after, the summary) and of its pass over windows earlier slices scored.
   These runs leave the report's days to step 3 (``ScoreOptions(report_days=False)``).
3. Report: ANALYZE of ``scores`` (what autovacuum would do on a live server), then
   ``build_report(config, store, since=None)`` over the whole store counted from the pairs,
   the daily rollups counted (``refresh_days``, what the end of a ``score`` run does), and
   ``build_report`` again, from them, and ``render_html``.
   Last, a summary: one line per figure, the database size and rows.

4. ``--night N``: the nightly job's cost for one more day of N exchanges (through
   ``Store.write``): a ``score`` run with nothing new, then the day scored (2 workers) and
   reported, on the filled store and on an empty database holding only that day; the ratio
   of the two is the figure (the job should cost what the day costs). Then ``prune``: the
   store's oldest of its 30 days, against the whole new day on the empty database (time per
   exchange pruned; a nightly prune deletes one day).
5. ``--prune-month``: last, ``prune`` of everything before the current month: the store's
   30 days reach into the month before, whose partitions go whole (time per exchange pruned).

    python bench/scale.py [--exchanges 1000000] [--writer-split 0.2] [--score-slice 200000]
        [--score-all] [--night 0] [--prune-month] [--seed 11] [--keep] [--ingest-only]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from _util import (  # bench/ is on sys.path when a script runs
    PRIMARY,
    TASKS,
    admin_sql,
    covered,
    generate_exchanges,
    pg_create,
    pg_drop,
    scoring_config,
    timed,
)
from sqlalchemy import text

from shadowroute.config import Config, StoreConfig
from shadowroute.fakellm import EXTRACT_ORDER_SCHEMA
from shadowroute.records import CandidateOutputRecord, ExchangeRecord, TrafficRecord, new_id
from shadowroute.report import build_report, render_html
from shadowroute.scoring import Plans, ScoreOptions, score
from shadowroute.store import Store, migrate
from shadowroute.store.queries.days import refresh_days
from shadowroute.store.retention import prune

try:
    from shadowroute.store.partitions import ensure_partitions
except ImportError:  # a shadowroute without monthly partitions (to compare with)
    ensure_partitions = None

POOL = 3_000
"""Distinct offline-answered requests the exchanges take their texts from."""
DAYS = 30
SAMPLE_RATE = 0.1
PRICES = {PRIMARY: (2.5e-6, 10e-6), "small": (0.15e-6, 0.6e-6), "tiny": (0.075e-6, 0.3e-6)}
"""USD per input / output token."""
TABLES = ("exchanges", "candidate_outputs", "scores", "traffic_daily")


def say(message: str) -> None:
    print(message, flush=True)


def cost(model: str, tokens_in: int, tokens_out: int) -> float:
    return tokens_in * PRICES[model][0] + tokens_out * PRICES[model][1]


class Deciles:
    """A progress line on stderr each time ``value`` passes another tenth of ``total``."""

    def __init__(self, what: str, total: int = 0) -> None:
        self.what, self.total, self.shown, self.began = what, total, 0, time.perf_counter()
        self.base = 0  # done before the processes of run_processes() started

    def __call__(self, value: int, total: int | None = None) -> None:
        self.total = total or self.total
        if self.total and value * 10 // self.total > self.shown:
            self.shown = value * 10 // self.total
            print(f"  {self.what}: {value:,}/{self.total:,} ({value / self.total:.0%}) after "
                  f"{time.perf_counter() - self.began:.0f}s", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


def run_processes(target: Callable[..., None], jobs: list[tuple[Any, ...]],
                  progress: Deciles) -> tuple[float, list[Any]]:
    """``target(results, go, done, slot, *job)`` in one spawned process per job. Each puts
    ``"ready"``, waits for ``go``, counts its progress in ``done[slot]``, then puts its result;
    the clock runs from ``go`` to the last result. Returns (seconds, results)."""
    ctx = mp.get_context("spawn")
    results, go, done = ctx.Queue(), ctx.Event(), ctx.Array("q", len(jobs))
    procs = [ctx.Process(target=target, args=(results, go, done, slot, *job))
             for slot, job in enumerate(jobs)]
    for proc in procs:
        proc.start()

    def collect() -> list[Any]:
        out: list[Any] = []
        while len(out) < len(jobs):
            try:
                out.append(results.get(timeout=0.5))
            except queue.Empty:
                if any(proc.exitcode not in (None, 0) for proc in procs):
                    raise SystemExit("a bench process failed (its traceback is above)") from None
            progress(progress.base + sum(done))
        return out

    try:
        collect()  # every process is ready: imports done, records built, store open
        go.set()
        began = time.perf_counter()
        out = collect()
        return time.perf_counter() - began, out
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()


# --------------------------------------------------------------------------- ingest


def build_batches(pool: list[ExchangeRecord], first: int, count: int, total: int, seed: int,
                  now: datetime, batch_size: int, days: float = DAYS, slot: int = 0,
                  writers: int = 1) -> list[tuple[list[ExchangeRecord], list[TrafficRecord]]]:
    """Exchange ``first + slot``, then every ``writers``-th up to ``first + count``, of
    ``total`` (timestamps spread over ``days`` days in that order): one of ``writers``
    sidecars writing the same stretch of time at once, as sidecars do. In batches of
    ``batch_size`` with their traffic increments."""
    rng = random.Random(f"{seed}:{first}:{slot}")
    mine = range(first + slot, first + count, writers)
    batches = []
    for start in range(0, len(mine), batch_size):
        xs: list[ExchangeRecord] = []
        sampled: Counter[tuple[Any, str]] = Counter()
        for i in mine[start : start + batch_size]:
            t = pool[rng.randrange(len(pool))]
            created = now - timedelta(seconds=days * 86400 * (total - i) / total)
            xid = new_id(created)  # as the pipeline makes it, at capture time
            p_ms = rng.lognormvariate(6.8, 0.35)  # ~900 ms
            t_in = len(t.request["messages"][-1]["content"]) // 4 + 60  # tokens
            t_out = len(t.primary_output or "") // 4 + 1
            x = ExchangeRecord(t.task_type, PRIMARY, t.request, t.primary_output, t_in, t_out,
                               round(p_ms, 1), cost(PRIMARY, t_in, t_out), id=xid,
                               created_at=created)
            for o in t.outputs:
                ms, o_out = rng.lognormvariate(6.0, 0.4), len(o.output or "") // 4 + 1  # ~400 ms
                answered = created + timedelta(milliseconds=p_ms + ms)
                x.outputs.append(CandidateOutputRecord(
                    xid, o.model, o.output, t_in, o_out, round(ms, 1), cost(o.model, t_in, o_out),
                    id=new_id(answered), created_at=answered))
            xs.append(x)
            sampled[(created.date(), t.task_type)] += 1
        traffic = [TrafficRecord(day, task, PRIMARY, round(n / SAMPLE_RATE), n)
                   for (day, task), n in sorted(sampled.items())]
        batches.append((xs, traffic))
    return batches


def writer(results: Any, go: Any, done: Any, slot: int, url: str, pool: list[ExchangeRecord],
           first: int, count: int, total: int, seed: int, now: datetime, batch_size: int,
           writers: int) -> None:
    """One sidecar's store: builds its batches, then writes them one after the other."""
    began = time.perf_counter()
    batches = build_batches(pool, first, count, total, seed, now, batch_size, slot=slot,
                            writers=writers)
    build_s = time.perf_counter() - began

    async def write() -> float:
        async with await Store.open(url) as store:
            results.put("ready")
            go.wait()
            began = time.perf_counter()
            for xs, traffic in batches:
                await store.write(xs, traffic, batch_id=new_id())
                done[slot] += len(xs)
            return time.perf_counter() - began

    results.put((build_s, anyio.run(write)))


def ingest(writers: int, first: int, count: int, pool: list[ExchangeRecord], url: str,
           args: argparse.Namespace, now: datetime, progress: Deciles, figures: list[str]
           ) -> float:
    """``count`` exchanges through ``writers`` writer processes; returns exchanges/s."""
    batch_size = StoreConfig().batch_size
    jobs = [(url, pool, first, count, args.exchanges, args.seed, now, batch_size, writers)
            for _ in range(writers)]
    progress.base = first
    wall, out = run_processes(writer, jobs, progress)
    rate, label = count / wall, f"{writers} writer{'s' if writers > 1 else ''}"
    say(f"ingest {label:<9}: {count:,} exchanges / {2 * count:,} pairs in {wall:.1f}s = "
        f"{rate:,.0f} exchanges/s, {2 * rate:,.0f} pairs/s  (batches of {batch_size}; writers "
        f"done after {', '.join(f'{w:.1f}s' for _, w in out)}; records built before the clock "
        f"in {max(b for b, _ in out):.1f}s)")
    figures.append(f"ingest   {label:<22} {rate:>7,.0f} exchanges/s {2 * rate:>7,.0f} pairs/s")
    return rate


# --------------------------------------------------------------------------- scoring


async def score_slice(store: Store, config: Config, workers: int, limit: int | None,
                      advance: Callable[[int, int | None], None]) -> tuple[int, int, float, float]:
    """``score()`` a third of ``limit`` outputs per task type (everything pending when
    ``None``, in one call): (outputs, score rows, fixed seconds, seconds passing over scored
    windows). ``advance(outputs claimed so far, outputs to do)`` reports progress."""
    outputs = rows = 0
    fixed = skipped = 0.0
    # The report's days are counted once after the scoring (timed apart), not after each slice.
    calls = [ScoreOptions(task=task, workers=workers, limit=limit // len(TASKS),
                          report_days=False)
             for task in TASKS] if limit is not None else [ScoreOptions(workers=workers,
                                                                        report_days=False)]
    for options in calls:
        marks: list[tuple[float, int]] = []  # (when, claimed) after every batch

        def progress(done: int, todo: int, base: int = outputs,
                     marks: list[tuple[float, int]] = marks) -> None:
            marks.append((time.perf_counter(), done))
            advance(base + done, todo if limit is None else limit)

        began = time.perf_counter()
        report = await score(config, store, options, progress=progress)
        ended = time.perf_counter()
        fixed += (marks[0][0] - began) + (ended - marks[-1][0]) if marks else ended - began
        idle = [t for t, done in marks[1:] if done == 0]  # windows with nothing to claim
        skipped += idle[-1] - marks[0][0] if idle else 0.0
        outputs += report.outputs
        rows += sum(report.scores.values())
        if report.scorer_errors:
            say(f"  !! {report.scorer_errors:,} scorer errors")
    return outputs, rows, fixed, skipped


def scorer(results: Any, go: Any, done: Any, slot: int, url: str, schema_path: str,
           limit: int) -> None:
    """One ``shadowroute score --workers 1`` process's share of a slice."""
    config = scoring_config(Path(schema_path))

    async def run() -> tuple[int, int, float, float]:
        async with await Store.open(url) as store:
            results.put("ready")
            go.wait()
            return await score_slice(store, config, 1, limit,
                                     lambda value, _: done.__setitem__(slot, value))

    results.put(anyio.run(run))


def say_scoring(label: str, figures: list[str], seconds: float, outputs: int, rows: int,
                fixed: float, skipped: float) -> float:
    rate, net = outputs / seconds, outputs / max(1e-9, seconds - fixed - skipped)
    say(f"scoring {label:<22}: {outputs:,} outputs ({rows:,} scores) in {seconds:.1f}s = "
        f"{rate:,.0f} outputs/s; fixed cost {fixed:.1f}s, passing over scored windows "
        f"{skipped:.1f}s; net {net:,.0f} outputs/s")
    figures.append(f"scoring  {label:<22} {rate:>7,.0f} outputs/s  (net {net:,.0f}; "
                   f"{outputs:,} outputs)")
    return rate


# --------------------------------------------------------------------------- one more night


async def night(url: str, config: Config, pool: list[ExchangeRecord], args: argparse.Namespace,
                now: datetime, label: str, prune_before: datetime
                ) -> tuple[float, float, float, float]:
    """What the nightly job costs for one new day of ``--night`` exchanges on the store at
    ``url``: a ``score`` run with nothing new first, then the day written through
    ``Store.write`` (not timed), scored (2 workers) and reported, then a ``prune`` of what
    was stored before ``prune_before`` (as the CLI runs it, decision counts archived).
    Returns (no-op score s, score s, report s, seconds per 1,000 exchanges pruned)."""
    async with await Store.open(url) as store:
        noop, noop_s = await timed(score(config, store, ScoreOptions(workers=2)))
        # The day after the store's last (which ends at ``now``): what a nightly run finds.
        batches = build_batches(pool, 0, args.night, args.night, args.seed + 1,
                                now + timedelta(days=1), StoreConfig().batch_size, days=1)
        for xs, traffic in batches:
            await store.write(xs, traffic, batch_id=new_id())
        _, analyze_s = await timed(admin_sql(store, "ANALYZE"))
        scored, score_s = await timed(score(config, store, ScoreOptions(workers=2)))
        report, report_s = await timed(build_report(config, store, since=None))
        plans = Plans(config)
        keys = {task: plans.keys_of(task) for task in config.tasks}
        pruned, prune_s = await timed(prune(store, prune_before, keys_by_task=keys))
    say(f"night {label:<12}: score with nothing new {noop_s:.2f}s ({noop.outputs} outputs); "
        f"{args.night:,} new exchanges: score {score_s:.1f}s ({scored.outputs:,} outputs, "
        f"{scored.left_unscored:,} left; {scored.report_days} report days counted in "
        f"{scored.report_days_seconds:.1f}s), report {report_s:.1f}s "
        f"({covered(report)['outputs']:,} pairs, {report.overview['days_from_rollups']} days "
        f"from rollups); ANALYZE before {analyze_s:.1f}s; prune {prune_s:.1f}s "
        f"({pruned.exchanges:,} exchanges, {pruned.outputs:,} outputs, {pruned.scores:,} scores)")
    return noop_s, score_s, report_s, 1000 * prune_s / max(1, pruned.exchanges)


def nights(url: str, config: Config, pool: list[ExchangeRecord], args: argparse.Namespace,
           now: datetime, figures: list[str]) -> None:
    """The same new day on the filled store and on an empty one; then the store's oldest
    day pruned, against the new day pruned from the empty one (a nightly prune's work)."""
    big = anyio.run(night, url, config, pool, args, now, "on the store",
                    now - timedelta(days=DAYS - 1))
    empty_url = pg_create()
    assert empty_url is not None
    try:
        anyio.run(migrate, empty_url)
        alone = anyio.run(night, empty_url, config, pool, args, now, "alone",
                          now + timedelta(days=3))
    finally:
        pg_drop(empty_url)
    ratio = (big[1] + big[2]) / (alone[1] + alone[2])
    figures.append(f"night    score with nothing new {big[0]:.2f}s on the store")
    figures.append(
        f"night    {args.night:,} new exchanges: score {big[1]:.1f}s + report {big[2]:.1f}s on "
        f"the store vs {alone[1]:.1f}s + {alone[2]:.1f}s alone = x{ratio:.2f} (score alone "
        f"x{big[1] / alone[1]:.2f}, report alone x{big[2] / alone[2]:.2f})")
    figures.append(
        f"night    prune: {big[3]:.2f}s per 1,000 exchanges (the store's oldest day) vs "
        f"{alone[3]:.2f}s (the new day, alone) = x{big[3] / alone[3]:.2f}")


# --------------------------------------------------------------------------- a month's prune


async def prune_month(url: str, config: Config, now: datetime, figures: list[str]) -> None:
    """``prune`` of everything before this month (as the CLI runs it, decision counts
    archived): on Postgres the store's earlier month goes whole, its partitions dropped."""
    cutoff = datetime(now.year, now.month, 1, tzinfo=UTC)
    async with await Store.open(url) as store:
        plans = Plans(config)
        keys = {task: plans.keys_of(task) for task in config.tasks}
        pruned, seconds = await timed(prune(store, cutoff, keys_by_task=keys))
    months = getattr(pruned, "months", 0)  # (older shadowroutes delete every row)
    line = (f"prune    before {cutoff.date()}: {seconds:.1f}s for {pruned.exchanges:,} "
            f"exchanges, {pruned.outputs:,} outputs, {pruned.scores:,} scores "
            f"({1000 * seconds / max(1, pruned.exchanges):.3f}s per 1,000 exchanges; "
            f"{months} month(s) dropped whole)")
    say(line)
    figures.append(line)


# --------------------------------------------------------------------------- main


async def make_months(url: str, now: datetime) -> None:
    """Postgres partitions for every month of the store's days, as a store that has been
    capturing for that long has them (each made ahead of its month)."""
    if ensure_partitions is None:
        return
    async with await Store.open(url) as store, store.begin() as conn:
        await ensure_partitions(conn, now=now - timedelta(days=DAYS + 1), ahead=3)



async def after_fill(url: str, config: Config, schema_path: Path, args: argparse.Namespace,
                     figures: list[str]) -> None:
    async with await Store.open(url) as store:
        _, seconds = await timed(admin_sql(store, "ANALYZE"))
        say(f"ANALYZE {seconds:.1f}s")
        n, rates = args.score_slice, []
        for label, workers in (("1 worker, 1 process", 1), ("2 workers, 1 process", 2)):
            result, seconds = await timed(
                score_slice(store, config, workers, n, Deciles(f"scoring {label}")))
            rates.append(say_scoring(label, figures, seconds, *result))
        figures[-1] += f"; 2 w / 1 w = {rates[1] / rates[0]:.2f}"
        wall, out = await anyio.to_thread.run_sync(
            run_processes, scorer, [(url, str(schema_path), n // 2)] * 2,
            Deciles("scoring 2 processes x 1 worker", n))
        (outputs, rows, fixed, skipped) = ([part[i] for part in out] for i in range(4))
        rate = say_scoring("2 processes x 1 worker", figures, wall, sum(outputs), sum(rows),
                           max(fixed), max(skipped))
        figures[-1] += f"; vs 1 worker = {rate / rates[0]:.2f}"
        if args.score_all:
            result, seconds = await timed(
                score_slice(store, config, 2, None, Deciles("scoring the rest")))
            say_scoring("the rest, 2 workers", figures, seconds, *result)

        _, analyze_s = await timed(admin_sql(store, "ANALYZE scores"))
        raw, raw_s = await timed(build_report(config, store, since=None))
        days, days_s = await timed(refresh_days(store, Plans(config).keys_of))
        report, build_s = await timed(build_report(config, store, since=None))
        seen, began = covered(report), time.perf_counter()
        html = render_html(report)
        html_s = time.perf_counter() - began
        rolled = report.overview["days_from_rollups"]
        say(f"report: ANALYZE scores {analyze_s:.1f}s; from the pairs {raw_s:.1f}s "
            f"({raw.overview['days_from_rollups']} days from rollups); {len(days.refreshed)} "
            f"days counted into rollups in {days_s:.1f}s; build_report {build_s:.1f}s "
            f"({rolled} days from rollups; {seen['tasks']} task types, {seen['candidates']} task "
            f"x candidate, {seen['outputs']:,} outputs, {seen['n']:,} scored pairs counted, "
            f"{seen['unscored']:,} unscored); render_html {html_s:.2f}s "
            f"({len(html.encode()) / 1024:,.0f} KiB)")
        figures.append(f"report   build_report {build_s:.1f}s ({rolled} days from rollups; "
                       f"{raw_s:.1f}s from the pairs alone) + render_html {html_s:.2f}s over "
                       f"{seen['outputs']:,} pairs ({seen['n']:,} scored); rollups of "
                       f"{len(days.refreshed)} days counted in {days_s:.1f}s")
        async with store.engine.connect() as conn:
            size = await conn.scalar(text("SELECT pg_database_size(current_database())"))
            rows = {t: await conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in TABLES}
            version = await conn.scalar(text("SHOW server_version"))
        figures.append(f"database {size / 2**20:,.0f} MiB (Postgres {version.split()[0]}); rows: "
                       + ", ".join(f"{t} {n:,}" for t, n in rows.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exchanges", type=int, default=1_000_000, help="2 pairs each")
    parser.add_argument("--writer-split", type=float, default=0.2,
                        help="share of the exchanges written by 1 writer; the rest by 2")
    parser.add_argument("--score-slice", type=int, default=200_000,
                        help="outputs scored per measurement (1 worker, 2 workers, 2 processes)")
    parser.add_argument("--score-all", action="store_true",
                        help="then score the rest with 2 workers (long)")
    parser.add_argument("--seed", type=int, default=11, help="of the pool and the records")
    parser.add_argument("--keep", action="store_true", help="keep the database; print its URL")
    parser.add_argument("--ingest-only", action="store_true",
                        help="stop after the ingest step (to iterate on the write path)")
    parser.add_argument("--night", type=int, default=0,
                        help="then one more day of this many exchanges, scored and reported on "
                             "the store and on an empty one (implies --score-all)")
    parser.add_argument("--prune-month", action="store_true",
                        help="last, prune everything before this month (on Postgres, the "
                             "store's earlier month goes by dropping its partitions)")
    args = parser.parse_args()
    args.score_all = args.score_all or args.night > 0
    if not 0 < args.writer_split < 1:
        parser.error("--writer-split must be between 0 and 1")
    if not args.ingest_only and 3 * args.score_slice > 2 * args.exchanges:
        parser.error("--score-slice: three slices must fit in the 2 x --exchanges outputs")

    url = pg_create()
    if url is None:
        raise SystemExit("scale.py needs Postgres (SHADOWROUTE_TEST_POSTGRES_URL)")
    figures: list[str] = []
    try:
        anyio.run(migrate, url)
        total, now = args.exchanges, datetime.now(UTC).replace(microsecond=0)
        anyio.run(make_months, url, now)
        began = time.perf_counter()
        pool = generate_exchanges(POOL, args.seed)
        say(f"pool: {POOL:,} requests answered offline in {time.perf_counter() - began:.1f}s; "
            f"{total:,} exchanges x 2 candidates into a fresh database")
        progress, first = Deciles("ingest", total), round(total * args.writer_split)
        rate1 = ingest(1, 0, first, pool, url, args, now, progress, figures)
        rate2 = ingest(2, first, total - first, pool, url, args, now, progress, figures)
        figures[-1] += f"; 2/1 = {rate2 / rate1:.2f}"
        if not args.ingest_only:
            with tempfile.TemporaryDirectory() as tmp:
                schema_path = Path(tmp) / "extract_order.schema.json"
                schema_path.write_text(json.dumps(EXTRACT_ORDER_SCHEMA))
                config = scoring_config(schema_path)
                anyio.run(after_fill, url, config, schema_path, args, figures)
                if args.night:
                    nights(url, config, pool, args, now, figures)
                if args.prune_month:
                    anyio.run(prune_month, url, config, now, figures)
        say(f"\n== summary: {total:,} exchanges / {2 * total:,} pairs, one Postgres, "
            f"{mp.cpu_count()} CPUs ==")
        for line in figures:
            say(line)
    finally:
        if args.keep:
            say(f"kept: {url}")
        else:
            pg_drop(url)


if __name__ == "__main__":
    main()
