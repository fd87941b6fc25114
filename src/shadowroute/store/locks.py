"""One job at a time per database: ``async with exclusive(store, "nightly") as held: ...``.

On Postgres a session-level advisory lock (``pg_try_advisory_lock``) held on its own
connection for the whole block: released when the block ends, or by the server when the
process dies, so a killed run never blocks the next one. On SQLite an exclusive ``flock`` on a
file next to the database (``<database>.<name>.lock``), released the same way. ``held`` is
``False`` when another process holds it: the caller exits instead of waiting.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text

from .store import Store

__all__ = ["exclusive", "lock_key"]


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (Postgres advisory locks take a bigint)."""
    digest = hashlib.sha256(f"shadowroute:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def exclusive(store: Store, name: str) -> AsyncIterator[bool]:
    if store.backend == "postgresql":
        key = lock_key(name)
        with store.errors(f"lock {name!r} in"):
            conn = await store.engine.connect()
        try:
            with store.errors(f"lock {name!r} in"):
                held = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
                await conn.commit()
            try:
                yield held
            finally:
                if held:
                    with contextlib.suppress(Exception), store.errors(f"unlock {name!r} in"):
                        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        await conn.commit()
        finally:
            await conn.close()
        return
    database = store.engine.url.database
    path = Path(f"{database}.{name}.lock") if database and database != ":memory:" else None
    if path is None:  # an in-memory database belongs to this process alone
        yield True
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
