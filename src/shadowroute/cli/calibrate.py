"""``shadowroute calibrate-judge`` and ``shadowroute calibrate``: how far scoring agrees with people.

Registered on the main app by :mod:`shadowroute.cli`. ``calibrate-judge`` runs the ``[judge]``
of the configuration on answer pairs people have labelled (see
:mod:`shadowroute.scoring.calibration`), prints the agreement per category next to the published
reference, and stores the run for the report. ``calibrate TASK`` compares the stored scores of
every scorer of a task type with labels a team already has (a JSONL file, or the recorded
outcomes; see :mod:`shadowroute.scoring.scorer_calibration`), prints the threshold sweep and
stores one row per scorer for the report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.text import Text

from .common import ConfigOption, DatabaseOption, app, console, load

__all__ = ["calibrate", "calibrate_judge"]


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int, int], None] | None]:
    """A transient progress bar on a terminal; nothing otherwise."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("[bold]judging pairs"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("judging", total=total)
        yield lambda done, _total: bar.update(task, completed=done)


@app.command("calibrate-judge")
def calibrate_judge(
    dataset: Annotated[str, typer.Argument(
        help="Pairs people labelled: a JSON list of {input, output_1, output_2, label (1 or 2)}, "
             "or the name mt_bench_human (looked up in $SHADOWROUTE_DATASETS, else the first "
             "shared/datasets folder above the working directory).",
        show_default=False)],
    limit: Annotated[int | None, typer.Option(
        min=1, help="Judge only the first N pairs.", show_default=False)] = None,
    concurrency: Annotated[int | None, typer.Option(
        min=1, max=64, help="Pairs judged at once (default: \\[judge] concurrency, 8 unless set).",
        show_default=False)] = None,
    budget: Annotated[float | None, typer.Option(
        min=0, help="Judge spend cap for this run in USD (overrides \\[judge] budget_usd).",
        show_default=False)] = None,
    questions: Annotated[Path | None, typer.Option(
        help="MT-Bench question.jsonl giving each pair its category (default: found next to "
             "the dataset).", show_default=False)] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Measure how often the configured judge agrees with human verdicts, and store it.

    Each pair is judged like a shadow pair (both orders, a flip is a tie): output_1 plays the
    primary, output_2 the candidate. The report shows the latest calibration of the judge and
    warns below \\[judge] min_agreement.
    """
    from ..scoring.calibration import (
        CalibrationRun,
        calibrate,
        find_questions,
        judge_spec,
        load_dataset,
        resolve_dataset,
    )
    from ..store import Store
    from ..store.queries.calibrations import save_calibration
    from .tables import render_calibration

    cfg = load(config, database_url)
    judge_spec(cfg)  # no [judge]: one clear line before anything else
    assert cfg.judge is not None
    path = resolve_dataset(dataset)
    questions = questions or find_questions(path)
    pairs = load_dataset(path, questions)
    if limit is not None:
        pairs = pairs[:limit]

    async def main() -> CalibrationRun:
        # Open the database first: an unreachable one fails before any judge call is paid for.
        async with await Store.open(cfg.database_url) as store:
            with _progress(len(pairs)) as progress:
                run = await calibrate(cfg, pairs, dataset=path.stem, dataset_path=str(path),
                                      concurrency=concurrency, budget_usd=budget,
                                      progress=progress)
            await save_calibration(store, run.row())  # "cannot store the calibration in ..."
            return run

    run = anyio.run(main)
    overall = run.overall
    console.print(render_calibration(run))
    if questions is None:
        console.print(f"no MT-Bench question.jsonl found near {path}: every pair is in category "
                      "'other' (pass --questions)", markup=False, highlight=False, soft_wrap=True)
    for line in run.lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    floor = cfg.judge.min_agreement
    if overall.agreement is None:
        verdict = Text(f"the judge picked a side on none of the {overall.n:,} pairs: the report "
                       "will warn that its verdicts carry no signal", style="red")
    elif overall.agreement < floor:
        verdict = Text(f"agreement {overall.agreement:.1%} is below [judge] min_agreement "
                       f"{floor:.0%}: the report will warn to treat the judge's verdicts with care",
                       style="red")
    else:
        verdict = Text(f"agreement {overall.agreement:.1%} meets [judge] min_agreement "
                       f"{floor:.0%}: the report shows this calibration with each judged task type",
                       style="green")
    console.print(verdict, soft_wrap=True)
    console.print(f"stored calibration {run.id} (judge {run.judge_model}, version "
                  f"{run.judge_version}, dataset {run.dataset})", markup=False, highlight=False,
                  soft_wrap=True)


@app.command("calibrate")
def calibrate(
    task: Annotated[str, typer.Argument(help="The task type whose scorers to measure.",
                                        show_default=False)],
    labels: Annotated[Path | None, typer.Option(
        "--labels",
        help='JSONL, one line per labelled candidate output: {"output_id": "...", "label": '
             'true} or {"exchange_id": "...", "model": "...", "label": false}. Default: the '
             "outcomes recorded in the exchanges' metadata (metadata.outcomes).",
        show_default=False)] = None,
    no_sweep: Annotated[bool, typer.Option(
        "--no-sweep", help="Print the summary only, not each scorer's threshold sweep.")] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Measure how far each scorer of TASK agrees with labels, and store it for the report.

    Uses the scores stored by shadowroute score (the judge is not called again). Per scorer:
    precision, recall, accuracy and Cohen's kappa of "the scorer passes" against "the answer is
    acceptable", as configured and over a sweep of thresholds, with the threshold of highest
    kappa.
    """
    from ..scoring.labels import read_labels
    from ..scoring.scorer_calibration import ScorerCalibrationRun, calibrate_scorers
    from ..scoring.validity import MIN_KAPPA
    from ..store import Store
    from ..store.queries.calibrations import save_scorer_calibrations
    from .tables import render_scorer_calibration, render_scorer_sweep

    cfg = load(config, database_url)
    lines = read_labels(labels) if labels is not None else None  # bad file: before the database

    async def main() -> ScorerCalibrationRun:
        async with await Store.open(cfg.database_url, create=False) as store:
            run = await calibrate_scorers(cfg, store, task, lines,
                                          labels_path=None if labels is None else str(labels))
            await save_scorer_calibrations(store, run.rows())
            return run

    run = anyio.run(main)
    if not no_sweep:
        console.print(render_scorer_sweep(run))
    console.print(render_scorer_calibration(run))
    for line in run.lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    stored = [row["scorer"] for row in run.rows()]
    console.print(f"stored calibration {run.id} of {task}: {', '.join(stored)} (the report shows "
                  f"each scorer's kappa beside its task type and flags kappa below {MIN_KAPPA})",
                  markup=False, highlight=False, soft_wrap=True)
