"""How long ``shadowroute report`` takes to build on a large store (the target: 1M stored pairs
in under a minute, all aggregation in SQL).

1. Fill: ``--pairs`` candidate outputs (``--candidates`` per exchange, so pairs / candidates
   exchanges) over four task types -- classify_intent (``label``), extract_order (``schema`` +
   ``similarity``, JSON field by field), summarize_ticket (``similarity``), sentiment
   (``label``) -- plus a ``primary@replay`` output on ~10% of the exchanges (the noise floor),
   one score row per output and current (scorer, version) of its task (the versions the report
   counts, from ``plan_for``), and 30 days of ``traffic_daily``. The texts are realistic: a pool
   of requests from ``sample_requests`` answered offline by the fake server's simulators (the
   primary ``frontier`` 97% accurate, candidates 96%, 85%, ...) and scored by the real scorers,
   so values, pass rates and ``details`` are what ``shadowroute score`` writes; every row then
   gets its own ids, timestamps (spread over 30 days), latency and cost from a seeded
   ``random.Random``, and ~1% of candidate calls failed (their scores say so). Rows go in with
   bulk inserts, bypassing ``Store.write``: SQLAlchemy Core ``executemany`` on SQLite, ``COPY``
   on Postgres, in chunks of ~10k outputs. Then ANALYZE (on Postgres the bench server runs
   with autovacuum off; ``--vacuum`` makes it VACUUM ANALYZE, what autovacuum would do on a
   live server).
2. Report, per backend (a temporary SQLite file; a fresh Postgres database, dropped at the end):
   the rollups built (``sync_plan`` per task type, what the first ``score`` run does), then
   ``build_report(config, store, since=None)`` (task types, candidates and pairs it covered;
   the pairs it counted against those inserted), ``render_html`` + ``report_json`` and the
   HTML size, a second build (warm caches), the daily rollups counted (every day marked, then
   ``refresh_days``, what the end of a ``score`` run does) and the report built from them
   (its verdicts checked against the first build's), then each query of
   ``shadowroute.store.queries.report`` (and ``score_summary``, and the decision's counts from
   the rollup against counting them from every score) timed on its own, per task type
   where the function loops over task types, with the slowest SQL statement's plan (EXPLAIN
   ANALYZE on Postgres, EXPLAIN QUERY PLAN on SQLite).

    python bench/report_scale.py [--pairs 1000000] [--candidates 2] [--no-postgres]
        [--sqlite/--no-sqlite] [--seed 5] [--vacuum] [--no-explain]

The last line per backend is the verdict: ``report for N pairs: X s (target < 60 s)``.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import random
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from _util import covered, pg_create, pg_drop, timed  # bench/ is on sys.path when a script runs
from sqlalchemy import create_engine, event, insert
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from shadowroute import load_config
from shadowroute.config import Config
from shadowroute.fakellm import EXTRACT_ORDER_SCHEMA, sample_requests, simulate
from shadowroute.records import NOISE_FLOOR_MODEL
from shadowroute.report import build_report, render_html, report_json
from shadowroute.scoring import Plans, plan_for
from shadowroute.store import CandidateOutput, Exchange, Store, TrafficDaily, migrate
from shadowroute.store.models import Score, dumps_json
from shadowroute.store.queries import report as q
from shadowroute.store.queries.days import refresh_days
from shadowroute.store.queries.evidence import evidence_counts
from shadowroute.store.queries.plans import live_counts, sync_plan
from shadowroute.store.queries.scores import score_summary
from shadowroute.store.queries.stale import mark_all

TARGET_S = 60.0
DAYS = 30
PRIMARY, PRIMARY_ACCURACY = "frontier", 0.97
CANDIDATE_POOL = {"small": 0.96, "tiny": 0.85, "mini": 0.92, "nano": 0.75, "micro": 0.88,
                  "pico": 0.70}
"""Candidate name -> simulated accuracy; ``--candidates N`` takes the first N."""
TASKS = {"classify_intent": 0.35, "extract_order": 0.25, "summarize_ticket": 0.2, "sentiment": 0.2}
"""Task type -> share of the exchanges."""
INTENTS = ["refund", "cancel", "shipping", "billing", "technical", "other"]
SENTIMENTS = ["positive", "negative", "neutral"]
SAMPLE_RATE = 0.1
NOISE_FLOOR_RATE = 0.1
ERROR_RATE = 0.01
ERRORS = {"timeout": "ReadTimeout: the candidate did not answer within 30.0s",
          "rate_limited": "HTTP 429: Rate limit reached for requests",
          "server_error": "HTTP 502: upstream connect error or disconnect/reset before headers"}
POOL_PER_TASK = 2_000
"""Distinct (request, answers, scores) per task type; exchanges reuse them with fresh ids."""
CHUNK_OUTPUTS = 10_000
"""Candidate outputs per insert chunk (with their exchanges and score rows)."""
# USD per token, and median latency (ms) of a call.
PRICES = {PRIMARY: (2.5e-6, 10e-6), NOISE_FLOOR_MODEL: (2.5e-6, 10e-6)}
LATENCY_MS = {PRIMARY: 900.0, NOISE_FLOOR_MODEL: 900.0}
for _i, _name in enumerate(CANDIDATE_POOL):
    PRICES[_name] = (0.15e-6 / (1 + _i), 0.6e-6 / (1 + _i))
    LATENCY_MS[_name] = 420.0 / (1 + 0.4 * _i)

_X, _O, _S, _T = Exchange.__table__, CandidateOutput.__table__, Score.__table__, TrafficDaily.__table__
X_COLS = ("id", "created_at", "task_type", "primary_model", "request", "primary_output",
          "input_tokens", "output_tokens", "latency_ms", "cost_usd", "metadata")
O_COLS = ("id", "exchange_id", "model", "output", "input_tokens", "output_tokens", "latency_ms",
          "cost_usd", "error_kind", "error", "attempts", "created_at")
S_COLS = ("output_id", "scorer", "version", "value", "passed", "details", "cost_usd",
          "created_at")
T_COLS = ("day", "task_type", "primary_model", "requests", "sampled")
JSON_COLS = {"exchanges": {"request", "metadata"}, "scores": {"details"}}
METADATA = ({"source": "sidecar"}, {"source": "sdk", "tier": "pro"}, {})


def say(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- data


@dataclass(slots=True)
class Answer:
    text: str
    tokens: int
    scores: list[tuple[str, str, float | None, bool | None, dict[str, Any]]]
    """(scorer, version, value, passed, details) as the real scorers computed them."""


@dataclass(slots=True)
class PoolItem:
    request: dict[str, Any]
    input_tokens: int
    primary: str
    primary_tokens: int
    answers: dict[str, Answer] = field(default_factory=dict)


def make_config(schema_path: Path, candidates: list[str]) -> Config:
    models: dict[str, Any] = {name: {"base_url": "http://127.0.0.1:9/v1"}
                              for name in [PRIMARY, *candidates]}
    scorers: dict[str, dict[str, Any]] = {
        "classify_intent": {"label": {"labels": INTENTS}},
        "extract_order": {"schema": {}, "similarity": {}},
        "summarize_ticket": {"similarity": {}},
        "sentiment": {"label": {"labels": SENTIMENTS}},
    }
    tasks: dict[str, Any] = {
        task: {"candidates": candidates, "sample_rate": SAMPLE_RATE,
               "noise_floor_rate": NOISE_FLOOR_RATE, "scorers": scorers[task]}
        for task in TASKS
    }
    tasks["extract_order"]["json_schema"] = str(schema_path)
    return load_config(data={"models": models, "tasks": tasks})


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def build_pool(config: Config, candidates: list[str], seed: int) -> dict[str, list[PoolItem]]:
    """Per task type, ``POOL_PER_TASK`` requests answered by the primary, its replay and every
    candidate (offline), each answer scored by the task's real scorers."""
    pool: dict[str, list[PoolItem]] = {}
    for t, task in enumerate(TASKS):
        specs = plan_for(config, task).scorers
        items: list[PoolItem] = []
        for demo in sample_requests(POOL_PER_TASK, seed=seed * 100 + t, tasks=[task]):
            messages = demo.request["messages"]
            primary = simulate(messages, seed=7, model=PRIMARY, accuracy=PRIMARY_ACCURACY).text
            request = {"model": PRIMARY, **demo.request}
            item = PoolItem(request, _tokens(json.dumps(request)), primary, _tokens(primary))
            answers = {name: simulate(messages, seed=7, model=name, accuracy=accuracy).text
                       for name, accuracy in CANDIDATE_POOL.items() if name in candidates}
            # The noise floor: the primary asked again (sampling may change its answer).
            answers[NOISE_FLOOR_MODEL] = simulate(messages, seed=7, model=PRIMARY,
                                             accuracy=PRIMARY_ACCURACY, repeat=1,
                                             consistency=0.97).text
            for name, answer in answers.items():
                scores = []
                for spec in specs:
                    result = spec.scorer.score(primary, answer)
                    scores.append((spec.name, spec.version, result.value, result.passed,
                                   result.details))
                item.answers[name] = Answer(answer, _tokens(answer), scores)
            items.append(item)
        pool[task] = items
    return pool


@dataclass(slots=True)
class Chunk:
    exchanges: list[tuple[Any, ...]] = field(default_factory=list)
    outputs: list[tuple[Any, ...]] = field(default_factory=list)
    scores: list[tuple[Any, ...]] = field(default_factory=list)
    traffic: list[tuple[Any, ...]] = field(default_factory=list)


def generate(
    config: Config, pool: dict[str, list[PoolItem]], exchanges: int, candidates: list[str],
    seed: int, now: datetime,
) -> Iterator[Chunk]:
    """Rows for ``exchanges`` exchanges in chunks of ~``CHUNK_OUTPUTS`` outputs (same seed,
    same rows), then the ``traffic_daily`` rows."""
    rng = random.Random(seed)
    tasks = list(TASKS)
    cum = list(itertools.accumulate(TASKS.values()))
    keys = {task: plan_for(config, task).keys() for task in tasks}
    error_details = {kind: {"candidate_error": kind} for kind in ERRORS}
    sampled: Counter[tuple[date, str]] = Counter()
    span_s = DAYS * 86400.0
    chunk = Chunk()
    for _ in range(exchanges):
        task = tasks[min(bisect.bisect(cum, rng.random() * cum[-1]), len(tasks) - 1)]
        items = pool[task]
        item = items[rng.randrange(len(items))]
        xid = f"{rng.getrandbits(128):032x}"
        created = now - timedelta(seconds=rng.random() * span_s)
        sampled[(created.date(), task)] += 1
        p_in, p_out = PRICES[PRIMARY]
        p_latency = rng.lognormvariate(math.log(LATENCY_MS[PRIMARY]), 0.35)
        chunk.exchanges.append((
            xid, created, task, PRIMARY, item.request, item.primary, item.input_tokens,
            item.primary_tokens, round(p_latency, 1),
            item.input_tokens * p_in + item.primary_tokens * p_out, METADATA[rng.randrange(3)],
        ))
        models = candidates + [NOISE_FLOOR_MODEL] if rng.random() < NOISE_FLOOR_RATE else candidates
        for model in models:
            oid = f"{rng.getrandbits(128):032x}"
            latency = rng.lognormvariate(math.log(LATENCY_MS[model]), 0.4)
            at = created + timedelta(milliseconds=p_latency + latency)
            scored_at = at + timedelta(seconds=rng.randrange(60, 7200))
            if model != NOISE_FLOOR_MODEL and rng.random() < ERROR_RATE:
                kind = rng.choice(tuple(ERRORS))
                chunk.outputs.append((oid, xid, model, None, None, None, None, None, kind,
                                      ERRORS[kind], 3, at))
                details = error_details[kind]
                chunk.scores.extend((oid, name, version, 0.0, False, details, 0.0, scored_at)
                                    for name, version in keys[task])
                continue
            answer = item.answers[model]
            c_in, c_out = PRICES[model]
            chunk.outputs.append((
                oid, xid, model, answer.text, item.input_tokens, answer.tokens,
                round(latency, 1), item.input_tokens * c_in + answer.tokens * c_out, None, None,
                1, at,
            ))
            chunk.scores.extend((oid, name, version, value, passed, details, 0.0, scored_at)
                                for name, version, value, passed, details in answer.scores)
        if len(chunk.outputs) >= CHUNK_OUTPUTS:
            yield chunk
            chunk = Chunk()
    for (day, task), n in sorted(sampled.items()):
        requests = max(n, round(n / SAMPLE_RATE * rng.uniform(0.95, 1.05)))
        chunk.traffic.append((day, task, PRIMARY, requests, n))
    yield chunk


# --------------------------------------------------------------------------- fill


@dataclass
class FillStats:
    exchanges: int = 0
    pairs: int = 0
    replays: int = 0
    scores: int = 0
    traffic: int = 0
    generate_s: float = 0.0
    insert_s: float = 0.0

    def add(self, chunk: Chunk) -> None:
        self.exchanges += len(chunk.exchanges)
        replays = sum(1 for row in chunk.outputs if row[2] == NOISE_FLOOR_MODEL)
        self.replays += replays
        self.pairs += len(chunk.outputs) - replays
        self.scores += len(chunk.scores)
        self.traffic += len(chunk.traffic)

    @property
    def rows(self) -> int:
        return self.exchanges + self.pairs + self.replays + self.scores + self.traffic


def fill(chunks: Iterator[Chunk], sink: Callable[[Chunk], None]) -> FillStats:
    stats = FillStats()
    while True:
        began = time.perf_counter()
        chunk = next(chunks, None)
        stats.generate_s += time.perf_counter() - began
        if chunk is None:
            return stats
        began = time.perf_counter()
        sink(chunk)
        stats.insert_s += time.perf_counter() - began
        stats.add(chunk)


def sqlite_sink(engine: Any) -> Callable[[Chunk], None]:
    """SQLAlchemy Core executemany, one transaction per chunk (the column types convert the
    values exactly as the application does: UTC datetimes, JSON text)."""
    tables = ((_X, X_COLS, "exchanges"), (_O, O_COLS, "outputs"), (_S, S_COLS, "scores"),
              (_T, T_COLS, "traffic"))

    def sink(chunk: Chunk) -> None:
        with engine.begin() as conn:
            for table, cols, attr in tables:
                rows = getattr(chunk, attr)
                if rows:
                    conn.execute(insert(table), [dict(zip(cols, row, strict=True)) for row in rows])

    return sink


def postgres_sink(conn: Any) -> Callable[[Chunk], None]:
    """``COPY ... FROM STDIN`` per table, one transaction per chunk. JSON values are serialized
    once per distinct object (the pool's), the way the application serializes them."""
    memo: dict[int, tuple[Any, str]] = {}

    def as_json(value: Any) -> str:
        hit = memo.get(id(value))
        if hit is None:
            hit = memo[id(value)] = (value, dumps_json(value))  # keeps value alive: ids stay unique
        return hit[1]

    tables = (("exchanges", X_COLS, "exchanges"), ("candidate_outputs", O_COLS, "outputs"),
              ("scores", S_COLS, "scores"), ("traffic_daily", T_COLS, "traffic"))
    positions = {name: [cols.index(c) for c in JSON_COLS.get(name, ())] for name, cols, _ in tables}

    def sink(chunk: Chunk) -> None:
        with conn.transaction(), conn.cursor() as cur:
            for name, cols, attr in tables:
                rows = getattr(chunk, attr)
                if not rows:
                    continue
                json_at = positions[name]
                quoted = ", ".join(f'"{c}"' for c in cols)
                with cur.copy(f"COPY {name} ({quoted}) FROM STDIN") as copy:
                    for row in rows:
                        if json_at:
                            row = list(row)
                            for i in json_at:
                                row[i] = as_json(row[i])
                        copy.write_row(row)

    return sink


def say_fill(label: str, stats: FillStats, how: str, size: int, analyze_s: float,
             analyze: str) -> None:
    total = stats.generate_s + stats.insert_s
    say(f"{label:<9} fill: {stats.exchanges:,} exchanges, {stats.pairs:,} pairs "
        f"+ {stats.replays:,} primary@replay, {stats.scores:,} scores, {stats.traffic} "
        f"traffic_daily rows = {stats.rows:,} rows in {total:.1f}s ({how})")
    say(f"{'':<9}   {stats.pairs / total:,.0f} pairs/s, {stats.rows / total:,.0f} rows/s overall; "
        f"insert alone {stats.insert_s:.1f}s = {stats.rows / stats.insert_s:,.0f} rows/s, "
        f"row generation {stats.generate_s:.1f}s")
    say(f"{'':<9}   {analyze} in {analyze_s:.1f}s; database size {size / 2**20:,.0f} MiB")


# --------------------------------------------------------------------------- measure


class StatementLog:
    """Every SQL statement the engine runs while ``on``: (seconds, statement, parameters)."""

    def __init__(self, engine: Any) -> None:
        self.on = False
        self.statements: list[tuple[float, str, Any]] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        conn.info.setdefault("bench_began", []).append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        began = conn.info["bench_began"].pop()
        if self.on:
            self.statements.append((time.perf_counter() - began, statement, parameters))


async def query_times(
    store: Store, config: Config, log: StatementLog
) -> list[tuple[str, float, str]]:
    """Each query of the report on its own, in build_report's order: (name, seconds, note)."""
    out: list[tuple[str, float, str]] = []
    log.on = True
    async with store.engine.connect() as conn:
        primaries, s = await timed(q.primary_totals(conn, None))
        out.append(("primary_totals", s, ""))
        outputs, s = await timed(q.output_totals(conn, None))
        out.append(("output_totals", s, ""))
        tasks = sorted(set(primaries) | {t for t, c in config.tasks.items() if c.candidates})
        keys = {t: plan_for(config, t).keys() for t in tasks if any(k[0] == t for k in outputs)}

        async def per_task(name: str, call: Callable[[str], Awaitable[Any]]) -> Any:
            times, results = {}, {}
            for task in keys:
                results[task], times[task] = await timed(call(task))
            slowest = max(times, key=lambda t: times[t])
            out.append((name, sum(times.values()),
                        f"{len(times)} task types, slowest {slowest} {times[slowest]:.2f}s"))
            return results

        outcomes = await per_task("outcomes", lambda t: q.outcomes(conn, {t: keys[t]}, None, 3))
        _, s = await timed(q.traffic_totals(conn, None))
        out.append(("traffic_totals", s, ""))
        _, s = await timed(q.latency_histograms(conn, None))
        out.append(("latency_histograms", s, "candidates + primary, grouped by value"))
        _, s = await timed(score_summary(conn, keys, None))
        out.append(("score_summary", s, "store.scores"))
        _, s = await timed(live_counts(conn, keys))
        out.append(("live_counts", s, "the decision's counts, from evidence_rollup"))
        _, s = await timed(evidence_counts(conn, keys))
        out.append(("(evidence_counts)", s, "the same counted from every score: not run by "
                                             "the report, for comparison"))
        await per_task("score_histograms",
                       lambda t: q.score_histograms(conn, {t: keys[t]}, "similarity", None))
        await per_task("primary_schema_checks",
                       lambda t: q.primary_schema_checks(conn, {t: keys[t]}, None))
        _, s = await timed(q.scoring_spend(conn, None))
        out.append(("scoring_spend", s, ""))
        ids = [w.output_id for _, worst in outcomes.values() for w in worst]
        _, s = await timed(q.example_rows(conn, ids, keys))
        out.append(("example_rows", s, f"{len(ids)} outputs"))
    log.on = False
    return out


async def explain(store: Store, statement: str, parameters: Any) -> list[str]:
    postgres = store.engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    async with store.engine.connect() as conn:
        rows = (await conn.exec_driver_sql(prefix + statement, parameters)).all()
    if postgres:
        return [row[0] for row in rows]
    depth: dict[int, int] = {0: 0}
    lines = []
    for node, parent, _, detail in rows:  # (id, parent, notused, detail)
        depth[node] = depth.get(parent, 0) + 1
        lines.append("  " * (depth[node] - 1) + detail)
    return lines


async def roll_up(label: str, store: Store, config: Config) -> None:
    """Record each task type's plan with its rollup (``evidence_rollup``), as the first
    ``shadowroute score`` run on this store would: the fill bypassed the scoring job."""
    began = time.perf_counter()
    for task in config.tasks:
        async with store.begin() as conn:
            await sync_plan(conn, task, plan_for(config, task).keys(), datetime.now(UTC))
    say(f"{label:<9} rollups built (once, by the first score run): "
        f"{time.perf_counter() - began:.2f}s")


async def measure(label: str, url: str, config: Config, inserted: int, show_plan: bool) -> None:
    async with await Store.open(url) as store:
        log = StatementLog(store.engine)
        await roll_up(label, store, config)
        report, build_s = await timed(build_report(config, store, since=None))
        seen = covered(report)
        say(f"{label:<9} build_report (first): {build_s:.2f}s -- {seen['tasks']} task types, "
            f"{seen['candidates']} task x candidate, {seen['outputs']:,} candidate outputs "
            f"({seen['errors']:,} errors), {seen['examples']} examples")
        share = seen["n"] / inserted if inserted else float("nan")
        flag = "" if abs(1 - share) <= 0.02 else "   !! not close to the pairs inserted"
        say(f"{'':<9}   pairs counted (sum of n over candidates) {seen['n']:,} of {inserted:,} "
            f"inserted = {share:.2%}; unscored {seen['unscored']:,}, ignored "
            f"{seen['ignored']:,}; noise floor n {seen['noise_n']:,}{flag}")
        for t in report.tasks:
            cands = ", ".join(
                f"{c.model} n={c.n:,} pass={c.pass_rate:.1%} {c.verdict}"
                if c.pass_rate is not None else f"{c.model} n={c.n:,} {c.verdict}"
                for c in t.candidates)
            say(f"{'':<9}   {t.task:<16} {t.exchanges:>8,} exchanges: {cands}")
        began = time.perf_counter()
        html = render_html(report)
        html_s = time.perf_counter() - began
        began = time.perf_counter()
        twin = report_json(report)
        json_s = time.perf_counter() - began
        say(f"{label:<9} render_html {html_s:.3f}s ({len(html.encode()) / 1024:,.0f} KiB), "
            f"report_json {json_s:.3f}s ({len(twin.encode()) / 1024:,.0f} KiB)")
        _, warm_s = await timed(build_report(config, store, since=None))
        say(f"{label:<9} build_report (second, warm caches): {warm_s:.2f}s")
        # The report's days, as the end of a score run counts them (the fill marked none).
        async with store.begin() as conn:
            await mark_all(conn)
        days, days_s = await timed(refresh_days(store, Plans(config).keys_of))
        rolled, rolled_s = await timed(build_report(config, store, since=None))
        say(f"{label:<9} daily rollups: {len(days.refreshed)} days counted in {days_s:.2f}s; "
            f"build_report from them {rolled_s:.2f}s "
            f"({rolled.overview['days_from_rollups']} days from rollups)")
        same = [(t.task, c.model, c.verdict, c.n, c.passed) for t in report.tasks
                for c in t.candidates]
        if same != [(t.task, c.model, c.verdict, c.n, c.passed) for t in rolled.tasks
                    for c in t.candidates]:
            say(f"{'':<9}   !! verdicts from the rollups differ from the pairs'")

        times = await query_times(store, config, log)
        total = sum(s for _, s, _ in times)
        say(f"{label:<9} each query on its own (after the builds; {len(log.statements)} SQL "
            f"statements, {total:.2f}s in all):")
        slowest_fn = max(times, key=lambda item: item[1])[0]
        for name, seconds, note in sorted(times, key=lambda item: -item[1]):
            mark = "  <- slowest" if name == slowest_fn else ""
            say(f"{'':<9}   {name:<22} {seconds:>7.2f}s {seconds / total:>6.1%}  {note}{mark}")
        if show_plan and log.statements:
            seconds, statement, parameters = max(log.statements, key=lambda item: item[0])
            say(f"{label:<9} slowest SQL statement ({seconds:.2f}s):")
            for line in " ".join(statement.split()).replace(" FROM ", "\n FROM ").splitlines():
                say(f"{'':<9}   {line[:400]}{' ...' if len(line) > 400 else ''}")
            say(f"{'':<9} its plan:")
            for line in await explain(store, statement, parameters):
                say(f"{'':<9}   {line}")
        pairs = f"{inserted:,}"
        say(f"{label:<9} report for {pairs} pairs: {build_s:.1f} s from the pairs (target < "
            f"{TARGET_S:.0f} s) -- {'OK' if build_s < TARGET_S else 'TOO SLOW'}; warm "
            f"{warm_s:.1f} s; from the daily rollups {rolled_s:.2f} s")


# --------------------------------------------------------------------------- backends


def run_sqlite(tmp: Path, config: Config, make_chunks: Callable[[], Iterator[Chunk]],
               show_plan: bool) -> None:
    path = tmp / "report.db"
    url = f"sqlite+aiosqlite:///{path}"
    anyio.run(migrate, url)
    engine = create_engine(f"sqlite:///{path}", json_serializer=dumps_json, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=OFF")  # the fill only, like the cache:
        dbapi_connection.execute("PRAGMA cache_size=-1048576")  # 1 GiB of random-id indexes

    say("  sqlite: filling ...")
    try:
        stats = fill(make_chunks(), sqlite_sink(engine))
        began = time.perf_counter()
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        analyze_s = time.perf_counter() - began
    finally:
        engine.dispose()
    say_fill("sqlite", stats, f"SQLAlchemy Core executemany, chunks of ~{CHUNK_OUTPUTS:,} outputs",
             path.stat().st_size, analyze_s, "ANALYZE (sqlite_stat1)")
    anyio.run(measure, "sqlite", url, config, stats.pairs, show_plan)


def run_postgres(config: Config, make_chunks: Callable[[], Iterator[Chunk]], vacuum: bool,
                 show_plan: bool) -> None:
    import psycopg

    url = pg_create()
    if url is None:
        return
    try:
        anyio.run(migrate, url)
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        say("  postgres: filling ...")
        with psycopg.connect(conninfo) as conn:
            stats = fill(make_chunks(), postgres_sink(conn))
        with psycopg.connect(conninfo, autocommit=True) as conn:
            analyze = "VACUUM ANALYZE" if vacuum else "ANALYZE"
            began = time.perf_counter()
            conn.execute(analyze)
            analyze_s = time.perf_counter() - began
            autovacuum = conn.execute("SHOW autovacuum").fetchone()[0]
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            settings = ", ".join(f"{name} {conn.execute(f'SHOW {name}').fetchone()[0]}"
                                 for name in ("shared_buffers", "work_mem",
                                              "max_parallel_workers_per_gather"))
        say_fill("postgres", stats, f"COPY, chunks of ~{CHUNK_OUTPUTS:,} outputs", size, analyze_s,
                 f"{analyze} (server autovacuum {autovacuum}; {settings})")
        anyio.run(measure, "postgres", url, config, stats.pairs, show_plan)
    finally:
        pg_drop(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000,
                        help="candidate outputs in all (primary@replay outputs come on top)")
    parser.add_argument("--candidates", type=int, default=2, choices=range(1, 7),
                        metavar="1-6", help="candidates per exchange (and per task type)")
    parser.add_argument("--no-postgres", action="store_true", help="skip Postgres")
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True,
                        help="run on SQLite (default: yes)")
    parser.add_argument("--seed", type=int, default=5, help="of the generated rows")
    parser.add_argument("--vacuum", action="store_true",
                        help="Postgres: VACUUM ANALYZE after the fill instead of ANALYZE")
    parser.add_argument("--explain", action=argparse.BooleanOptionalAction, default=True,
                        help="print the slowest SQL statement and its plan (default: yes)")
    args = parser.parse_args()

    candidates = list(CANDIDATE_POOL)[: args.candidates]
    exchanges = args.pairs // len(candidates)
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        schema_path = tmp / "extract_order.schema.json"
        schema_path.write_text(json.dumps(EXTRACT_ORDER_SCHEMA))
        config = make_config(schema_path, candidates)
        keys = {task: plan_for(config, task).keys() for task in TASKS}
        began = time.perf_counter()
        pool = build_pool(config, candidates, args.seed)
        say(f"pool: {POOL_PER_TASK:,} requests per task type answered by {PRIMARY}, "
            f"primary@replay and {', '.join(candidates)} offline and scored in "
            f"{time.perf_counter() - began:.1f}s")
        say("scorers (current versions): " + "; ".join(
            f"{task} {'+'.join(f'{n}@{v}' for n, v in ks)}" for task, ks in keys.items()))
        say(f"\n== report on {exchanges * len(candidates):,} pairs: {exchanges:,} exchanges x "
            f"{len(candidates)} candidates over {len(TASKS)} task types and {DAYS} days, "
            f"+ primary@replay on ~{NOISE_FLOOR_RATE:.0%} ==")

        def make_chunks() -> Iterator[Chunk]:
            return generate(config, pool, exchanges, candidates, args.seed, now)

        if args.sqlite:
            run_sqlite(tmp, config, make_chunks, args.explain)
        if not args.no_postgres:
            run_postgres(config, make_chunks, args.vacuum, args.explain)


if __name__ == "__main__":
    main()
