""":class:`Store`: the database, and batched, idempotent writes of exchanges.

SQLite (a file, WAL mode) by default, Postgres in production. Every write is one transaction
of multi-row inserts that skip rows already stored, so a batch replayed from the spool after an
ambiguous failure is stored once. Every database, driver or OS error becomes a
:class:`~shadowroute.errors.StoreError` naming the database (password hidden).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import URL, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from ..errors import StoreError
from ..records import ExchangeRecord, TrafficRecord
from .engine import _describe, _uncancellable, _url, make_engine
from .migrations import _current_revision, _head, _known_revision, migrate
from .models import CandidateOutput, Exchange, TrafficDaily, clean_text

__all__ = ["Store"]

WRITE_SLICE_ROWS = 100
"""Rows per ``executemany`` inside one write transaction."""

_EXCHANGES = Exchange.__table__
_OUTPUTS = CandidateOutput.__table__
_TRAFFIC = TrafficDaily.__table__


# --------------------------------------------------------------------------- engines


# --------------------------------------------------------------------------- migrations


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
