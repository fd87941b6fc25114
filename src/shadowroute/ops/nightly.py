"""``shadowroute nightly``: the whole nightly loop as one command, safe to schedule.

One run, holding a lock on the database (a second run at the same time exits with
:data:`EXIT_LOCKED` and one line, doing nothing):

1. score what is pending (idempotent: an interrupted run's work is kept, the next one goes on);
2. build the report over ``since`` and write it dated into ``out_dir``
   (``shadowroute-YYYY-MM-DD.html`` + ``.json``; its decisions are stored);
3. work out what changed against the previous report's stored decisions (:mod:`.changes`);
4. rebuild ``index.html`` and ``latest.html`` (:mod:`.index`);
5. check the route map (``routes --check``);
6. apply ``[retention] keep_days`` (``prune``, decision counts archived);
7. notify the webhook of the changes (:mod:`.notify`; never fails the run).

Exit codes: :data:`EXIT_OK` (0) nothing needs a person; :data:`EXIT_ATTENTION` (1) something
does: a change, a DEMOTE RECOMMENDED or CONFIG PROBLEM standing, a route map problem;
:data:`EXIT_ERROR` (2) the run failed (the CLI's usual one line); :data:`EXIT_LOCKED` (3)
another run holds the lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..config import Config
from ..report import run_report
from ..report.run import decision_rows
from ..routing.promote import check_routes
from ..scoring import ScoreOptions, plan_for, run_scoring
from ..store import Store
from ..store.locks import exclusive
from ..store.queries.routes import decisions_of, latest_report
from ..store.retention import PruneReport, prune
from .changes import Change, changes_between
from .index import write_index
from .notify import NotifyResult, notify

__all__ = ["EXIT_ATTENTION", "EXIT_ERROR", "EXIT_LOCKED", "EXIT_OK", "NightlyResult",
           "run_nightly"]

EXIT_OK, EXIT_ATTENTION, EXIT_ERROR, EXIT_LOCKED = 0, 1, 2, 3


@dataclass
class NightlyResult:
    locked: bool = False
    scored: int = 0
    html: Path | None = None
    index: Path | None = None
    verdicts: dict[str, int] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    standing: list[str] = field(default_factory=list)
    """Problems that still stand (DEMOTE RECOMMENDED, CONFIG PROBLEM), changed or not."""
    route_problems: list[str] = field(default_factory=list)
    pruned: PruneReport | None = None
    notified: NotifyResult | None = None
    database: str = ""

    @property
    def exit_code(self) -> int:
        if self.locked:
            return EXIT_LOCKED
        return EXIT_ATTENTION if (self.changes or self.standing or self.route_problems) \
            else EXIT_OK

    def summary(self) -> str:
        """The one line a cron mail or a CI log shows."""
        if self.locked:
            return (f"shadowroute nightly: another run holds the lock on {self.database}; "
                    "nothing done (exit 3)")
        verdicts = ", ".join(f"{k} {v}" for k, v in self.verdicts.items() if v) or "no verdicts"
        changed = ("; changes: " + "; ".join(f"{c.kind} {c.task} -> {c.model}"
                                             for c in self.changes)) if self.changes else \
            "; no changes"
        standing = f"; needs attention: {len(self.standing)}" if self.standing else ""
        routes = (f"; route map: {len(self.route_problems)} problem(s)" if self.route_problems
                  else "; route map ok")
        pruned = (f"; pruned {self.pruned.exchanges:,} exchanges" if self.pruned is not None
                  else "")
        notified = ""
        if self.notified is not None and self.changes:
            notified = (f"; notified {self.notified.sent} of {len(self.changes)}"
                        + (" (notification FAILED for the rest)" if self.notified.failed else "")
                        if not self.notified.skipped else
                        f"; not notified ({self.notified.skipped})")
        code = self.exit_code
        what = "needs a person" if code == EXIT_ATTENTION else "nothing to do"
        return (f"shadowroute nightly: scored {self.scored:,} outputs; report {self.html} "
                f"({verdicts}){changed}{standing}{routes}{pruned}{notified}; exit {code} "
                f"({what})")


async def run_nightly(config: Config, out_dir: Path, *, since: datetime | None,
                      examples: int = 3, now: datetime | None = None) -> NightlyResult:
    """One nightly run (see the module docstring). Raises :class:`StoreError` /
    :class:`ConfigError` when it cannot run (exit 2)."""
    now = now or datetime.now(UTC)
    result = NightlyResult()
    async with await Store.open(config.database_url) as store:
        result.database = store.url
        async with exclusive(store, "nightly") as held:
            if not held:
                result.locked = True
                return result
            previous = await latest_report(store)
            before = await decisions_of(store, previous["id"]) if previous else []
            scored = await run_scoring(config, ScoreOptions())
            result.scored = scored.outputs
            html_path = out_dir / f"shadowroute-{now:%Y-%m-%d}.html"
            report, html, _ = await run_report(config, since=since, out=html_path,
                                               examples=examples)
            result.html = html
            result.verdicts = dict(report.overview["verdicts"])
            _, rows = decision_rows(report)
            commands = {(t.task, c.model, "shadow"): c.command
                        for t in report.tasks for c in t.candidates if c.command}
            commands.update({(p.task, p.model, "drift"): p.command
                             for p in report.promoted if p.command})
            result.changes = changes_between(before, rows, commands)
            result.standing = [f"{r['task_type']} -> {r['model']}: {r['verdict']}"
                               for r in rows
                               if r["verdict"] in ("DEMOTE RECOMMENDED", "CONFIG PROBLEM")]
            result.index = write_index(out_dir, html)
            result.route_problems = await check_routes(config, store)
            if config.retention.keep_days is not None:
                keys = {task: plan_for(config, task).keys() for task in config.tasks}
                result.pruned = await prune(
                    store, now - timedelta(days=config.retention.keep_days), keys_by_task=keys)
    title = f"shadowroute nightly {now:%Y-%m-%d}"
    result.notified = await notify(config.notify, title, result.changes, str(result.html))
    return result
