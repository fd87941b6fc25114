"""What a ``shadowroute score`` run is asked to do (:class:`ScoreOptions`) and what it did
(:class:`ScoreRunReport`, with its plain-text summary for the CLI and the logs)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["SCHEMA_PROBLEM_SHARE", "PluginFailure", "ScoreOptions", "ScoreRunReport", "Tally"]

SCHEMA_PROBLEM_SHARE = 0.1
"""A primary failing its own JSON schema this often points at the schema, not the models."""


@dataclass(frozen=True, slots=True)
class ScoreOptions:
    since: datetime | None = None
    """Only exchanges created at or after this time."""
    task: str | None = None
    """Only this task type."""
    workers: int = 2
    """Batches scored concurrently in this process (at most :data:`MAX_WORKERS`: on Postgres
    each holds a pooled connection for its batch)."""
    limit: int | None = None
    """Stop after claiming this many outputs."""
    batch_size: int = 500
    """Outputs per batch for the deterministic scorers (judged batches are smaller)."""
    judge_budget_usd: float | None = None
    """Overrides ``[judge] budget_usd`` for this run."""
    rescan: bool = False
    """Queue every stored output in scope again first, so the run checks each for missing
    scores (after scores were deleted by hand); costs a pass over the scope."""
    report_days: bool = True
    """At the end, count the report's figures of the days that changed since the last run
    (:mod:`shadowroute.store.queries.days`); a day nobody counted is read from the pairs."""


@dataclass
class PluginFailure:
    """One plugin of one task type that failed in a ``shadowroute score`` run."""

    task: str
    scorer: str
    ref: str
    at_load: bool
    first_error: str
    pairs: int = 0
    """Pairs left without its score."""
    by_model: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        where = f"scorer plugin {self.scorer!r} of task {self.task!r} ({self.ref})"
        pairs = f"{self.pairs:,} pair{'s' if self.pairs != 1 else ''}"
        if self.at_load:
            return (f"{where} could not be built: {self.first_error}; {pairs} left without its "
                    "score, the next run tries again")
        return (f"{where} raised on {pairs} (first: {self.first_error}): left without its "
                "score, the next run tries again")


@dataclass(slots=True)
class _Cell:
    n: int = 0
    passed: int = 0
    failed: int = 0
    valued: int = 0
    total: float = 0.0
    cost_usd: float = 0.0
    better: int = 0
    same: int = 0
    worse: int = 0


class Tally:
    """The scores a run wrote, summed per (task type, model, scorer) as they are written;
    :meth:`rows` has the shape of :func:`~shadowroute.store.queries.scores.score_summary`."""

    def __init__(self) -> None:
        self._cells: dict[tuple[str, str, str], _Cell] = {}

    def add(self, task: str, model: str, scorer: str, value: float | None,
            passed: bool | None, cost_usd: float) -> None:
        cell = self._cells.get((task, model, scorer))
        if cell is None:
            cell = self._cells[(task, model, scorer)] = _Cell()
        cell.n += 1
        cell.passed += passed is True
        cell.failed += passed is False
        cell.cost_usd += cost_usd or 0.0
        if value is not None:
            cell.valued += 1
            cell.total += value
            cell.better += value == 1.0
            cell.same += value == 0.5
            cell.worse += value == 0.0 and passed is not None

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"task": task, "model": model, "scorer": scorer, "n": c.n, "passed": c.passed,
             "failed": c.failed, "ignored": c.n - c.passed - c.failed,
             "mean": c.total / c.valued if c.valued else None, "cost_usd": c.cost_usd,
             "better": c.better, "same": c.same, "worse": c.worse}
            for (task, model, scorer), c in sorted(self._cells.items())
        ]


@dataclass
class ScoreRunReport:
    """What a run did. ``left_unscored`` counts outputs (in scope) still lacking a score."""

    outputs: int = 0
    scores: Counter[str] = field(default_factory=Counter)
    """Score rows written, per scorer."""
    seconds: float = 0.0
    judge_calls: int = 0
    judge_retries: int = 0
    judge_flips: int = 0
    judge_injections: int = 0
    judge_cost_usd: float = 0.0
    judge_budget_usd: float | None = None
    judge_unavailable: int = 0
    """Outputs whose judge call failed (left for the next run)."""
    judge_skipped: Counter[str] = field(default_factory=Counter)
    """Pairs not sent to the judge (two calls each) because a cheaper scorer decided them
    (``[judge] when = "needed"``), by what decided (``"label equal"``, ``"similarity failed"``)."""
    budget_exhausted: bool = False
    left_unscored: int = 0
    """Queued outputs (in scope) still lacking a score when the run ended."""
    requeued: Counter[str] = field(default_factory=Counter)
    """Per task type: outputs queued again because the task's scorers changed."""
    rescanned: int = 0
    """Outputs queued again by ``rescan``."""
    stored: bool = False
    """Whether the store holds candidate outputs in the run's scope (say why nothing ran)."""
    scorer_errors: int = 0
    """Pairs a scorer raised on (a bug: logged, left unscored)."""
    primary_schema_checked: Counter[str] = field(default_factory=Counter)
    """Per task type: exchanges whose primary answer was checked against the JSON schema."""
    primary_schema_failures: Counter[str] = field(default_factory=Counter)
    """Per task type: exchanges whose primary answer fails the task's own JSON schema."""
    plugin_failures: dict[tuple[str, str], PluginFailure] = field(default_factory=dict)
    """(task type, scorer) -> a scorer plugin that could not be built or raised on pairs
    (see :mod:`.plugins`): its rows of ``summary`` carry ``errors`` per model."""
    summary: list[dict[str, Any]] = field(default_factory=list)
    """What this run wrote, per task type, model and scorer (:class:`Tally`); the report
    gives the whole store's figures."""
    report_days: int = 0
    """UTC days whose report figures the run counted again (they had changed)."""
    report_days_raced: int = 0
    """Days written again while the run counted them: left stale for the next run."""
    report_days_seconds: float = 0.0
    """Time spent counting them (part of ``seconds``)."""

    def lines(self) -> list[str]:
        """The run in a few plain sentences, for the CLI and logs."""
        rate = self.outputs / self.seconds if self.seconds > 0 else 0.0
        out = [
            f"scored {self.outputs:,} outputs ({sum(self.scores.values()):,} scores) in "
            f"{self.seconds:.1f}s, {rate:,.0f} outputs/s"
        ]
        if self.rescanned:
            out.append(f"rescan: {self.rescanned:,} stored outputs queued again to check "
                       "their scores")
        for task, n in sorted(self.requeued.items()):
            out.append(f"{task}: its scorers changed, so its {n:,} stored outputs were queued "
                       "again for the new scores")
        if self.judge_calls or self.judge_injections or self.judge_unavailable:
            budget = "" if self.judge_budget_usd is None else f" of ${self.judge_budget_usd:,.4g}"
            out.append(
                f"judge: {self.judge_calls:,} calls, ${self.judge_cost_usd:,.4f}{budget}; "
                f"{self.judge_flips:,} verdicts flipped with the order (counted as same), "
                f"{self.judge_retries:,} unreadable replies retried, "
                f"{self.judge_injections:,} outputs failed for addressing the judge"
            )
        if self.judge_skipped:
            by = ", ".join(f"{why} {n:,}" for why, n in self.judge_skipped.most_common())
            pairs = sum(self.judge_skipped.values())
            out.append(
                f"judge: {pairs:,} pairs not judged ({2 * pairs:,} calls saved, both orders): a "
                f"cheaper scorer decided them ({by}); [judge] when = \"always\" judges every pair")
        if self.judge_unavailable:
            out.append(
                f"judge unavailable for {self.judge_unavailable:,} outputs: left without a judge "
                "score, the next run retries them"
            )
        if self.budget_exhausted:
            out.append(
                f"judge budget ${self.judge_budget_usd:,.4g} reached: stopped cleanly; "
                f"{self.left_unscored:,} outputs are left unscored (run again, or raise "
                "[judge] budget_usd / --judge-budget)"
            )
        elif self.left_unscored:
            out.append(f"{self.left_unscored:,} outputs still lack a score")
        for task, n in sorted(self.primary_schema_failures.items()):
            checked = self.primary_schema_checked[task]
            share = n / checked
            what = "config problem" if share >= SCHEMA_PROBLEM_SHARE else "note"
            out.append(
                f"{what}: the primary's own answer fails the JSON schema of {task!r} on {n:,} of "
                f"{checked:,} exchanges ({share:.1%}) scored in this run"
                + (f"; check tasks.{task}.json_schema" if what == "config problem" else "")
            )
        if self.scorer_errors:
            out.append(f"{self.scorer_errors:,} pairs could not be scored (see the log)")
        if self.report_days or self.report_days_raced:
            left = (f"; {self.report_days_raced:,} changed meanwhile, left for the next run"
                    if self.report_days_raced else "")
            out.append(f"report figures: {self.report_days:,} days counted again in "
                       f"{self.report_days_seconds:.1f}s{left}")
        out += [failure.line() for _, failure in sorted(self.plugin_failures.items())]
        return out

