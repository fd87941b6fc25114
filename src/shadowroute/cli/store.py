"""``shadowroute db`` / ``spool`` / ``config``: the schema, the disk spool and the config file."""

from __future__ import annotations

import math

import anyio
from rich.table import Table

from .common import (
    ConfigOption,
    DatabaseOption,
    config_app,
    console,
    db_app,
    load,
    safe_url,
    say,
    spool_app,
)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Create or upgrade the database schema to the latest migration."""
    from ..store import migrate

    cfg = load(config, database_url)
    anyio.run(migrate, cfg.database_url)
    console.print(f"database at head: {safe_url(cfg.database_url)}")


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration and print what it declares."""
    cfg = load(config)
    table = Table("task type", "sample rate", "candidates", "daily budget", title=cfg.source)
    for task in cfg.tasks.values():
        budget = ("no cap" if math.isinf(task.daily_budget_usd)
                  else f"${task.daily_budget_usd:,.2f}")
        table.add_row(task.name, f"{task.sample_rate:g}", ", ".join(task.candidates), budget)
    console.print(table)
    models = Table("model", "api", "base url", "$/1M in", "$/1M out", "key from")
    for model in cfg.models.values():
        models.add_row(
            model.name,
            model.api,
            model.base_url,
            f"{model.input_price:g}",
            f"{model.output_price:g}",
            model.api_key_env or "-",
        )
    console.print(models)
    console.print(f"database: {safe_url(cfg.database_url)}")
    for warning in cfg.warnings():
        say(("warning:", "yellow"), f" {warning}")


@spool_app.command("replay")
def spool_replay(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Write spooled captures to the database now (a running Shadow also does this itself)."""
    from ..store import Spool, Store

    cfg = load(config, database_url)
    spool = Spool(cfg.store.spool_dir)

    async def drain() -> int:
        store = await Store.open(cfg.database_url)
        try:
            return await spool.drain(store)
        finally:
            await store.close()

    replayed = anyio.run(drain)
    console.print(f"replayed {replayed} exchanges; {spool.pending()} still spooled")

