"""Helpers the benchmark scripts share: free ports, the fake LLM server, percentiles, and
throw-away Postgres databases."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

POSTGRES_URL = os.environ.get(
    "SHADOWROUTE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


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
