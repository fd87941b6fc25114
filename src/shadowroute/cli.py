"""The ``shadowroute`` command line. Bad input gives one clear line and a non-zero exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import anyio
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .config import Config, load_config
from .errors import ShadowrouteError

__all__ = ["app", "main"]

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


def say(*parts: str | tuple[str, str]) -> None:
    """Print plain text (names, reasons and commands are not read as markup), never wrapped
    mid-command; a ``(text, style)`` part is styled."""
    console.print(Text.assemble(*parts), soft_wrap=True)


def with_store(cfg: Config, work: Callable[[Any], Awaitable[T]], what: str = "the database") -> T:
    """Run ``work(store)`` on the configured database; a database failure on the way becomes
    one :class:`StoreError` line (``what`` says what was being read or written)."""
    from sqlalchemy.exc import SQLAlchemyError

    from .errors import StoreError
    from .store import Store

    async def main() -> T:
        async with await Store.open(cfg.database_url) as store:
            try:
                return await work(store)
            except SQLAlchemyError as exc:
                raise StoreError(f"cannot read or write {what} in {store.url}: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc

    return anyio.run(main)


def _config(path: Path | None, database_url: str | None = None) -> Config:
    config = load_config(path)
    if database_url:
        config = config.model_copy(update={"database_url": database_url})
    return config


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Create or upgrade the database schema to the latest migration."""
    from .store import migrate

    cfg = _config(config, database_url)
    anyio.run(migrate, cfg.database_url)
    console.print(f"database at head: {_safe_url(cfg.database_url)}")


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration and print what it declares."""
    cfg = _config(config)
    table = Table("task type", "sample rate", "candidates", "daily budget", title=cfg.source)
    for task in cfg.tasks.values():
        budget = "-" if task.daily_budget_usd is None else f"${task.daily_budget_usd:,.2f}"
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
    console.print(f"database: {_safe_url(cfg.database_url)}")


@app.command("summary")
def summary(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Print what is stored: exchanges and candidate outputs per task type and model."""
    from .store import Store

    cfg = _config(config, database_url)

    async def read() -> dict[str, Any]:
        store = await Store.open(cfg.database_url)
        try:
            return await store.counts()
        finally:
            await store.close()

    print_summary(anyio.run(read))


def print_summary(counts: dict[str, Any]) -> None:
    from .summary import render_summary

    console.print(render_summary(counts))


@spool_app.command("replay")
def spool_replay(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Write spooled captures to the database now (a running Shadow also does this itself)."""
    from .store import Spool, Store

    cfg = _config(config, database_url)
    spool = Spool(cfg.store.spool_dir)

    async def replay() -> int:
        store = await Store.open(cfg.database_url)
        try:
            return await spool.replay(store)
        finally:
            await store.close()

    replayed = anyio.run(replay)
    console.print(f"replayed {replayed} exchanges; {spool.pending()} still spooled")


@app.command("score")
def score(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only exchanges from this long ago on, e.g. 24h, 7d, 90m (default: all).",
                     show_default=False),
    ] = None,
    task: Annotated[str | None, typer.Option(help="Only this task type.", show_default=False)] = None,
    workers: Annotated[int, typer.Option(min=1, max=8, help="Batches scored concurrently.")] = 2,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Score at most this many outputs.", show_default=False)
    ] = None,
    judge_budget: Annotated[
        float | None,
        typer.Option(min=0, help="Judge spend cap for this run in USD (overrides [judge] budget_usd).",
                     show_default=False),
    ] = None,
) -> None:
    """Score every candidate output that lacks a score from its task's scorers (idempotent)."""
    from .scoring import ScoreOptions, run_scoring
    from .summary import render_scores

    cfg = _config(config, database_url)
    options = ScoreOptions(
        since=None if since is None else _since(since),
        task=task,
        workers=workers,
        limit=limit,
        judge_budget_usd=judge_budget,
    )
    with _progress("scoring") as progress:
        report = anyio.run(lambda: run_scoring(cfg, options, progress=progress))
    for line in report.lines():
        console.print(line, highlight=False, markup=False)
    if report.summary:
        console.print(render_scores(report.summary))


@app.command("report")
def report(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    since: Annotated[
        str, typer.Option(help="Only exchanges from this long ago on, e.g. 30d, 12h; 'all' for "
                               "everything stored.")
    ] = "30d",
    out: Annotated[
        Path | None,
        typer.Option(help="HTML file to write (default: reports/shadowroute-YYYY-MM-DD.html).",
                     show_default=False),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="JSON twin to write (default: next to the HTML, .json).",
                     show_default=False),
    ] = None,
    examples: Annotated[int, typer.Option(min=0, max=20, help="Worst examples per candidate.")] = 3,
) -> None:
    """Decide per task type which candidate can take over, and write the HTML report."""
    from .report import run_report
    from .summary import render_promoted, render_verdicts

    cfg = _config(config, database_url)
    start = None if since.strip().lower() == "all" else _since(since)
    with console.status("building the report (aggregating in the database) ..."):
        result, html, twin = anyio.run(
            lambda: run_report(cfg, since=start, out=out, json_path=json_path, examples=examples)
        )
    console.print(render_verdicts(result))
    promoted = render_promoted(result)
    if promoted is not None:
        console.print(promoted)
    console.print(f"report: {html}\njson:   {twin}", highlight=False)


def _since(value: str, option: str = "--since") -> Any:
    """``24h`` -> the UTC time 24 hours ago (``option`` names the flag in errors)."""
    from datetime import UTC, datetime, timedelta

    from .errors import ConfigError

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = value.strip().lower()
    try:
        amount, unit = float(text[:-1]), units[text[-1]]
    except (ValueError, KeyError, IndexError):
        raise ConfigError(f"{value!r} is not a duration; use e.g. 90m, 24h, 7d", key=option) from None
    if amount < 0:
        raise ConfigError(f"{value!r} is negative", key=option)
    return datetime.now(UTC) - timedelta(seconds=amount * unit)


class _progress:
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


@app.command("prune")
def prune(
    older_than: Annotated[
        str, typer.Option(help="Delete what was stored longer ago than this, e.g. 30d, 12w, 36h.",
                          show_default=False)
    ],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    batch: Annotated[int, typer.Option(min=1, help="Exchanges deleted per transaction.")] = 5000,
) -> None:
    """Delete old exchanges (with their outputs and scores), traffic counts and reports.

    The newest report is always kept (promote checks its decisions); route history and judge calibrations are never deleted.
    """
    from .prune import prune as run_prune

    cutoff = _since(older_than, "--older-than")
    cfg = _config(config, database_url)
    with _progress("pruning", unit="exchanges") as progress:
        result = with_store(cfg, lambda store: run_prune(store, cutoff, dry_run=dry_run,
                                                         batch=batch, progress=progress))
    say(result.summary())
    hint = result.hint()
    if hint is not None:
        say((hint, "dim"))


@app.command("serve")
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8787,
    upstream: Annotated[
        str | None,
        typer.Option(help="Primary upstream, e.g. https://api.openai.com (overrides [sidecar] upstream).",
                     show_default=False),
    ] = None,
    anthropic_upstream: Annotated[
        str | None,
        typer.Option(help="Upstream for /v1/messages when it differs, e.g. https://api.anthropic.com.",
                     show_default=False),
    ] = None,
    database_url: DatabaseOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run the sidecar: an OpenAI/Anthropic-compatible gateway that shadows what it forwards."""
    from .config import SidecarConfig
    from .errors import ConfigError
    from .sidecar import serve as run_sidecar

    cfg = _config(config, database_url)
    overrides = {
        key: value
        for key, value in (("upstream", upstream), ("anthropic_upstream", anthropic_upstream))
        if value is not None
    }
    if overrides:
        try:
            sidecar = SidecarConfig.model_validate({**cfg.sidecar.model_dump(), **overrides})
        except ValueError as exc:
            raise ConfigError(f"invalid upstream URL: {exc.errors()[0]['msg']}", key="--upstream") from exc
        cfg = cfg.model_copy(update={"sidecar": sidecar})
    console.print(
        f"shadowroute sidecar on http://{host}:{port} -> {cfg.sidecar.upstream or '(no upstream)'}; "
        f"database {_safe_url(cfg.database_url)}"
    )
    run_sidecar(cfg, host=host, port=port, log_level=log_level)


@app.command("fake-llm")
def fake_llm(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8900,
    seed: Annotated[int, typer.Option(help="Seed of the simulated models.")] = 7,
) -> None:
    """Run the fake OpenAI- and Anthropic-compatible server with simulated models."""
    from .fakellm import default_settings, run

    console.print(f"fake LLM server on http://{host}:{port} (OpenAI: /v1, Anthropic: /)")
    run(default_settings(seed=seed), host=host, port=port)


@app.command("demo")
def demo(
    requests: Annotated[int, typer.Option(help="Production calls to simulate.")] = 1500,
    database: Annotated[
        Path, typer.Option(help="SQLite file for the demo (recreated on each run).")
    ] = Path("shadowroute-demo.db"),
    seed: Annotated[int, typer.Option(help="Seed of the simulated traffic and models.")] = 7,
) -> None:
    """Run the end-to-end demo on a local fake LLM server and print what was stored."""
    from .demo import run_demo

    run_demo(requests=requests, database=database, seed=seed, console=console)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


# Each registers its commands on `app` (they import it from here).
from . import cli_calibrate, cli_data, cli_evals, cli_routes  # noqa: E402,F401


def main() -> None:
    try:
        app()
    except ShadowrouteError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", highlight=False,
                                   soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
