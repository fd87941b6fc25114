"""Database URLs, engines tuned for shadowroute's write pattern, and one-line error text.

SQLite (a file, WAL mode) by default, Postgres in production. The helpers here are the store's
own: :func:`describe` turns a driver error into one line with the password scrubbed, and
:func:`uncancellable` keeps a SQLite operation from being cancelled half-way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import URL, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import StoreError
from .models import dumps_json

__all__ = ["make_engine"]

SQLITE_BUSY_TIMEOUT_MS = 10_000


PG_CONNECT_TIMEOUT_S = 5


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

