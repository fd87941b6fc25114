from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

if TYPE_CHECKING:
    from shadowroute.store import Store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- browser
#
# Like Postgres below: tests that render HTML (tests/browser.py) take `chromium`, which skips
# when no browser is installed (scripts/ensure-chromium installs one) and fails under CI=true.


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the headless Chromium binary (skip if none; fail on CI)."""
    from browser import find_chromium

    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium not installed (CI=true): run scripts/ensure-chromium")
        pytest.skip("chromium not installed: run scripts/ensure-chromium")
    return binary


# --------------------------------------------------------------------------- databases
#
# `db_url` is parametrized over SQLite and Postgres: a test that takes it (or `store`) runs once
# per backend. The Postgres variant is marked `postgres` and needs SHADOWROUTE_TEST_POSTGRES_URL
# (a server where the user may CREATE DATABASE); it is skipped when that is unset, and fails
# (never skips) when it is set but unreachable under CI=true.


POSTGRES_ENV = "SHADOWROUTE_TEST_POSTGRES_URL"


def _pg_admin_engine(url: str) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    maintenance = make_url(url).set(drivername="postgresql+psycopg", database="postgres")
    return create_engine(
        maintenance,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 3},
    )


def _pg_create_database(url: str) -> str:
    """Create a fresh, empty database on ``url``'s server; return its async URL."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"sr_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(url).set(drivername="postgresql+psycopg", database=name).render_as_string(
        hide_password=False
    )


def _pg_drop_database(url: str, db_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = make_url(db_url).database
    admin = _pg_admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """SHADOWROUTE_TEST_POSTGRES_URL, checked reachable (skip if unset; fail if down on CI)."""
    from sqlalchemy import text

    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    try:
        admin = _pg_admin_engine(url)
        try:
            with admin.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            admin.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server
        message = f"Postgres at {POSTGRES_ENV} is unreachable: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def postgres_session_url(postgres_server_url: str) -> Iterator[str]:
    """A database created (and migrated) for this test session, dropped at the end."""
    from shadowroute.store import migrate

    db_url = _pg_create_database(postgres_server_url)
    try:
        anyio.run(migrate, db_url)
        yield db_url
    finally:
        _pg_drop_database(postgres_server_url, db_url)


@pytest.fixture
def postgres_url(postgres_session_url: str) -> str:
    """The session's migrated Postgres database, its tables emptied for this test."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from shadowroute.store.models import Base

    engine = create_engine(postgres_session_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(Base.metadata.tables)} CASCADE"))
    finally:
        engine.dispose()
    return postgres_session_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file URL in this test's tmp_path (not created yet: opening it migrates it)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'shadowroute.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database URL: once on SQLite, once on Postgres."""
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
        from shadowroute.store import migrate

        anyio.run(migrate, url)
        return url
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def empty_db_url(request: pytest.FixtureRequest, db_url: str) -> Iterator[str]:
    """A database with no schema at all, on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield db_url.replace("shadowroute.db", "empty.db")
        return
    server = request.getfixturevalue("postgres_server_url")
    url = _pg_create_database(server)
    try:
        yield url
    finally:
        _pg_drop_database(server, url)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """An open :class:`shadowroute.store.Store` on ``db_url`` (both backends), closed after."""
    from shadowroute.store import Store

    opened = await Store.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()


# --------------------------------------------------------------------------- the fault suite


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """After a run that included tests/test_faults.py: its table (one row per scenario, in the
    order they ran; see the ``table`` fixture there)."""
    rows = [
        dict(value)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", [])
        if name == "fault_row"
    ]
    if not rows:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault-injection results")
    write("| fault | primary calls | failed | delayed | p50 / max ms | accepted | stored | "
          "spooled | discarded | lost | what happened |")
    write("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        latency = "-" if r["max_ms"] != r["max_ms"] else f"{r['p50_ms']:.0f} / {r['max_ms']:.0f}"
        write(f"| {r['fault']} | {r['calls']:,} | {r['failed']} | {r['delayed']} | {latency} | "
              f"{r['accepted']} | {r['stored']} | {r['spooled']} | {r['discarded']} | "
              f"{r['lost']} | {r['note']} |")
