"""Alembic migrations: where the scripts are, which revision a database is at, and
:func:`migrate` (``shadowroute db upgrade``), callable from code."""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path
from typing import Any

from sqlalchemy import URL
from sqlalchemy.engine import Connection

from ..errors import StoreError
from .engine import make_engine, parse_url, safe_url, translated, uncancellable
from .partitions import ensure_partitions

__all__ = ["migrate", "migrations_dir"]

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


async def migrate(url: str | URL, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (all migrations by default).

    Creates the schema in an empty database; a no-op when already there. Runs in one
    transaction (on SQLite too), with SQLite foreign key enforcement off so that batch-mode
    table rebuilds cannot cascade deletes.
    """
    from alembic import command
    from alembic.util import CommandError

    parsed = parse_url(url)
    cfg = _alembic_config(parsed)

    def upgrade(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    engine = make_engine(parsed, foreign_keys=False)
    with uncancellable(parsed.get_backend_name()):
        try:
            with translated(parsed, engine.dialect, "migrate"):
                async with engine.begin() as conn:
                    await conn.run_sync(upgrade)
                    if await conn.run_sync(_current_revision) == _head():
                        await ensure_partitions(conn)  # the months ahead (Postgres)
        except CommandError as exc:
            raise StoreError(f"cannot migrate {safe_url(parsed)} to {revision!r}: {exc}") from exc
        finally:
            await engine.dispose()

