"""Alembic environment for shadowroute.

Normally driven from code by :func:`shadowroute.store.migrate` (``shadowroute db upgrade``), which
passes an open connection in ``config.attributes["connection"]``. Without one, the URL comes
from the ``sqlalchemy.url`` option. Offline mode (``--sql``) renders the SQL for that URL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection, make_url

from shadowroute.store.models import Base
from shadowroute.store.partitions import compared

config = context.config
target_metadata = Base.metadata


def _options(dialect_name: str) -> dict[str, object]:
    return {
        "target_metadata": target_metadata,
        # The monthly partitions are made at run time, not by the models.
        "include_object": compared,
        # SQLite cannot ALTER most things: batch mode recreates the table instead.
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
    }


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "shadowroute migrations need a database: run `shadowroute db upgrade`, call "
            "shadowroute.store.migrate(url), or set the sqlalchemy.url option"
        )
    return url


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_options(make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    from shadowroute.store.engine import make_engine

    engine = make_engine(url, foreign_keys=False)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_with)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
    else:
        asyncio.run(_run_with_url(_url()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
