"""Monthly partitions of the big tables on Postgres, so that retention drops a month instead of
deleting its rows.

``exchanges`` is partitioned by ``created_at``, ``candidate_outputs`` and ``scores`` by their
exchange's ``created_at`` (``exchange_created_at``): an exchange, its outputs and their scores
live in the same month, whenever the outputs were written (``shadowroute replay`` adds outputs
to old exchanges). Each table has one partition per UTC month (``exchanges_y2026m12``) and a
``..._default`` partition for rows of a month that has none yet, so a write never fails for
want of a partition.

Months are created ahead (:data:`AHEAD`) by ``shadowroute db upgrade``, every ``score`` run and
every ``prune`` (:func:`ensure_partitions`). A month whose rows already went to the default
partition is not created (Postgres refuses a partition whose rows sit in the default one):
its rows stay there and ``prune`` deletes them row by row, as it does the rows of a month that
is only partly past the cutoff. SQLite has no partitions: every function here is a no-op there.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import StoreError

if TYPE_CHECKING:
    from .store import Store

__all__ = ["AHEAD", "TABLES", "Dropped", "begins", "compared", "drop_month", "ensure_partitions",
           "is_partition", "keep_ahead", "lock_month", "month_partitions", "next_month"]

TABLES = (("exchanges", "created_at"), ("candidate_outputs", "exchange_created_at"),
          ("scores", "exchange_created_at"))
"""The partitioned tables and their partition key, parents first (the order to create in;
dropping goes the other way)."""
log = logging.getLogger("shadowroute")

AHEAD = 2
"""Months created beyond the current one."""
LOCK_TIMEOUT = "10s"
"""How long creating or dropping a partition waits for the table's lock (a long read holds
it off) before it gives up with an error, rather than queueing every write behind it."""


_TABLE_NAMES = "|".join(table for table, _ in TABLES)
_PARTITION = re.compile(rf"^(?:{_TABLE_NAMES})_(?:y\d{{4}}m\d{{2}}|default)$")


def is_partition(name: str) -> bool:
    """Whether the table ``name`` is one of the partitions made here (not part of the models:
    Alembic's comparisons leave them out)."""
    return _PARTITION.match(name) is not None


def compared(obj: Any, name: str | None, type_: str, reflected: bool,
             compare_to: Any) -> bool:
    """Alembic's ``include_object``: leaves out the partitions and their indexes (none are in
    the models)."""
    if type_ == "table":
        return name is None or not is_partition(name)
    table = getattr(obj, "table", None)
    return table is None or not is_partition(table.name)


def month_start(day: date | datetime) -> date:
    return date(day.year, day.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _name(table: str, month: date) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


def begins(month: date) -> datetime:
    """The first instant of ``month`` (UTC)."""
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def _bound(month: date) -> str:
    return f"'{begins(month).isoformat()}'"


async def month_partitions(conn: AsyncConnection) -> list[date]:
    """The months that have partitions (those of ``exchanges``), oldest first; ``[]`` on
    SQLite."""
    if conn.dialect.name != "postgresql":
        return []
    names = (await conn.scalars(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'exchanges'::regclass"))).all()
    months = []
    for name in names:
        suffix = name.removeprefix("exchanges_y")
        if suffix != name and len(suffix) == 7 and suffix[4] == "m":
            months.append(date(int(suffix[:4]), int(suffix[5:]), 1))
    return sorted(months)


async def ensure_partitions(conn: AsyncConnection, now: datetime | None = None,
                            ahead: int = AHEAD) -> list[date]:
    """Create the partitions of the current month and ``ahead`` more where missing (in
    ``conn``'s transaction); returns the months created. A month with rows in a default
    partition is left to it (see the module docstring)."""
    if conn.dialect.name != "postgresql":
        return []
    month = month_start(now or datetime.now(UTC))
    wanted = [month]
    for _ in range(ahead):
        wanted.append(next_month(wanted[-1]))
    have = set(await month_partitions(conn))
    missing = [m for m in wanted if m not in have]
    if not missing:
        return []
    await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    created = []
    for m in missing:
        if await _in_default(conn, m):
            continue
        for table, _ in TABLES:
            await conn.execute(text(
                f"CREATE TABLE IF NOT EXISTS {_name(table, m)} PARTITION OF {table} "
                f"FOR VALUES FROM ({_bound(m)}) TO ({_bound(next_month(m))})"))
        created.append(m)
    return created


async def keep_ahead(store: Store) -> list[date]:
    """:func:`ensure_partitions` in a transaction of its own, for the jobs that run every night
    (``score``, ``prune``): an error (most likely the table's lock not had within
    :data:`LOCK_TIMEOUT`, a long read holding it) is logged and the job goes on; with months
    made ahead, the next run has time to try again, and a month that has none yet loses no
    row (they go to the default partition)."""
    if store.backend != "postgresql":
        return []
    try:
        async with store.begin("create the months ahead in") as conn:
            return await ensure_partitions(conn)
    except StoreError as exc:
        log.warning("shadowroute: %s (the job goes on; the next run tries again)", exc)
        return []


async def _in_default(conn: AsyncConnection, month: date) -> bool:
    for table, key in TABLES:
        found = await conn.scalar(text(
            f"SELECT 1 FROM {table}_default WHERE {key} >= {_bound(month)} "
            f"AND {key} < {_bound(next_month(month))} LIMIT 1"))
        if found is not None:
            return True
    return False


async def lock_month(conn: AsyncConnection, month: date) -> None:
    """Hold off writes to the month's partitions until ``conn``'s transaction ends (reads go
    on)."""
    await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    names = ", ".join(_name(table, month) for table, _ in TABLES)
    await conn.execute(text(f"LOCK TABLE {names} IN SHARE MODE"))


@dataclass
class Dropped:
    """What dropping one month's partitions removed."""

    exchanges: int = 0
    outputs: int = 0
    scores: int = 0


async def drop_month(conn: AsyncConnection, month: date) -> Dropped:
    """Drop the month's partitions of every table (in ``conn``'s transaction), with the queue
    rows of its outputs; returns how many rows they held. The caller has taken whatever it
    keeps of them (``prune`` archives their decision counts first, under :func:`lock_month`)."""
    await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    dropped = Dropped()
    await conn.execute(text(
        f"DELETE FROM score_queue WHERE exchange_created_at >= {_bound(month)} "
        f"AND exchange_created_at < {_bound(next_month(month))}"))
    for (table, _), field in zip(reversed(TABLES), ("scores", "outputs", "exchanges"),
                                 strict=True):
        name = _name(table, month)
        setattr(dropped, field, int(await conn.scalar(text(f"SELECT count(*) FROM {name}")) or 0))
        await conn.execute(text(f"DROP TABLE {name}"))
    return dropped
