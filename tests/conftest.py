"""Fixtures of the whole suite: databases (SQLite and Postgres), the headless browser, the shared
fakes and builders of ``tests/support`` (one fixture each), and the fault suite's setting and
summary table.

The fakes and builders are plain functions and classes in ``support``; a fixture hands one to a
test, so test modules never import each other for them.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from support import cli as _cli
from support import config as _config
from support import faults as _faults
from support import offline as _offline
from support import pipeline as _pipeline
from support import report as _report
from support import scoring as _scoring
from support import sidecar as _sidecar
from support import store as _store

if TYPE_CHECKING:
    from shadowroute.store import Store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- browser
#
# Like Postgres below: tests that render HTML (support/browser.py) take `chromium`, which skips
# when no browser is installed (scripts/ensure-chromium installs one) and fails under CI=true.


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the headless Chromium binary (skip if none; fail on CI)."""
    from support.browser import find_chromium

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


# --------------------------------------------------------------------------- fakes and builders
#
# One fixture per shared fake or builder of tests/support (documented there). Those that hold no
# state are session-scoped, so module-scoped fixtures may use them too.


@pytest.fixture(scope="session")
def fake_candidate() -> type[_pipeline.FakeCandidate]:
    """:class:`support.pipeline.FakeCandidate`: ``fake_candidate("small", mode="hang")``."""
    return _pipeline.FakeCandidate


@pytest.fixture(scope="session")
def completion() -> Callable[..., dict[str, Any]]:
    """:func:`support.pipeline.completion`: the primary's answer, ``completion("refund")``."""
    return _pipeline.completion


@pytest.fixture(scope="session")
def make_config() -> Callable[..., Any]:
    """:func:`support.config.make_config`, the config builder: a database URL, presets, overrides."""
    return _config.make_config


@pytest.fixture
def shadow_preset(tmp_path: Path) -> dict[str, Any]:
    """:func:`support.config.shadow_preset` for this test's tmp_path."""
    return _config.shadow_preset(tmp_path)


@pytest.fixture
def sidecar_preset(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """:func:`support.config.sidecar_preset` for this test's tmp_path: ``sidecar_preset(upstream)``."""
    return functools.partial(_config.sidecar_preset, tmp_path)


@pytest.fixture
def scoring_preset(tmp_path: Path) -> dict[str, Any]:
    """:func:`support.config.scoring_preset` for this test's tmp_path (its schema file written)."""
    return _config.scoring_preset(tmp_path)


@pytest.fixture(scope="session")
def exchange() -> Callable[..., Any]:
    """:func:`support.store.exchange`: an ExchangeRecord with an answer per candidate."""
    return _store.exchange


@pytest.fixture(scope="session")
def stored() -> Callable[[str], Any]:
    """:func:`support.store.stored`: ``exchanges, outputs = await stored(url)``."""
    return _store.stored


@pytest.fixture(scope="session")
def stored_counts() -> Callable[[Any], Any]:
    """:func:`support.store.stored_counts`: ``await stored_counts(store) == (exchanges, outputs)``."""
    return _store.stored_counts


@pytest.fixture(scope="session")
def stored_text() -> Callable[[str], Any]:
    """:func:`support.store.stored_text`: every row of every table, as text."""
    return _store.stored_text


@pytest.fixture(scope="session")
def cli() -> Callable[..., _cli.CliResult]:
    """:func:`support.cli.run_cli`: ``cli("db", "upgrade", cwd=tmp_path)`` in-process."""
    return _cli.run_cli


@pytest.fixture(scope="session")
def sidecar_server() -> Callable[..., Any]:
    """:func:`support.sidecar.sidecar_server`: ``with sidecar_server(config) as sc: ...``."""
    return _sidecar.sidecar_server


@pytest.fixture(scope="session")
def sidecar_state() -> Callable[[Any], Any]:
    """:func:`support.sidecar.state`: the Sidecar behind a running server."""
    return _sidecar.state


@pytest.fixture(scope="session")
def twin_fakes() -> Callable[..., Any]:
    """:func:`support.sidecar.twin_fakes`: ``with twin_fakes() as (direct, upstream): ...``."""
    return _sidecar.twin_fakes


@pytest.fixture(scope="session")
def recording_transport() -> type[_sidecar.RecordingTransport]:
    """:class:`support.sidecar.RecordingTransport`: an upstream transport keeping its requests."""
    return _sidecar.RecordingTransport


@pytest.fixture(scope="session")
def request_for() -> Callable[[str, int], dict[str, Any]]:
    """:func:`support.sidecar.request_for`: the fake server's sample request of a task."""
    return _sidecar.request_for


@pytest.fixture(scope="session")
def anthropic_kwargs() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """:func:`support.sidecar.anthropic_kwargs`: a chat request as Messages API arguments."""
    return _sidecar.anthropic_kwargs


@pytest.fixture(scope="session")
def answer_text() -> Callable[[str, Any], str]:
    """:func:`support.sidecar.answer_text`: the answer in an OpenAI/Anthropic (stream) response."""
    return _sidecar.answer_text


@pytest.fixture(scope="session")
def capture_completion() -> Callable[[str], dict[str, Any]]:
    """:func:`support.sidecar.capture_completion`: a primary's answer posted to /v1/captures."""
    return _sidecar.capture_completion


@pytest.fixture(scope="session")
def curl() -> Callable[..., tuple[str, list[tuple[str, str]], bytes]]:
    """:func:`support.sidecar.curl`: POST with ``curl -sN -i``; (status line, headers, body)."""
    return _sidecar.curl


@pytest.fixture(scope="session")
def spool_text() -> Callable[[Path], str]:
    """:func:`support.sidecar.spool_text`: every spool file's content, as text."""
    return _sidecar.spool_text


@pytest.fixture(scope="session")
def metrics() -> Callable[[str], dict[Any, float]]:
    """:func:`support.sidecar.metrics`: a server's /metrics samples."""
    return _sidecar.metrics


@pytest.fixture(scope="session")
def wait_until() -> Callable[..., None]:
    """:func:`support.sidecar.wait_until`: poll a condition, blocking."""
    return _sidecar.wait_until


@pytest.fixture(scope="session")
def await_until() -> Callable[..., Any]:
    """:func:`support.sidecar.await_until`: poll a condition in the event loop."""
    return _sidecar.await_until


@pytest.fixture(scope="session")
def xchg() -> Callable[..., Any]:
    """:func:`support.report.xchg`: an exchange of crafted answers (``Out``) for report tests."""
    return _report.xchg


@pytest.fixture(scope="session")
def candidate_of() -> Callable[..., Any]:
    """:func:`support.report.candidate_of`: a report's row of one candidate on one task."""
    return _report.candidate_of


@pytest.fixture(scope="session")
def task_of() -> Callable[..., Any]:
    """:func:`support.report.task_of`: a report's section of one task type."""
    return _report.task_of


@pytest.fixture(scope="session")
def scripted_judge() -> type[_scoring.ScriptedJudge]:
    """:class:`support.scoring.ScriptedJudge`: ``scripted_judge(prefers("good"))``."""
    return _scoring.ScriptedJudge


@pytest.fixture(scope="session")
def verdict() -> Callable[[str], str]:
    """:func:`support.scoring.verdict`: the judge's reply naming A, B or same."""
    return _scoring.verdict


@pytest.fixture(scope="session")
def prefers() -> Callable[[str], Callable[[str, str], str]]:
    """:func:`support.scoring.prefers`: a judge's decision picking the response with a word."""
    return _scoring.prefers


@pytest.fixture(scope="session")
def scoring_exchange() -> Callable[..., Any]:
    """:func:`support.scoring.scoring_exchange`: an exchange with answers by model, to score."""
    return _scoring.scoring_exchange


@pytest.fixture(scope="session")
def score_rows() -> Callable[[Any], Any]:
    """:func:`support.scoring.score_rows`: every score row of an open store."""
    return _scoring.score_rows


@pytest.fixture(scope="session")
def scores_by_model() -> Callable[[Any, str], Any]:
    """:func:`support.scoring.scores_by_model`: one scorer's rows by model."""
    return _scoring.scores_by_model


@pytest.fixture(scope="session")
def chat_line() -> Callable[..., dict[str, Any]]:
    """:func:`support.offline.chat_line`: line ``i`` of a chat log for ``shadowroute import``."""
    return _offline.chat_line


@pytest.fixture(scope="session")
def write_jsonl() -> Callable[[Path, list[Any]], Path]:
    """:func:`support.offline.write_jsonl`: lines written to a JSONL file."""
    return _offline.write_jsonl


# --------------------------------------------------------------------------- the fault suite
#
# tests/test_faults.py and tests/test_faults_process.py (``pytest -m fault``): each scenario adds a
# row (support/faults.py) to the table printed after the run.


@pytest.fixture
def fault_table(record_property: Callable[[str, object], None]) -> Callable[[_faults.Row], None]:
    """Adds a fault scenario's :class:`support.faults.Row` to the table
    :func:`pytest_terminal_summary` prints (as a test report property, so it also reaches the
    summary from pytest-xdist workers)."""
    return lambda row: record_property("fault_row", dataclasses.asdict(row))


@pytest.fixture(scope="module")
def fault_llm() -> Iterator[Any]:
    """The fault suite's upstream and candidates: a fake LLM server (latency scale 0.2)."""
    from shadowroute.fakellm import FakeLLMServer, default_settings

    with FakeLLMServer(default_settings(latency_scale=0.2)) as server:
        yield server


@pytest.fixture(scope="module")
def fault_traffic(fault_llm: Any) -> list[tuple[str, dict[str, Any], str]]:
    """(kind, request, the upstream's answer text) for each of the fault suite's CALLS calls."""
    import httpx

    from shadowroute.fakellm import sample_requests

    requests = [d.request for d in sample_requests(12, seed=5)]
    calls = []
    with httpx.Client(base_url=fault_llm.base_url, timeout=30) as client:
        for i in range(_faults.CALLS):
            kind, request = _faults.KINDS[i % len(_faults.KINDS)], requests[i % len(requests)]
            path, body = _faults.request_body(kind, request)
            calls.append((kind, request, _sidecar.answer_text(kind, client.post(path, json=body))))
    return calls


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """After a run that included the fault suite (tests/test_faults*.py): its table (one row per
    scenario, in the order they ran; see the ``fault_table`` fixture)."""
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
