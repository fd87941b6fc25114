"""``shadowroute import`` / ``replay``: bring logged traffic in and run candidates over it.

Registered on the main app by :mod:`shadowroute.cli`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigError
from .common import (
    ConfigOption,
    DatabaseOption,
    app,
    console,
    load,
    parse_since,
    progress_bar,
    say,
    with_store,
)


class ImportFormat(StrEnum):
    auto = "auto"
    chat = "chat"
    batch = "batch"
    otel = "otel"


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="JSONL file: chat request/response pairs (with "
                                              "any \"candidates\" answers), OpenAI Batch "
                                              "API output, or an OTLP/JSON trace export.",
                                         show_default=False)],
    task: Annotated[str | None, typer.Option(help="Task type of every line (default: the "
                                             "line's \"task\", else \"default\"); with "
                                             "otel, of spans without the task attribute.",
                                             show_default=False)] = None,
    fmt: Annotated[ImportFormat, typer.Option("--format", help="Line format; auto tells them "
                                              "apart by the first line.")] = ImportFormat.auto,
    task_attribute: Annotated[str | None, typer.Option(
        "--task-attribute", help="otel: the span (or resource) attribute naming a span's task "
        "type; comma-separated names are tried in order. [default: shadowroute.task]",
        show_default=False)] = None,
    requests: Annotated[Path | None, typer.Option("--requests", help="The Batch API input "
                                                  "file (needed with batch output).",
                                                  show_default=False)] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Store logged production calls as exchanges, with their candidates.

    A chat line's "candidates": {"MODEL": response or text} become
    candidate outputs, scored and decided like mirrored ones (without
    them, see `replay`). Bad lines are listed with the reason and skipped;
    exit code 1 when there were any. Importing a file again stores
    nothing twice. An OTLP trace export (the collector's file exporter)
    gives one exchange per GenAI chat span; other spans are counted and
    left out (docs/otel-import.md)."""
    from ..offline.importer import import_file

    if task is not None and not task.strip():
        raise ConfigError("must not be empty", key="--task")
    if task_attribute is not None and not task_attribute.replace(",", "").strip():
        raise ConfigError("name a span attribute, e.g. shadowroute.task", key="--task-attribute")
    cfg = load(config, database_url)
    with console.status(f"importing {file} ..."):
        report = with_store(cfg, lambda store: import_file(
            cfg, store, file, task=task, fmt=fmt.value, requests=requests,
            task_attribute=task_attribute))
    for i, line in enumerate(report.summary()):
        say(line if i == 0 or not report.bad else (line, "yellow"))
    if report.bad:
        raise typer.Exit(1)
    if report.outputs:
        say("next: `shadowroute score`, then `shadowroute report`")


@app.command("replay")
def replay_(
    task: Annotated[str, typer.Option(help="The task type whose stored exchanges to replay.",
                                      show_default=False)],
    candidates: Annotated[str, typer.Option(help="Comma-separated \\[models] keys to call, "
                                            "e.g. small,tiny; primary@replay calls each "
                                            "exchange's primary again (its noise floor).",
                                            show_default=False)],
    limit: Annotated[int | None, typer.Option(min=1, help="Visit at most this many exchanges.",
                                              show_default=False)] = None,
    since: Annotated[str | None, typer.Option(help="Only exchanges from this long ago on, "
                                              "e.g. 30d, 12h (default: all).",
                                              show_default=False)] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Calls in flight at once "
                                             "(each model's max_concurrency also applies).")
                           ] = 8,
    budget: Annotated[float | None, typer.Option(min=0, help="Spend cap of this run in USD "
                                                 "(the task's daily_budget_usd applies too).",
                                                 show_default=False)] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Call candidates on stored exchanges that lack their output, and store the outputs.

    Resumable: run it again after an interruption and it continues where it stopped."""
    from ..offline.replay import Replay

    names = [name.strip() for name in candidates.split(",") if name.strip()]
    if not names:
        raise ConfigError("name at least one model, e.g. --candidates small,tiny",
                          key="--candidates")
    cfg = load(config, database_url)
    start = None if since is None or since.strip().lower() == "all" else parse_since(since)
    runs: list[Replay] = []

    async def work(store: Any) -> Any:
        run = Replay(cfg, store, task, names, limit=limit, since=start, budget_usd=budget,
                     concurrency=concurrency, progress=progress)
        runs.append(run)
        return await run.run()

    try:
        with progress_bar("replaying") as progress:
            report = with_store(cfg, work, create=False)
    except KeyboardInterrupt:
        if runs:
            for line in runs[0].report.lines():
                say(line)
        raise
    for line in report.lines():
        say(line)
    if report.outputs:
        say("next: `shadowroute score`, then `shadowroute report`")
