""":class:`Store`: the database, and batched, idempotent writes of exchanges.

SQLite (a file, WAL mode) by default, Postgres in production. Every write is one transaction
of multi-row inserts that skip rows already stored, so a batch drained from the spool after an
ambiguous failure is stored once; its counts are added once too when it carries a batch id
(recorded in ``applied_batches`` in the same transaction). On Postgres with psycopg the rows go
by ``COPY`` (:class:`_CopyPlan`: straight into the table, or through a temporary table and
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` when some are stored already), which takes
about half the CPU per row of ``executemany``, counting both sides of the connection
(``bench/scale.py``): what a writer sharing its cores with Postgres runs out of. Every
database, driver or OS error becomes a :class:`~shadowroute.errors.StoreError` naming the
database (password hidden).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.lowlevel
from sqlalchemy import URL, Table, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
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
from .models import (
    AppliedBatch,
    CandidateOutput,
    Exchange,
    RoutedDaily,
    TrafficDaily,
    clean_text,
)
from .queries.counts import candidate_spend_since, stored_counts
from .queries.scores import enqueue_stored
from .queries.stale import mark_days, utc_day
from .scoring_tables import ScoreQueue

__all__ = ["Store"]

WRITE_SLICE_ROWS = 100
"""Rows sent (an ``executemany``, or rows of a ``COPY``) between two turns of the event loop
inside one write transaction."""

_EXCHANGES = Exchange.__table__
_OUTPUTS = CandidateOutput.__table__
_TRAFFIC = TrafficDaily.__table__
_ROUTED = RoutedDaily.__table__
_BATCHES = AppliedBatch.__table__
_QUEUE = ScoreQueue.__table__
_QUEUE_SLICE = 500
"""Output ids per statement that queues them for scoring."""

_EXCHANGE_COLUMNS = (
    "id", "created_at", "task_type", "primary_model", "request", "primary_output",
    "input_tokens", "output_tokens", "latency_ms", "cost_usd", "metadata", "route",
    "not_carried", "source",
)
_OUTPUT_COLUMNS = (
    "id", "exchange_id", "exchange_created_at", "model", "output", "input_tokens", "output_tokens", "latency_ms",
    "cost_usd", "error_kind", "error", "attempts", "created_at", "not_carried", "finish_reason",
)
_COLUMNS = {_EXCHANGES: _EXCHANGE_COLUMNS, _OUTPUTS: _OUTPUT_COLUMNS}
"""The order of the values in :meth:`Store.write`'s rows (every column of each table)."""
_QUEUE_COLUMNS = ("output_id", "task_type", "exchange_id", "exchange_created_at")
"""The order of the values of the queue rows a new batch copies in (:meth:`Store._queue`)."""
_UNIQUE_VIOLATION = "23505"
"""SQLSTATE of a row that is stored already (see :class:`_CopyPlan`)."""


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
        self._inserts = {table: insert(table).on_conflict_do_nothing() for table in _COLUMNS}
        # RETURNING says whether the row went in (rowcount is -1 under psycopg's async adapter).
        self._insert_batch = insert(_BATCHES).on_conflict_do_nothing().returning(_BATCHES.c.id)
        # Every output the batch names and the store holds (an output stored already is
        # queued again: the scoring job finds it complete and drops it).
        self._enqueue = enqueue_stored(
            dialect.name, _OUTPUTS.c.id.in_(bindparam("ids", expanding=True)))
        self._copy = (
            {table: _CopyPlan(table, columns, dialect)
             for table, columns in {**_COLUMNS, _QUEUE: _QUEUE_COLUMNS}.items()}
            if dialect.name == "postgresql" and dialect.driver == "psycopg" else None
        )
        """Postgres through psycopg: exchanges and outputs go by ``COPY`` (:class:`_CopyPlan`)."""
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
        *, batch_id: str | None = None,
    ) -> None:
        """Store a batch in one transaction; rows already stored (same ids) are skipped.

        Candidate outputs belong to the exchange they are listed under, and are queued for
        scoring (``score_queue``) in the same transaction. Traffic counts are
        added to what is stored for the same (day, task type, primary model); routed counts
        (:class:`RoutedRecord`, in the same sequence) to what is stored for the same (day,
        task type, model, outcome).

        ``batch_id`` (32 characters at most; the :class:`.BatchWriter` gives every batch one,
        and the spool keeps it) makes the counts idempotent too: it is recorded in
        ``applied_batches`` (when the batch has counts) in the same transaction, and the
        counts are added only when it was not recorded already. So the same batch written
        again (a spool file replayed after a commit whose answer was lost, or twice after a
        crash before its file was deleted) changes no count. Without one, the counts are
        added on every call.
        """
        if batch_id is not None and not 0 < len(batch_id) <= 32:
            raise ValueError(f"batch_id must have 1 to 32 characters, not {batch_id!r}")
        exchange_rows: list[tuple[Any, ...]] = []
        output_rows: list[tuple[Any, ...]] = []
        for x in exchanges:
            exchange_rows.append((
                x.id, x.created_at, x.task_type, x.primary_model, x.request,
                clean_text(x.primary_output), x.input_tokens, x.output_tokens, x.latency_ms,
                x.cost_usd, x.metadata, x.route, x.not_carried or None, x.source,
            ))
            for o in x.outputs:
                output_rows.append((
                    o.id, x.id, x.created_at, o.model, clean_text(o.output), o.input_tokens, o.output_tokens,
                    o.latency_ms, o.cost_usd, o.error_kind, clean_text(o.error), o.attempts,
                    o.created_at, o.not_carried or None, o.finish_reason,
                ))
        traffic_rows = _merge_traffic([t for t in traffic if isinstance(t, TrafficRecord)])
        routed_rows = _merge_routed([t for t in traffic if isinstance(t, RoutedRecord)])
        if not (exchange_rows or traffic_rows or routed_rows):
            return
        # A refused batch (DataError, IntegrityError) raises StoreError(rejected=True).
        async with self.begin(f"write {len(exchange_rows)} exchanges to") as conn:
            if batch_id is not None and (traffic_rows or routed_rows):
                # First, so that a concurrent replay of the same batch waits on this row and
                # then finds it (on commit) rather than adding the counts as well.
                recorded = await conn.execute(
                    self._insert_batch, {"id": batch_id, "applied_at": datetime.now(UTC)}
                )
                if recorded.first() is None:  # applied before: the rows only, no count
                    traffic_rows = routed_rows = []
            straight = self._copy is not None
            for table, rows in ((_EXCHANGES, exchange_rows), (_OUTPUTS, output_rows)):
                if self._copy is not None:
                    straight = await self._copy[table].insert(conn, rows) and straight
                else:
                    columns = _COLUMNS[table]
                    await self._insert_sliced(conn, self._inserts[table],
                                              [dict(zip(columns, row, strict=True)) for row in rows])
            await self._queue(conn, exchanges, output_rows, straight)
            await mark_days(conn, {utc_day(x.created_at) for x in exchanges})
            await self._insert_sliced(conn, self._upsert_traffic, traffic_rows)
            await self._insert_sliced(conn, self._upsert_routed, routed_rows)

    async def _queue(self, conn: AsyncConnection, exchanges: Sequence[ExchangeRecord],
                     output_rows: Sequence[tuple[Any, ...]], straight: bool) -> None:
        """Queue the batch's outputs for scoring. When every row went in by a plain ``COPY``
        (all new), the queue rows go the same way; otherwise (some stored already: a replay)
        they are taken from what the store holds, ``INSERT ... SELECT``."""
        if straight and self._copy is not None:
            rows = [(o.id, x.task_type, x.id, x.created_at)
                    for x in exchanges for o in x.outputs]
            await self._copy[_QUEUE].insert(conn, rows)
            return
        for start in range(0, len(output_rows), _QUEUE_SLICE):
            ids = [row[0] for row in output_rows[start : start + _QUEUE_SLICE]]
            await conn.execute(self._enqueue, {"ids": ids})

    @staticmethod
    async def _insert_sliced(
        conn: AsyncConnection, statement: Any, rows: Sequence[dict[str, Any]]
    ) -> None:
        # In slices, so the event loop gets a turn between them: one 500-exchange batch
        # would otherwise hold it for tens of milliseconds (parameters are processed on
        # the loop), stalling the production calls that share it.
        for start in range(0, len(rows), WRITE_SLICE_ROWS):
            await conn.execute(statement, rows[start : start + WRITE_SLICE_ROWS])

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


class _CopyPlan:
    """Rows of one table into Postgres through psycopg's ``COPY``, still skipping the rows
    already stored. ``COPY`` cannot skip a row, so it first goes straight into the table
    inside a savepoint: new rows (every batch but a replay) are stored at the lowest cost.
    If a row is there already (a unique violation), the savepoint is rolled back and the rows
    go through a session-local temporary table (created on first use with the table's
    columns, emptied at every commit) and one ``INSERT ... SELECT ... ON CONFLICT DO
    NOTHING``. Values are converted by the column types' own bind processors (JSON
    serialised as :meth:`Store.write`'s other path does, timestamps made UTC), so both paths
    store the same thing; driver errors become SQLAlchemy's (a ``DataError`` still marks the
    batch rejected)."""

    def __init__(self, table: Table, columns: Sequence[str], dialect: Any) -> None:
        self.dialect = dialect
        self.processors = [
            (i, processor) for i, name in enumerate(columns)
            if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        ]
        temp = f"pg_temp._shadowroute_{table.name}"
        names = ", ".join(f'"{name}"' for name in columns)
        self.copy = f"COPY {table.name} ({names}) FROM STDIN"
        self.create = (f"CREATE TEMP TABLE IF NOT EXISTS {temp} (LIKE {table.name}) "
                       "ON COMMIT DELETE ROWS")
        self.copy_temp = f"COPY {temp} ({names}) FROM STDIN"
        self.insert_sql = (f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {temp} "
                           "ON CONFLICT DO NOTHING")

    async def insert(self, conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> bool:
        """``rows`` (values in the plan's column order) into the table, in ``conn``'s
        transaction; the temporary table is emptied when that transaction commits. Returns
        whether they all went straight in (none was stored already)."""
        if not rows:
            return True
        driver = (await conn.get_raw_connection()).driver_connection
        statement = self.copy
        try:
            async with driver.cursor() as cursor:
                await cursor.execute("SAVEPOINT shadowroute_copy")
                try:
                    await self._send(cursor, self.copy, rows)
                except self.dialect.loaded_dbapi.Error as exc:
                    if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
                        raise
                    await cursor.execute("ROLLBACK TO SAVEPOINT shadowroute_copy")
                else:
                    await cursor.execute("RELEASE SAVEPOINT shadowroute_copy")
                    return True
                statement = self.create
                await cursor.execute(self.create)
                statement = self.copy_temp
                await self._send(cursor, self.copy_temp, rows)
                statement = self.insert_sql
                await cursor.execute(self.insert_sql)
                return False
        except self.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                statement, None, exc, self.dialect.loaded_dbapi.Error, dialect=self.dialect
            ) from exc

    async def _send(self, cursor: Any, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
        async with cursor.copy(statement) as copy:
            for start in range(0, len(rows), WRITE_SLICE_ROWS):
                for row in rows[start : start + WRITE_SLICE_ROWS]:
                    values = list(row)
                    for i, processor in self.processors:
                        values[i] = processor(values[i])
                    await copy.write_row(values)
                # The loop's turn, as between executemany slices (formatting rows runs on
                # the loop; copy.write_row only buffers most of the time).
                await anyio.lowlevel.checkpoint()
