"""Database URLs, engines tuned for shadowroute's write pattern, and one-line error text.

SQLite (a file, WAL mode) by default, Postgres in production. The helpers here are the store's
own: :func:`translated` is the one place a database, driver or OS error becomes a
:class:`~shadowroute.errors.StoreError` (:func:`describe` turns it into one line with the
password scrubbed), and :func:`uncancellable` keeps a SQLite operation from being cancelled
half-way.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
from sqlalchemy import URL, event
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import ArgumentError, DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import StoreError
from .models import dumps_json

__all__ = [
    "db_errors",
    "describe",
    "make_engine",
    "parse_url",
    "require_database",
    "safe_url",
    "sqlite_file",
    "translated",
    "uncancellable",
]

SQLITE_BUSY_TIMEOUT_MS = 10_000


PG_CONNECT_TIMEOUT_S = 5


_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
"""The password of ``scheme://user:password@host``, hidden even when the URL does not parse."""


SUPPORTED_URLS = (
    "shadowroute stores to SQLite (sqlite+aiosqlite:///path.db; sqlite:///path.db is accepted "
    "too) or Postgres (postgresql+psycopg://user@host/db; postgresql:// is accepted too)"
)
"""What :func:`parse_url` accepts, for the error about any other database."""


def parse_url(url: str | URL) -> URL:
    """Parse ``url``, defaulting to the async drivers shadowroute ships with.

    Raises :class:`StoreError` for a URL that does not parse and, before any driver is
    imported, for a database other than SQLite and Postgres."""
    parsed = _normalised(url)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database {parsed.render_as_string(hide_password=True)}: "
            f"{SUPPORTED_URLS}"
        )
    return parsed


def _normalised(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        shown, why = (_PASSWORD.sub(r"\1***@", str(text)) for text in (url, exc))
        raise StoreError(f"invalid database URL {shown!r}: {why}") from exc
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str | URL) -> str:
    """``url`` for messages: parsed like :func:`parse_url`, its password hidden."""
    try:
        return _normalised(url).render_as_string(hide_password=True)
    except StoreError:
        return "<invalid database URL>"


def sqlite_file(url: str | URL) -> Path | None:
    """The file a SQLite URL opens (as SQLite resolves it: against the working directory);
    ``None`` for an in-memory database or another backend."""
    parsed = parse_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if not database.startswith("file:"):
        return Path(database)
    # A URI filename (``?uri=true``): file:path.db, file:///abs/path.db, mode=memory...
    uri = urlsplit(database)
    mode = parsed.query.get("mode") or parse_qs(uri.query).get("mode", [None])[0]
    path = unquote(uri.path)
    if mode == "memory" or path in ("", ":memory:"):
        return None
    return Path(path)


def require_database(url: str | URL) -> None:
    """Raise :class:`StoreError` when ``url`` is a SQLite file that does not exist, instead of
    letting SQLite create an empty one (a typo in the path would otherwise read as "no data").
    Postgres databases exist on their server: the first connection says if one does not."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise StoreError(
            f"no database at {safe_url(url)} (the file {path.absolute()} does not exist): check "
            "--database-url (or database_url in the config, $SHADOWROUTE_DATABASE_URL), or "
            "create it with `shadowroute db upgrade`"
        )


def make_engine(url: str | URL, *, foreign_keys: bool = True) -> AsyncEngine:
    """An async engine tuned for shadowroute's write pattern.

    SQLite files: the parent directory is created, and each connection gets WAL journaling,
    ``synchronous=NORMAL``, a busy timeout, and real transactions (``BEGIN`` emitted by
    SQLAlchemy, so DDL is transactional too). ``foreign_keys`` turns SQLite's foreign key
    enforcement on (the default) or off (migrations, which may recreate tables).
    Postgres: pre-ping, a bounded pool, a connect timeout.
    """
    parsed = parse_url(url)
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
        raise StoreError(f"cannot create a database engine for {safe_url(parsed)}: {exc}") from exc


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


def uncancellable(backend: str) -> anyio.CancelScope:
    """A scope that holds off cancellation for SQLite operations (a no-op scope otherwise).

    Cancelling an aiosqlite operation midway leaves SQLAlchemy's graceful-close task waiting
    forever on the connection's stopped worker thread (the event loop then cannot finish). A
    SQLite operation is local and bounded by the busy timeout, so it is allowed to complete and
    the cancellation is delivered right after. Postgres (psycopg) cancels cleanly.
    """
    return anyio.CancelScope(shield=backend == "sqlite")


def describe(exc: BaseException, url: URL | None = None) -> str:
    """One line about a low-level error: its type and first line, password scrubbed."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    text = lines[0] if lines else ""
    if url is not None and url.password and str(url.password) in text:
        text = text.replace(str(url.password), "***")
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__



def db_errors(dialect: Dialect | None = None) -> tuple[type[BaseException], ...]:
    """What a database operation can raise: SQLAlchemy's errors, the OS's (a file or a socket
    that fails), and the base error class of the ``dialect``'s driver."""
    errors: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError)
    dbapi = getattr(dialect, "loaded_dbapi", None)
    if dbapi is not None and isinstance(getattr(dbapi, "Error", None), type):
        errors += (dbapi.Error,)
    return errors


@contextlib.contextmanager
def translated(
    url: URL,
    dialect: Dialect | None,
    what: str,
    *,
    prefix: str = "",
    note: Callable[[], str] | None = None,
) -> Iterator[None]:
    """Turn an error of :func:`db_errors` raised inside into one :class:`StoreError` reading
    ``{prefix}cannot {what} {url}: {describe(exc)}{note()}``, the password hidden.

    ``rejected`` is set when the database refused the data itself (``DataError``,
    ``IntegrityError``): retrying would never succeed. Any other exception, a
    :class:`StoreError` translated further in included, passes through unchanged.
    """
    try:
        yield
    except db_errors(dialect) as exc:
        where = url.render_as_string(hide_password=True)
        text = f"{prefix}cannot {what} {where}: {describe(exc, url)}"
        if note is not None:
            text += note()
        raise StoreError(text, rejected=isinstance(exc, DataError | IntegrityError)) from exc
