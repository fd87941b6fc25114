"""Helpers the benchmark scripts share: free ports, the fake LLM server, percentiles,
throw-away Postgres databases, and the realistic pairs and scoring config of the scoring
benchmarks (``scoring_throughput.py``, ``scale.py``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from shadowroute import load_config
from shadowroute.config import Config
from shadowroute.fakellm import sample_requests, simulate
from shadowroute.records import CandidateOutputRecord, ExchangeRecord
from shadowroute.report import Report
from shadowroute.store import Store

POSTGRES_URL = os.environ.get(
    "SHADOWROUTE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

TASKS = {"classify_intent": 1, "extract_order": 1, "summarize_ticket": 1}
"""Task type -> weight in ``sample_requests`` (the scoring benchmarks)."""
LABELS = ["refund", "cancel", "shipping", "billing", "technical", "other"]
PRIMARY, PRIMARY_ACCURACY = "frontier", 0.97
CANDIDATES = {"small": 0.85, "tiny": 0.70}
"""Candidate name -> simulated accuracy."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_fake_server() -> tuple[subprocess.Popen[bytes], str]:
    """``shadowroute fake-llm`` in its own process on a free loopback port; (process, base URL)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shadowroute", "fake-llm", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base_url + "/v1/models", timeout=0.2)
            return process, base_url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise SystemExit("the fake LLM server did not start")


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pg_admin() -> Any:
    maintenance = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg", database="postgres")
    return create_engine(maintenance, isolation_level="AUTOCOMMIT", poolclass=NullPool,
                         connect_args={"connect_timeout": 3})


def pg_create() -> str | None:
    """A fresh database on the ``POSTGRES_URL`` server (its URL), or ``None`` with one printed
    line when the server cannot be reached."""
    name = f"sr_bench_{uuid.uuid4().hex[:12]}"
    admin = pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server
        print(f"postgres  skipped: {make_url(POSTGRES_URL).render_as_string()} unreachable "
              f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]})", flush=True)
        return None
    finally:
        admin.dispose()
    return make_url(POSTGRES_URL).set(drivername="postgresql+psycopg", database=name) \
        .render_as_string(hide_password=False)


def pg_drop(db_url: str) -> None:
    name = make_url(db_url).database
    admin = pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


async def timed(call: Awaitable[Any]) -> tuple[Any, float]:
    """(result, seconds) of awaiting ``call``."""
    began = time.perf_counter()
    result = await call
    return result, time.perf_counter() - began


async def admin_sql(store: Store, statement: str) -> None:
    """Run ``statement`` outside a transaction (ANALYZE, VACUUM)."""
    async with store.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))


def generate_exchanges(exchanges: int, seed: int) -> list[ExchangeRecord]:
    """``exchanges`` exchanges over ``TASKS``, each answered by the primary and every one of
    ``CANDIDATES`` offline (the fake server's simulators, no HTTP)."""
    out: list[ExchangeRecord] = []
    for item in sample_requests(exchanges, seed=seed, tasks=TASKS):
        messages = item.request["messages"]
        primary = simulate(messages, seed=7, model=PRIMARY, accuracy=PRIMARY_ACCURACY)
        x = ExchangeRecord(
            task_type=item.task, primary_model=PRIMARY,
            request={"model": PRIMARY, **item.request}, primary_output=primary.text,
        )
        for name, accuracy in CANDIDATES.items():
            answer = simulate(messages, seed=7, model=name, accuracy=accuracy)
            x.outputs.append(CandidateOutputRecord(x.id, name, output=answer.text))
        out.append(x)
    return out


def scoring_config(schema_path: Path, judge: dict[str, Any] | None = None) -> Config:
    """``TASKS`` with ``CANDIDATES``: without ``judge`` the deterministic scorers
    (classify_intent ``label`` + ``similarity``, extract_order ``schema`` + ``similarity``,
    summarize_ticket ``similarity``); with it ``exact`` + ``judge`` (``judge["model"]`` is the
    judge model's entry, ``judge["settings"]`` the ``[judge]`` table)."""
    candidates = list(CANDIDATES)
    models: dict[str, Any] = {name: {"base_url": "http://127.0.0.1:9/v1"} for name in candidates}
    if judge is None:
        tasks: dict[str, Any] = {
            "classify_intent": {"candidates": candidates,
                                "scorers": {"label": {"labels": LABELS}, "similarity": {}}},
            "extract_order": {"candidates": candidates, "json_schema": str(schema_path),
                              "scorers": {"schema": {}, "similarity": {}}},
            "summarize_ticket": {"candidates": candidates, "scorers": {"similarity": {}}},
        }
        return load_config(data={"models": models, "tasks": tasks})
    models["judge"] = judge["model"]
    tasks = {task: {"candidates": candidates, "scorers": ["exact", "judge"]} for task in TASKS}
    return load_config(data={"models": models, "tasks": tasks, "judge": judge["settings"]})


def covered(report: Report) -> dict[str, int]:
    """What a built report counted, summed over its task types and candidates."""
    candidates = [c for t in report.tasks for c in t.candidates]
    return {
        "tasks": len(report.tasks), "candidates": len(candidates),
        "outputs": sum(c.outputs for c in candidates), "n": sum(c.n for c in candidates),
        "errors": sum(c.errors for c in candidates),
        "unscored": sum(c.unscored for c in candidates),
        "ignored": sum(c.ignored for c in candidates),
        "noise_n": sum(t.noise_n for t in report.tasks),
        "examples": sum(len(c.examples) for c in candidates),
    }
