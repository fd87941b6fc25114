"""What every command shares: the Typer app and its groups, the console, the common options,
and the helpers that turn input into config, durations and one-line errors.

Command modules import from here and register themselves on :data:`app`; this module imports
none of them (no cycle).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import typer
from rich.console import Console
from rich.text import Text

from ..config import Config, load_config

__all__ = [
    "ByOption", "ConfigOption", "DatabaseOption", "ReasonOption", "app", "config_app", "console", "db_app",
    "existing_database", "load",
    "parse_since", "progress_bar", "safe_url", "say", "spool_app", "with_store",
]

T = TypeVar("T")

app = typer.Typer(
    name="shadowroute",
    help="Mirror production LLM calls to cheaper models and prove which task types can move.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
spool_app = typer.Typer(help="Captures waiting on local disk for the database.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration file.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(spool_app, name="spool")
app.add_typer(config_app, name="config")

console = Console(width=None if sys.stdout.isatty() else 120)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="SHADOWROUTE_CONFIG",
        help="Path to shadowroute.toml (default: ./shadowroute.toml if present).",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL; overrides the config and $SHADOWROUTE_DATABASE_URL.",
        show_default=False,
    ),
]
ReasonOption = Annotated[
    str | None, typer.Option(help="Why: recorded with the change.", show_default=False)
]
ByOption = Annotated[
    str | None,
    typer.Option("--by", help="Who is making the change (default: $SHADOWROUTE_ACTOR, else "
                              "your login name).", show_default=False),
]


def say(*parts: str | tuple[str, str]) -> None:
    """Print plain text (names, reasons and commands are not read as markup), never wrapped
    mid-command; a ``(text, style)`` part is styled."""
    console.print(Text.assemble(*parts), soft_wrap=True)


def with_store(cfg: Config, work: Callable[[Any], Awaitable[T]], what: str = "the database",
               *, create: bool = True) -> T:
    """Run ``work(store)`` on the configured database; a database failure on the way becomes
    one :class:`StoreError` line (``what`` says what was being read or written, when the
    store's own reader did not say it already). ``create=False``: commands that read what is
    stored fail on a SQLite file that does not exist instead of creating it (see
    :func:`existing_database`)."""
    from ..store import Store

    async def main() -> T:
        async with await Store.open(cfg.database_url, create=create) as store:
            with store.errors(f"read or write {what} in"):
                return await work(store)

    return anyio.run(main)


def existing_database(cfg: Config) -> None:
    """Fail with one line when the configured database is a SQLite file that does not exist.

    Only the commands that bring new data (``demo``, ``db upgrade``, ``serve``, capture,
    ``import``, ``replay``, ``spool replay``) may create a database: for the others a missing
    file is a typo in its path, and an empty database created there would only hide it."""
    from ..store.engine import require_database

    require_database(cfg.database_url)


def load(path: Path | None, database_url: str | None = None) -> Config:
    config = load_config(path)
    if database_url:
        config = config.model_copy(update={"database_url": database_url})
    return config


def parse_since(value: str, option: str = "--since") -> Any:
    """``24h`` -> the UTC time 24 hours ago (``option`` names the flag in errors)."""
    from datetime import UTC, datetime, timedelta

    from ..errors import ConfigError

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = value.strip().lower()
    try:
        amount, unit = float(text[:-1]), units[text[-1]]
    except (ValueError, KeyError, IndexError):
        raise ConfigError(f"{value!r} is not a duration; use e.g. 90m, 24h, 7d", key=option) from None
    if amount < 0:
        raise ConfigError(f"{value!r} is negative", key=option)
    return datetime.now(UTC) - timedelta(seconds=amount * unit)


class progress_bar:
    """A rich progress bar (rate, ETA) on a terminal; a plain line every few seconds otherwise."""

    def __init__(self, label: str, every_s: float = 5.0, unit: str = "outputs") -> None:
        self.label = label
        self.unit = unit
        self.every_s = every_s
        self._bar: Any = None
        self._task: Any = None
        self._last = 0.0
        self._started = 0.0

    def __enter__(self) -> Any:
        import time

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self._started = self._last = time.monotonic()
        if console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=None, rate="")
        return self.update

    def update(self, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        elapsed = max(now - self._started, 1e-9)
        rate = done / elapsed
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total, rate=f"{rate:,.0f}/s")
            return
        if now - self._last >= self.every_s or (done and done == total):
            self._last = now
            eta = (total - done) / rate if rate > 0 else float("inf")
            console.print(
                f"{self.label}: {done:,}/{total:,} {self.unit} ({rate:,.0f}/s), ETA {eta:,.0f}s",
                highlight=False,
            )

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)


def safe_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    from ..store.engine import safe_url as _safe_url

    return _safe_url(url)

