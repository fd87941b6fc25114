"""``shadowroute score`` / ``report`` / ``summary`` / ``prune``: the nightly job and what is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from .common import (
    ConfigOption,
    DatabaseOption,
    app,
    console,
    existing_database,
    load,
    parse_since,
    progress_bar,
    say,
    with_store,
)


@app.command("summary")
def summary(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Print what is stored: exchanges and candidate outputs per task type and model."""
    from ..store import Store

    cfg = load(config, database_url)

    async def read() -> dict[str, Any]:
        store = await Store.open(cfg.database_url, create=False)
        try:
            return await store.counts()
        finally:
            await store.close()

    print_summary(anyio.run(read))


def print_summary(counts: dict[str, Any]) -> None:
    from .tables import render_summary

    console.print(render_summary(counts))


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
    rescan: Annotated[
        bool, typer.Option(help="Check every stored output in scope for missing scores, not "
                                "only those queued since the last run (after scores were "
                                "deleted by hand).")
    ] = False,
) -> None:
    """Score every candidate output that lacks a score from its task's scorers (idempotent).
    A run takes its work from the queue of outputs stored since the last run (and the outputs
    of a task type whose scorers changed), so with nothing new it returns at once; it prints
    what it wrote."""
    from ..scoring import ScoreOptions, run_scoring
    from .tables import render_scores

    cfg = load(config, database_url)
    options = ScoreOptions(
        since=None if since is None else parse_since(since),
        task=task,
        workers=workers,
        limit=limit,
        judge_budget_usd=judge_budget,
        rescan=rescan,
    )
    existing_database(cfg)
    for warning in cfg.warnings():
        say(("warning:", "yellow"), f" {warning}")
    with progress_bar("scoring") as progress:
        report = anyio.run(lambda: run_scoring(cfg, options, progress=progress))
    for line in report.lines():
        console.print(line, highlight=False, markup=False)
    hint = _nothing_scored_hint(report, options)
    if hint is not None:
        say((hint, "dim"))
    if report.summary:
        console.print(render_scores(report.summary))


def _nothing_scored_hint(report: Any, options: Any) -> str | None:
    """What to do when a run scored nothing: capture or import first, or nothing is left."""
    if report.outputs or report.left_unscored:
        return None
    scope = "".join((f" for task type {options.task}" if options.task else "",
                     " in the --since window" if options.since is not None else ""))
    if report.stored:
        return (f"nothing new to score{scope}: every stored candidate output already has its "
                "task's current scores; `shadowroute report` shows the verdicts")
    return (f"nothing to score: no candidate outputs are stored{scope}; capture traffic with "
            "shadow() or `shadowroute serve` (or load logs with `shadowroute import`), then "
            "run score again")


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
    from ..report import run_report
    from .tables import render_promoted, render_verdicts

    cfg = load(config, database_url)
    start = None if since.strip().lower() == "all" else parse_since(since)
    existing_database(cfg)
    with console.status("building the report (aggregating in the database) ..."):
        result, html, twin = anyio.run(
            lambda: run_report(cfg, since=start, out=out, json_path=json_path, examples=examples)
        )
    console.print(render_verdicts(result))
    promoted = render_promoted(result)
    if promoted is not None:
        console.print(promoted)
    console.print(f"report: {html}\njson:   {twin}", highlight=False)


@app.command("nightly")
def nightly(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    out_dir: Annotated[Path, typer.Option(help="Folder of the dated reports, index.html and "
                                               "latest.html.")] = Path("reports"),
    since: Annotated[
        str, typer.Option(help="The report's window, e.g. 30d; 'all' for everything stored "
                               "(verdicts always use all the evidence).")
    ] = "30d",
    examples: Annotated[int, typer.Option(min=0, max=20, help="Worst examples per candidate.")] = 3,
) -> None:
    """The nightly job in one run: score, report (dated, with an index), what changed, route
    map check, retention, webhook. Exit 0 nothing to do, 1 something needs a person, 2 error,
    3 another run holds the lock."""
    from ..ops import run_nightly

    cfg = load(config, database_url)
    start = None if since.strip().lower() == "all" else parse_since(since)
    existing_database(cfg)
    result = anyio.run(lambda: run_nightly(cfg, out_dir, since=start, examples=examples))
    for change in result.changes:
        console.print(change.line(), highlight=False, markup=False)
    for problem in result.route_problems:
        console.print(f"route map: {problem}", highlight=False, markup=False)
    say(result.summary())
    raise typer.Exit(result.exit_code)


@app.command("prune")
def prune(
    older_than: Annotated[
        str | None, typer.Option(help="Delete what was stored longer ago than this, e.g. 30d, "
                                      "12w, 36h.", show_default=False)
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    batch: Annotated[int, typer.Option(min=1, help="Exchanges deleted per transaction.")] = 5000,
    source: Annotated[
        str | None, typer.Option(help="Only the exchanges of this source (e.g. remote:app-1, "
                                      "import:old.jsonl; see the report), of any age unless "
                                      "--older-than is given; nothing else.",
                                 show_default=False)
    ] = None,
) -> None:
    """Delete old exchanges (with their outputs and scores), traffic counts and reports.

    The newest report is always kept (promote checks its decisions); route history and judge calibrations are never deleted, and the decision counts of what is deleted are kept, so verdicts lose no evidence. With --source, only that source's exchanges go, and their evidence with them.
    """
    from datetime import UTC, datetime

    from ..errors import ConfigError
    from ..scoring import plan_for
    from ..store.retention import prune as run_prune

    if older_than is None and source is None:
        raise ConfigError("say what to delete: --older-than 30d, --source NAME, or both",
                          key="--older-than")
    cutoff = (parse_since(older_than, "--older-than") if older_than is not None
              else datetime.now(UTC))
    cfg = load(config, database_url)
    keys = {task: plan_for(cfg, task).keys() for task in cfg.tasks}
    with progress_bar("pruning", unit="exchanges") as progress:
        result = with_store(cfg, lambda store: run_prune(store, cutoff, dry_run=dry_run,
                                                         batch=batch, progress=progress,
                                                         keys_by_task=keys, source=source),
                            create=False)
    say(result.summary())
    hint = result.hint()
    if hint is not None:
        say((hint, "dim"))

