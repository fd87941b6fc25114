"""What a ``shadowroute score`` run is asked to do (:class:`ScoreOptions`) and what it did
(:class:`ScoreRunReport`, with its plain-text summary for the CLI and the logs)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["SCHEMA_PROBLEM_SHARE", "PluginFailure", "ScoreOptions", "ScoreRunReport"]

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
    judge_skipped: Counter[str] = field(default_factory=Counter)
    """Pairs not sent to the judge (two calls each) because a cheaper scorer decided them
    (``[judge] when = "needed"``), by what decided (``"label equal"``, ``"similarity failed"``)."""
    """Outputs whose judge call failed (left for the next run)."""
    budget_exhausted: bool = False
    left_unscored: int = 0
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

    def lines(self) -> list[str]:
        """The run in a few plain sentences, for the CLI and logs."""
        rate = self.outputs / self.seconds if self.seconds > 0 else 0.0
        out = [
            f"scored {self.outputs:,} outputs ({sum(self.scores.values()):,} scores) in "
            f"{self.seconds:.1f}s, {rate:,.0f} outputs/s"
        ]
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
        out += [failure.line() for _, failure in sorted(self.plugin_failures.items())]
        return out

