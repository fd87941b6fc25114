""":class:`Store`: the database, and batched, idempotent writes of exchanges.

SQLite (a file, WAL mode) by default, Postgres in production. Every write is one transaction
of multi-row inserts that skip rows already stored, so a batch drained from the spool after an
ambiguous failure is stored once. Every database, driver or OS error becomes a
:class:`~shadowroute.errors.StoreError` naming the database (password hidden).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy import URL, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from ..errors import StoreError
from ..records import ExchangeRecord, RoutedRecord, TrafficRecord
from .engine import make_engine, parse_url, require_database, translated, uncancellable
from .migrations import _current_revision, _head, _known_revision, migrate
from .models import CandidateOutput, Exchange, RoutedDaily, TrafficDaily, clean_text
from .queries.counts import candidate_spend_since, stored_counts

__all__ = ["Store"]

WRITE_SLICE_ROWS = 100
"""Rows per ``executemany`` inside one write transaction."""

_EXCHANGES = Exchange.__table__
_OUTPUTS = CandidateOutput.__table__
_TRAFFIC = TrafficDaily.__table__
_ROUTED = RoutedDaily.__table__


class Store:
    """The database: batched writes for the pipeline, connections for readers.

    ``Store(engine)`` wraps an engine without connecting; :meth:`open` is the usual way in: it
    migrates (SQLite by default) or checks that the schema is current (Postgres). Readers take
    a connection from :meth:`connect` (or a transaction from :meth:`begin`) and hand it to the
    functions of :mod:`shadowroute.store.queries`; every database error on the way becomes one
    :class:`StoreError` (see :meth:`errors`).
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
                "not_shadowable": _TRAFFIC.c.not_shadowable + upsert.excluded.not_shadowable,
            },
        )
        routed = insert(_ROUTED)
        self._upsert_routed = routed.on_conflict_do_update(
            index_elements=[_ROUTED.c.day, _ROUTED.c.task_type, _ROUTED.c.model,
                            _ROUTED.c.outcome],
            set_={"calls": _ROUTED.c.calls + routed.excluded.calls},
        )

    @classmethod
    async def open(
        cls, url: str | URL, *, auto_migrate: bool | None = None, create: bool = True
    ) -> Store:
        """Connect to ``url`` and make sure its schema is current.

        ``auto_migrate`` defaults to True for SQLite and False otherwise: on Postgres, run
        ``shadowroute db upgrade`` once per release instead. ``create=False`` (commands that
        read what is stored) refuses a SQLite file that does not exist rather than creating
        an empty one. Raises :class:`StoreError` when the database is unreachable or missing,
        or its schema is not at the latest revision.
        """
        parsed = parse_url(url)
        if not create:
            require_database(parsed)
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
        async with self.connect("connect to") as conn:
            return await conn.run_sync(_current_revision)

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
        """The SQLAlchemy engine (tests and benchmarks check rows with it; shadowroute's own
        readers use :meth:`connect`)."""
        return self._engine

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._backend

    def errors(
        self, what: str, *, prefix: str = "", note: Callable[[], str] | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """``with store.errors("prune"): ...``: a database, driver or OS error raised inside
        becomes one :class:`StoreError` reading ``{prefix}cannot {what} {url}: {error}{note()}``
        (see :func:`.engine.translated`)."""
        return translated(self._engine.url, self._engine.dialect, what, prefix=prefix, note=note)

    @contextlib.asynccontextmanager
    async def connect(
        self, what: str = "read", *, prefix: str = "", note: Callable[[], str] | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A pooled connection: ``async with store.connect() as conn: ...``.

        Nothing is committed (a statement runs in the transaction it begins, rolled back when
        the block ends). On SQLite the block is not cancelled half-way (the cancellation is
        delivered after it). An error inside becomes a :class:`StoreError` worded by ``what``,
        ``prefix`` and ``note`` as for :meth:`errors` (``"cannot read <url>: ..."``).
        """
        with uncancellable(self._backend), self.errors(what, prefix=prefix, note=note):
            async with self._engine.connect() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def begin(
        self, what: str = "write", *, prefix: str = "", note: Callable[[], str] | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed when the block ends without an error and
        rolled back otherwise; otherwise as :meth:`connect` (``"cannot write <url>: ..."``)."""
        with uncancellable(self._backend), self.errors(what, prefix=prefix, note=note):
            async with self._engine.begin() as conn:
                yield conn

    async def ping(self, timeout_s: float = 2.0) -> bool:
        """Whether the database answers ``SELECT 1`` within ``timeout_s`` (never raises)."""
        try:
            with anyio.fail_after(timeout_s):
                async with self._engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def session(self) -> AsyncSession:
        """A new ORM session (``async with store.session() as s: ...``); objects stay usable
        after commit."""
        return self._sessions()

    async def revision(self) -> str | None:
        """The schema revision the database is at (``None`` when empty)."""
        async with self.connect() as conn:
            return await conn.run_sync(_current_revision)

    async def write(
        self, exchanges: Sequence[ExchangeRecord],
        traffic: Sequence[TrafficRecord | RoutedRecord] = (),
    ) -> None:
        """Store a batch in one transaction; rows already stored (same ids) are skipped.

        Candidate outputs belong to the exchange they are listed under. Traffic counts are
        added to what is stored for the same (day, task type, primary model); routed counts
        (:class:`RoutedRecord`, in the same sequence) to what is stored for the same (day,
        task type, model, outcome).
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
                    "not_carried": x.not_carried or None,
                    "source": x.source,
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
                        "not_carried": o.not_carried or None,
                        "finish_reason": o.finish_reason,
                    }
                )
        traffic_rows = _merge_traffic([t for t in traffic if isinstance(t, TrafficRecord)])
        routed_rows = _merge_routed([t for t in traffic if isinstance(t, RoutedRecord)])
        if not (exchange_rows or traffic_rows or routed_rows):
            return
        # A refused batch (DataError, IntegrityError) raises StoreError(rejected=True).
        async with self.begin(f"write {len(exchange_rows)} exchanges to") as conn:
            # In slices, so the event loop gets a turn between them: one 500-exchange batch
            # would otherwise hold it for tens of milliseconds (parameters are processed on
            # the loop), stalling the production calls that share it.
            for statement, rows in (
                (self._insert_exchanges, exchange_rows),
                (self._insert_outputs, output_rows),
                (self._upsert_traffic, traffic_rows),
                (self._upsert_routed, routed_rows),
            ):
                for start in range(0, len(rows), WRITE_SLICE_ROWS):
                    chunk = rows[start : start + WRITE_SLICE_ROWS]
                    await conn.execute(statement, chunk)

    async def counts(self) -> dict[str, Any]:
        """What is stored, per task type (see :func:`.queries.counts.stored_counts`)."""
        return await stored_counts(self)

    async def spend_since(self, since: datetime) -> dict[str, float]:
        """Candidate spend (USD) per task type for outputs created at or after ``since``."""
        return await candidate_spend_since(self, since)

    async def close(self) -> None:
        """Close every pooled connection. Safe to call more than once."""
        with uncancellable(self._backend):
            await self._engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"


def _merge_traffic(traffic: Sequence[TrafficRecord]) -> list[dict[str, Any]]:
    """One row per (day, task, model), sorted so concurrent writers lock rows in one order."""
    merged: dict[tuple[Any, str, str], list[int]] = {}
    for record in traffic:
        key = (record.day, record.task_type, record.primary_model)
        counts = merged.get(key)
        if counts is None:
            merged[key] = [record.requests, record.sampled, record.not_shadowable]
        else:
            counts[0] += record.requests
            counts[1] += record.sampled
            counts[2] += record.not_shadowable
    return [
        {"day": day, "task_type": task, "primary_model": model, "requests": r, "sampled": s,
         "not_shadowable": n}
        for (day, task, model), (r, s, n) in sorted(merged.items())
        if r or s or n
    ]


def _merge_routed(routed: Sequence[RoutedRecord]) -> list[dict[str, Any]]:
    """One row per (day, task, model, outcome), sorted like :func:`_merge_traffic`."""
    merged: dict[tuple[Any, str, str, str], int] = {}
    for r in routed:
        key = (r.day, r.task_type, r.model, r.outcome)
        merged[key] = merged.get(key, 0) + r.calls
    return [{"day": day, "task_type": task, "model": model, "outcome": outcome, "calls": n}
            for (day, task, model, outcome), n in sorted(merged.items()) if n]
