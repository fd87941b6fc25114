"""Engines, migrations and the :class:`Store`: batched, idempotent writes of exchanges.

SQLite (a file, WAL mode) by default, Postgres in production. Every write is one transaction
of multi-row inserts that skip rows already stored, so a batch replayed from the spool after an
ambiguous failure is stored once. Every database, driver or OS error becomes a
:class:`~shadowroute.errors.StoreError` naming the database (password hidden).
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import URL, case, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ..errors import StoreError
from ..records import ExchangeRecord, TrafficRecord
from .models import CandidateOutput, Exchange, TrafficDaily, clean_text, dumps_json

__all__ = ["Store", "make_engine", "migrate", "migrations_dir"]

SQLITE_BUSY_TIMEOUT_MS = 10_000
PG_CONNECT_TIMEOUT_S = 5
WRITE_SLICE_ROWS = 100
"""Rows per ``executemany`` inside one write transaction."""

_EXCHANGES = Exchange.__table__
_OUTPUTS = CandidateOutput.__table__
_TRAFFIC = TrafficDaily.__table__


# --------------------------------------------------------------------------- engines


def _url(url: str | URL) -> URL:
    """Parse ``url``, defaulting to the async drivers shadowroute ships with."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL {str(url)!r}: {exc}") from exc
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _safe(url: str | URL) -> str:
    try:
        return _url(url).render_as_string(hide_password=True)
    except StoreError:
        return "<invalid database URL>"


def make_engine(url: str | URL, *, foreign_keys: bool = True) -> AsyncEngine:
    """An async engine tuned for shadowroute's write pattern.

    SQLite files: the parent directory is created, and each connection gets WAL journaling,
    ``synchronous=NORMAL``, a busy timeout, and real transactions (``BEGIN`` emitted by
    SQLAlchemy, so DDL is transactional too). ``foreign_keys`` turns SQLite's foreign key
    enforcement on (the default) or off (migrations, which may recreate tables).
    Postgres: pre-ping, a bounded pool, a connect timeout.
    """
    parsed = _url(url)
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(parsed, foreign_keys)
        kwargs: dict[str, Any] = {}
        if backend == "postgresql":
            kwargs.update(pool_size=5, max_overflow=5, pool_timeout=30, pool_recycle=1800)
            if parsed.get_driver_name() == "psycopg":
                kwargs["connect_args"] = {
                    "connect_timeout": PG_CONNECT_TIMEOUT_S,
                    "application_name": "shadowroute",
                }
        return create_async_engine(
            parsed, pool_pre_ping=True, json_serializer=dumps_json, **kwargs
        )
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot create a database engine for {_safe(parsed)}: {exc}") from exc


def _sqlite_engine(url: URL, foreign_keys: bool) -> AsyncEngine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # connecting reports it, as a StoreError, when the store is used
    engine = create_async_engine(url, json_serializer=dumps_json)
    pragmas = (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}",
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN is switched off; SQLAlchemy emits BEGIN below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def _uncancellable(backend: str) -> anyio.CancelScope:
    """A scope that holds off cancellation for SQLite operations (a no-op scope otherwise).

    Cancelling an aiosqlite operation midway leaves SQLAlchemy's graceful-close task waiting
    forever on the connection's stopped worker thread (the event loop then cannot finish). A
    SQLite operation is local and bounded by the busy timeout, so it is allowed to complete and
    the cancellation is delivered right after. Postgres (psycopg) cancels cleanly.
    """
    return anyio.CancelScope(shield=backend == "sqlite")


# --------------------------------------------------------------------------- migrations


def migrations_dir() -> Path:
    """The Alembic scripts: inside the installed package, else the checkout's ``migrations/``."""
    try:
        packaged = importlib.resources.files("shadowroute") / "migrations"
    except (ModuleNotFoundError, TypeError):
        packaged = None
    if isinstance(packaged, Path) and (packaged / "env.py").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "migrations"
    if (checkout / "env.py").is_file():
        return checkout
    raise StoreError(
        "cannot find shadowroute's database migrations (neither shadowroute/migrations in the "
        f"installed package nor {checkout}); reinstall shadowroute"
    )


def _alembic_config(url: URL | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        cfg.set_main_option(
            "sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return cfg


@functools.cache
def _head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


@functools.cache
def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(_alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _describe(exc: BaseException, url: URL | None = None) -> str:
    """One line about a low-level error: its type and first line, password scrubbed."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    text = lines[0] if lines else ""
    if url is not None and url.password and str(url.password) in text:
        text = text.replace(str(url.password), "***")
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__


async def migrate(url: str | URL, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (all migrations by default).

    Creates the schema in an empty database; a no-op when already there. Runs in one
    transaction (on SQLite too), with SQLite foreign key enforcement off so that batch-mode
    table rebuilds cannot cascade deletes.
    """
    from alembic import command
    from alembic.util import CommandError

    parsed = _url(url)
    cfg = _alembic_config(parsed)

    def upgrade(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    engine = make_engine(parsed, foreign_keys=False)
    with _uncancellable(parsed.get_backend_name()):
        try:
            async with engine.begin() as conn:
                await conn.run_sync(upgrade)
        except CommandError as exc:
            raise StoreError(f"cannot migrate {_safe(parsed)} to {revision!r}: {exc}") from exc
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot migrate {_safe(parsed)}: {_describe(exc, parsed)}") from exc
        finally:
            await engine.dispose()


# --------------------------------------------------------------------------- the store


class Store:
    """The database: batched writes for the pipeline, sessions and summaries for readers.

    ``Store(engine)`` wraps an engine without connecting; :meth:`open` is the usual way in: it
    migrates (SQLite by default) or checks that the schema is current (Postgres).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.url = engine.url.render_as_string(hide_password=True)
        """The database URL with its password hidden, for messages."""
        dialect = engine.dialect
        self._backend = dialect.name
        if dialect.name == "postgresql":
            insert: Any = postgresql.insert
        elif dialect.name == "sqlite":
            insert = sqlite.insert
        else:
            raise StoreError(
                f"unsupported database {self.url}: shadowroute stores to SQLite or Postgres"
            )
        self._insert_exchanges = insert(_EXCHANGES).on_conflict_do_nothing()
        self._insert_outputs = insert(_OUTPUTS).on_conflict_do_nothing()
        upsert = insert(_TRAFFIC)
        self._upsert_traffic = upsert.on_conflict_do_update(
            index_elements=[_TRAFFIC.c.day, _TRAFFIC.c.task_type, _TRAFFIC.c.primary_model],
            set_={
                "requests": _TRAFFIC.c.requests + upsert.excluded.requests,
                "sampled": _TRAFFIC.c.sampled + upsert.excluded.sampled,
            },
        )
        dbapi = getattr(dialect, "loaded_dbapi", None)
        self._errors: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError)
        if dbapi is not None and isinstance(getattr(dbapi, "Error", None), type):
            self._errors += (dbapi.Error,)

    @classmethod
    async def open(cls, url: str | URL, *, auto_migrate: bool | None = None) -> Store:
        """Connect to ``url`` and make sure its schema is current.

        ``auto_migrate`` defaults to True for SQLite and False otherwise: on Postgres, run
        ``shadowroute db upgrade`` once per release instead. Raises :class:`StoreError` when
        the database is unreachable or its schema is not at the latest revision.
        """
        parsed = _url(url)
        if auto_migrate is None:
            auto_migrate = parsed.get_backend_name() == "sqlite"
        store = cls(make_engine(parsed))
        try:
            current = await store._revision_or_raise()
            if current != _head():
                if current is not None and not _known_revision(current):
                    store._check_revision(current)
                if auto_migrate:
                    await migrate(parsed)
                store._check_revision(await store._revision_or_raise())
        except BaseException:
            await store.close()
            raise
        return store

    async def _revision_or_raise(self) -> str | None:
        try:
            with _uncancellable(self._backend):
                async with self._engine.connect() as conn:
                    return await conn.run_sync(_current_revision)
        except self._errors as exc:
            raise StoreError(
                f"cannot connect to {self.url}: {_describe(exc, self._engine.url)}"
            ) from exc

    def _check_revision(self, current: str | None) -> None:
        head = _head()
        if current == head:
            return
        if current is not None and not _known_revision(current):
            raise StoreError(
                f"database {self.url} is at schema revision {current!r}, which this version of "
                "shadowroute does not know: it was upgraded by a newer shadowroute; upgrade "
                "shadowroute to use it"
            )
        if current is None:
            state = "has no shadowroute schema"
        else:
            state = f"is at schema revision {current!r}, this shadowroute needs {head!r}"
        raise StoreError(
            f"database {self.url} {state}: run `shadowroute db upgrade` "
            "(with the same database URL) and start again"
        )

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def session(self) -> AsyncSession:
        """A new ORM session (``async with store.session() as s: ...``); objects stay usable
        after commit."""
        return self._sessions()

    async def revision(self) -> str | None:
        """The schema revision the database is at (``None`` when empty)."""
        try:
            with _uncancellable(self._backend):
                async with self._engine.connect() as conn:
                    return await conn.run_sync(_current_revision)
        except self._errors as exc:
            raise StoreError(f"cannot read {self.url}: {_describe(exc, self._engine.url)}") from exc

    async def write(
        self, exchanges: Sequence[ExchangeRecord], traffic: Sequence[TrafficRecord] = ()
    ) -> None:
        """Store a batch in one transaction; rows already stored (same ids) are skipped.

        Candidate outputs belong to the exchange they are listed under. Traffic counts are
        added to what is stored for the same (day, task type, primary model).
        """
        exchange_rows: list[dict[str, Any]] = []
        output_rows: list[dict[str, Any]] = []
        for x in exchanges:
            exchange_rows.append(
                {
                    "id": x.id,
                    "created_at": x.created_at,
                    "task_type": x.task_type,
                    "primary_model": x.primary_model,
                    "request": x.request,
                    "primary_output": clean_text(x.primary_output),
                    "input_tokens": x.input_tokens,
                    "output_tokens": x.output_tokens,
                    "latency_ms": x.latency_ms,
                    "cost_usd": x.cost_usd,
                    "metadata": x.metadata,
                    "route": x.route,
                }
            )
            for o in x.outputs:
                output_rows.append(
                    {
                        "id": o.id,
                        "exchange_id": x.id,
                        "model": o.model,
                        "output": clean_text(o.output),
                        "input_tokens": o.input_tokens,
                        "output_tokens": o.output_tokens,
                        "latency_ms": o.latency_ms,
                        "cost_usd": o.cost_usd,
                        "error_kind": o.error_kind,
                        "error": clean_text(o.error),
                        "attempts": o.attempts,
                        "created_at": o.created_at,
                    }
                )
        traffic_rows = _merge_traffic(traffic)
        if not (exchange_rows or traffic_rows):
            return
        try:
            with _uncancellable(self._backend):
                async with self._engine.begin() as conn:
                    # In slices, so the event loop gets a turn between them: one 500-exchange
                    # batch would otherwise hold it for tens of milliseconds (parameters are
                    # processed on the loop), stalling the production calls that share it.
                    for statement, rows in (
                        (self._insert_exchanges, exchange_rows),
                        (self._insert_outputs, output_rows),
                        (self._upsert_traffic, traffic_rows),
                    ):
                        for start in range(0, len(rows), WRITE_SLICE_ROWS):
                            chunk = rows[start : start + WRITE_SLICE_ROWS]
                            await conn.execute(statement, chunk)
        except self._errors as exc:
            raise StoreError(
                f"cannot write {len(exchange_rows)} exchanges to {self.url}: "
                f"{_describe(exc, self._engine.url)}",
                rejected=isinstance(exc, DataError | IntegrityError),
            ) from exc

    async def counts(self) -> dict[str, Any]:
        """What is stored, per task type, for the summary command and the demo::

            {"exchanges": 120, "outputs": 240, "errors": 3,
             "tasks": {"classify_intent": {
                 "exchanges": 120, "outputs": 240, "errors": {"timeout": 3},
                 "requests": 1200, "sampled": 120,
                 "primary": {"gpt-4o": {"exchanges": 120, "mean_latency_ms": 812.0,
                                        "cost_usd": 1.2}},
                 "candidates": {"gpt-4o-mini": {"outputs": 120, "errors": 3,
                                                "mean_latency_ms": 301.5, "cost_usd": 0.04}}}},
             "traffic": {"classify_intent": {"requests": 1200, "sampled": 120}}}

        A candidate's mean latency counts successful calls only; ``None`` when there are none.
        """
        x, o, t = _EXCHANGES, _OUTPUTS, _TRAFFIC
        primary = select(
            x.c.task_type,
            x.c.primary_model,
            func.count(),
            func.avg(x.c.latency_ms),
            func.coalesce(func.sum(x.c.cost_usd), 0.0),
        ).group_by(x.c.task_type, x.c.primary_model).order_by(x.c.task_type, x.c.primary_model)
        candidates = (
            select(
                x.c.task_type,
                o.c.model,
                func.count(),
                func.count(o.c.error_kind),
                func.avg(case((o.c.error_kind.is_(None), o.c.latency_ms))),
                func.coalesce(func.sum(o.c.cost_usd), 0.0),
            )
            .join(x, x.c.id == o.c.exchange_id)
            .group_by(x.c.task_type, o.c.model)
            .order_by(x.c.task_type, o.c.model)
        )
        errors = (
            select(x.c.task_type, o.c.error_kind, func.count())
            .join(x, x.c.id == o.c.exchange_id)
            .where(o.c.error_kind.is_not(None))
            .group_by(x.c.task_type, o.c.error_kind)
            .order_by(x.c.task_type, o.c.error_kind)
        )
        traffic = select(t.c.task_type, func.sum(t.c.requests), func.sum(t.c.sampled)).group_by(
            t.c.task_type
        )
        try:
            with _uncancellable(self._backend):
                async with self._engine.connect() as conn:
                    primary_rows = (await conn.execute(primary)).all()
                    candidate_rows = (await conn.execute(candidates)).all()
                    error_rows = (await conn.execute(errors)).all()
                    traffic_rows = (await conn.execute(traffic)).all()
        except self._errors as exc:
            raise StoreError(f"cannot read {self.url}: {_describe(exc, self._engine.url)}") from exc

        tasks: dict[str, dict[str, Any]] = {}

        def task(name: str) -> dict[str, Any]:
            if name not in tasks:
                tasks[name] = {
                    "exchanges": 0,
                    "outputs": 0,
                    "errors": {},
                    "requests": 0,
                    "sampled": 0,
                    "primary": {},
                    "candidates": {},
                }
            return tasks[name]

        for name, model, n, latency, cost in primary_rows:
            entry = task(name)
            entry["exchanges"] += n
            entry["primary"][model] = {
                "exchanges": n,
                "mean_latency_ms": _float(latency),
                "cost_usd": float(cost),
            }
        for name, model, n, failed, latency, cost in candidate_rows:
            entry = task(name)
            entry["outputs"] += n
            entry["candidates"][model] = {
                "outputs": n,
                "errors": failed,
                "mean_latency_ms": _float(latency),
                "cost_usd": float(cost),
            }
        for name, kind, n in error_rows:
            task(name)["errors"][kind] = n
        for name, requests, sampled in traffic_rows:
            entry = task(name)
            entry["requests"] = int(requests or 0)
            entry["sampled"] = int(sampled or 0)
        ordered = {name: tasks[name] for name in sorted(tasks)}
        return {
            "exchanges": sum(v["exchanges"] for v in ordered.values()),
            "outputs": sum(v["outputs"] for v in ordered.values()),
            "errors": sum(sum(v["errors"].values()) for v in ordered.values()),
            "tasks": ordered,
            "traffic": {
                name: {"requests": v["requests"], "sampled": v["sampled"]}
                for name, v in ordered.items()
                if v["requests"] or v["sampled"]
            },
        }

    async def spend_since(self, since: datetime) -> dict[str, float]:
        """Candidate spend (USD) per task type for outputs created at or after ``since``."""
        x, o = _EXCHANGES, _OUTPUTS
        query = (
            select(x.c.task_type, func.coalesce(func.sum(o.c.cost_usd), 0.0))
            .join(x, x.c.id == o.c.exchange_id)
            .where(o.c.created_at >= since)
            .group_by(x.c.task_type)
        )
        try:
            with _uncancellable(self._backend):
                async with self._engine.connect() as conn:
                    rows = (await conn.execute(query)).all()
        except self._errors as exc:
            raise StoreError(f"cannot read {self.url}: {_describe(exc, self._engine.url)}") from exc
        return {name: float(total) for name, total in rows}

    async def close(self) -> None:
        """Close every pooled connection. Safe to call more than once."""
        with _uncancellable(self._backend):
            await self._engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _merge_traffic(traffic: Sequence[TrafficRecord]) -> list[dict[str, Any]]:
    """One row per (day, task, model), sorted so concurrent writers lock rows in one order."""
    merged: dict[tuple[Any, str, str], list[int]] = {}
    for record in traffic:
        key = (record.day, record.task_type, record.primary_model)
        counts = merged.get(key)
        if counts is None:
            merged[key] = [record.requests, record.sampled]
        else:
            counts[0] += record.requests
            counts[1] += record.sampled
    return [
        {"day": day, "task_type": task, "primary_model": model, "requests": r, "sampled": s}
        for (day, task, model), (r, s) in sorted(merged.items())
        if r or s
    ]
