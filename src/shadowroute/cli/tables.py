"""Terminal tables of what is stored and how it scored (``summary``, ``score``, ``report``,
``calibrate-judge``, ``calibrate``, the demo)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

__all__ = [
    "pct",
    "render_calibration", "render_promoted", "render_scorer_calibration", "render_scorer_sweep",
    "render_scores", "render_summary", "render_verdicts",
]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _usd(value: float) -> str:
    return f"${value:,.4f}"


def render_summary(counts: dict[str, Any]) -> Table:
    """One row per task type and model: the primary first, then each candidate."""
    table = Table(
        "task type",
        "requests",
        "sampled",
        "model",
        "role",
        "stored",
        "errors",
        "mean latency",
        "cost",
        title=(
            f"{counts['exchanges']:,} exchanges, {counts['outputs']:,} candidate outputs, "
            f"{counts['errors']:,} candidate errors"
        ),
    )
    for name, task in counts["tasks"].items():
        first = True
        for model, row in task["primary"].items():
            table.add_row(
                name if first else "",
                f"{task['requests']:,}" if first else "",
                f"{task['sampled']:,}" if first else "",
                model or "?",
                "primary",
                f"{row['exchanges']:,}",
                "",
                _ms(row["mean_latency_ms"]),
                _usd(row["cost_usd"]),
            )
            first = False
        for model, row in task["candidates"].items():
            table.add_row(
                name if first else "",
                f"{task['requests']:,}" if first else "",
                f"{task['sampled']:,}" if first else "",
                model,
                "candidate",
                f"{row['outputs']:,}",
                f"{row['errors']:,}",
                _ms(row["mean_latency_ms"]),
                _usd(row["cost_usd"]),
            )
            first = False
        if first:  # counted traffic, nothing sampled
            table.add_row(name, f"{task['requests']:,}", f"{task['sampled']:,}", "", "", "0", "", "", "")
        table.add_section()
    return table


def render_scores(rows: list[dict[str, Any]]) -> Table:
    """One row per task type and model (``primary@replay`` is the noise floor): for each
    scorer, passed / scored and the pass rate; the judge's better / same / worse."""
    scorers = sorted({r["scorer"] for r in rows}, key=lambda n: (n == "judge", n))
    judged = "judge" in scorers
    table = Table("task type", "model", *scorers, *(["judge b/s/w"] if judged else []),
                  "scoring cost", title="scores: passed/scored (current scorer versions)")
    grouped: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["task"], row["model"]), {})[row["scorer"]] = row
    last_task = None
    for (task, model), by_scorer in grouped.items():
        if last_task is not None and task != last_task:
            table.add_section()
        cells = []
        for name in scorers:
            row = by_scorer.get(name)
            if row is None:
                cells.append("")
                continue
            scored = row["passed"] + row["failed"]
            rate = f" {row['passed'] / scored:.0%}" if scored else ""
            cell = f"{row['passed']:,}/{scored:,}{rate}"
            if row["ignored"]:
                cell += f" +{row['ignored']} n/a"
            cells.append(cell)
        if judged:
            j = by_scorer.get("judge")
            cells.append(f"{j['better']}/{j['same']}/{j['worse']}" if j else "")
        cost = sum(r["cost_usd"] for r in by_scorer.values())
        table.add_row(task if task != last_task else "", model, *cells, _usd(cost))
        last_task = task
    return table


def pct(value: float | None) -> str:
    """A rate as a percentage with one decimal; ``-`` when unknown."""
    return "-" if value is None else f"{value:.1%}"


def render_verdicts(report: Any) -> Table:
    """One row per task type x candidate of a :class:`~shadowroute.report.Report`; the lower
    bound is the one the verdict used (always-valid unless ``[decision] sequential = false``);
    the reason says in a few words which criterion decided, with its figures."""
    table = Table(title="decisions")
    for name, widest in (("task type", None), ("candidate", None), ("verdict", None),
                         ("n", 7), ("pass rate", 6), ("lower bound", 6), ("noise floor", 6),
                         ("savings/month", 9), ("decided by", None)):
        table.add_column(name, max_width=widest)
    table.add_column("reason", ratio=1, overflow="fold")
    styles = {"PROMOTE": "green", "HOLD": "red", "NEED MORE DATA": "yellow",
              "CONFIG PROBLEM": "magenta"}
    for task in report.tasks:
        for i, c in enumerate(task.candidates):
            bound = c.sequential_lower if c.sequential_lower is not None else c.lower_bound
            table.add_row(
                escape(task.task) if i == 0 else "", escape(c.model),
                f"[{styles.get(c.verdict, 'white')}]{c.verdict}[/]", f"{c.n:,}", pct(c.pass_rate),
                pct(bound), pct(c.noise_floor),
                "-" if c.monthly_savings is None else _usd(c.monthly_savings),
                _decided(c), escape(_reason(c, task)),
            )
        if task.candidates:
            table.add_section()
    captions = [_calibration_caption(report), _low_kappa_caption(report)]
    if any(captions):
        table.caption = "\n".join(c for c in captions if c)
    return table


def _reason(c: Any, task: Any) -> str:
    """The verdict's reason in a few words (``why``, set by the report), else worked out here."""
    why = getattr(c, "why", "")
    if why:
        return str(why)
    from ..report.reasons import short_reason

    return short_reason(c, task.policy)


def _decided(c: Any) -> str:
    """The scorer that decided a candidate's failures, in red with a flag when the verdict
    rests on a scorer below kappa 0.4 against labels."""
    text = escape(getattr(c, "decided_by", None) or "-")
    flagged = getattr(c, "low_kappa_scorers", None)
    if flagged:
        text += f" [red](low kappa: {escape(', '.join(flagged))})[/]"
    return text


def _low_kappa_caption(report: Any) -> str | None:
    """One line per task type whose verdicts rest on a low-kappa scorer; ``None`` if none."""
    lines = [f"[red]{escape(t.validity_warning)}[/]" for t in report.tasks
             if getattr(t, "validity_warning", None)]
    return "\n".join(lines) or None


def _calibration_caption(report: Any) -> str | None:
    """The judge's latest calibration (in red when below ``[judge] min_agreement``), or a hint
    when a task type uses the judge and it was never calibrated; ``None`` without a judge."""
    calibration = getattr(report, "judge_calibration", None)
    if calibration is not None:
        if calibration.get("warning"):
            return f"[red]{escape(calibration['summary'])}; {escape(calibration['warning'])}[/]"
        return escape(calibration["summary"])
    if any(t.judge_version for t in report.tasks):
        return "judge uncalibrated: run shadowroute calibrate-judge to measure its agreement with people"
    return None


def render_calibration(run: Any) -> Table:
    """A :class:`~shadowroute.scoring.calibration.CalibrationRun` per category, then overall, then the
    published reference points: judged pairs, the judge's ties, agreement with ties left out
    and with ties counted as misses, Cohen's kappa."""
    from ..scoring.calibration import REFERENCE

    overall = run.overall
    table = Table("category", "n", "judge ties", "agreement\n(ties left out)",
                  "agreement\n(ties = misses)", "kappa",
                  title=f"judge {escape(run.judge_model)} ({escape(run.judge_upstream)}) vs people: "
                        f"{escape(run.dataset)}, {overall.n:,} pairs")
    for name, a in run.per_category.items():
        table.add_row(escape(name), f"{a.n:,}", f"{a.ties:,}", pct(a.agreement),
                      pct(a.agreement_with_ties), _kappa(a.kappa))
    table.add_section()
    table.add_row("[bold]all[/]", f"[bold]{overall.n:,}[/]", f"{overall.ties:,}",
                  f"[bold]{pct(overall.agreement)}[/]", pct(overall.agreement_with_ties),
                  f"[bold]{_kappa(overall.kappa)}[/]")
    table.add_section()
    for name, value in REFERENCE:
        table.add_row(f"[dim]{escape(name)}[/]", "", "", f"[dim]{value:.0%}[/]", "", "")
    return table


def _kappa(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


_DRIFT_STYLES = {"HOLDS": "green", "NEED MORE DATA": "yellow", "DEMOTE RECOMMENDED": "red"}


def render_promoted(report: Any) -> Table | None:
    """One row per promoted task type of a :class:`~shadowroute.report.Report`: its drift
    verdict on the reverse-shadow pairs since the promotion, and the ``shadowroute demote``
    command when a demotion is recommended. ``None`` when no task type is promoted."""
    if not report.promoted:
        return None
    table = Table("task type", "model", "primary", "since", "drift", "n", "pass rate",
                  "recent", "flagged below", "command",
                  title="promoted task types (reverse shadow)")
    for p in report.promoted:
        table.add_row(
            escape(p.task), escape(p.model), escape(p.primary), f"{p.since:%Y-%m-%d}",
            f"[{_DRIFT_STYLES.get(p.verdict, 'white')}]{p.verdict}[/]", f"{p.n:,}",
            pct(p.pass_rate), pct(p.recent_pass_rate), pct(p.reference),
            escape(p.command or ""),
        )
    return table


def _threshold(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _agreement_cells(m: Any) -> list[str]:
    return [pct(m.precision), pct(m.recall), pct(m.accuracy), _kappa(m.kappa)]


def render_scorer_sweep(run: Any) -> Table:
    """A :class:`~shadowroute.scoring.scorer_calibration.ScorerCalibrationRun` threshold by
    threshold: per scorer, its metrics as configured (the stored ``passed``), then at each
    threshold shown ("passes" at t: a stored value at or above t); the best one is marked."""
    from ..scoring.validity import CRITERION

    table = Table("scorer", "threshold", "n", "passes", "precision", "recall", "accuracy",
                  "kappa", "", title=f"{escape(run.task)}: each scorer's pass vs "
                                     f"{run.labelled:,} labels, by threshold")
    for s in run.scorers:
        a = s.agreement
        if not a.n:
            continue
        c = a.configured
        table.add_row(f"[bold]{escape(s.scorer)}[/]", f"{_threshold(a.threshold)}", f"{c.n:,}",
                      f"{c.passes:,}", *_agreement_cells(c), "as configured (stored pass)")
        for m in a.sweep:
            marks = []
            if a.best is not None and m.threshold == a.best.threshold:
                marks.append(f"[green]best ({CRITERION})[/]")
            if a.threshold is not None and m.threshold == a.threshold:
                marks.append("configured")
            table.add_row("", _threshold(m.threshold), f"{m.n:,}", f"{m.passes:,}",
                          *_agreement_cells(m), ", ".join(marks))
        table.add_section()
    return table


def render_scorer_calibration(run: Any) -> Table:
    """One row per scorer of a ``shadowroute calibrate`` run: n, the metrics as configured, the
    best threshold and its kappa, and whether the report will flag the scorer."""
    from ..scoring.validity import MIN_KAPPA

    table = Table("scorer", "n", "threshold", "precision", "recall", "accuracy", "kappa",
                  "best\nthreshold", "best\nkappa", "agreement",
                  title=f"scorers of {escape(run.task)} vs labels ({escape(run.source)})")
    for s in run.scorers:
        a = s.agreement
        if not a.n:
            table.add_row(escape(s.scorer), "0", _threshold(a.threshold), "", "", "", "", "", "",
                          "[yellow]no scored labelled outputs[/]")
            continue
        best = a.best
        if a.low:
            verdict = f"[red]low (kappa < {MIN_KAPPA})[/]"
        elif not a.configured.informative:
            verdict = "[yellow]labels of one class only[/]"
        elif a.configured.kappa is None:
            verdict = "[yellow]kappa undefined[/]"
        else:
            verdict = "[green]ok[/]"
        table.add_row(
            escape(s.scorer), f"{a.n:,}", _threshold(a.threshold), *_agreement_cells(a.configured),
            _threshold(best.threshold if best else None), _kappa(best.kappa if best else None),
            verdict,
        )
    return table
