"""``shadowroute promote`` / ``demote`` / ``routes``: change, show and check the route map.

Registered on the main app by :mod:`shadowroute.cli`. Every change goes to the database
(history) and to the exported route map file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from ..config import Config
from .common import (
    ByOption,
    ConfigOption,
    DatabaseOption,
    ReasonOption,
    app,
    console,
    load,
    say,
    with_store,
)
from .tables import pct as _pct

T = TypeVar("T")



def _run(cfg: Config, work: Callable[[Any], Awaitable[T]]) -> T:
    # The map and its evidence live in a database that exists: a SQLite path that does not is
    # a typo, refused rather than created empty.
    return with_store(cfg, work, "the route map", create=False)


def _evidence_line(evidence: dict[str, Any]) -> str:
    if not evidence.get("report"):
        return "no report evidence"
    savings = evidence.get("monthly_savings_usd")
    money = "" if savings is None else f", saves ${savings:,.2f}/month"
    n = evidence.get("n")
    count = f"{n:,}" if isinstance(n, int) else str(n)
    return (f"report {evidence['report'][:12]}: {evidence.get('verdict')}, n={count}, "
            f"pass rate {_pct(evidence.get('pass_rate'))}, lower bound "
            f"{_pct(evidence.get('lower_bound'))}, noise floor "
            f"{_pct(evidence.get('noise_floor'))}{money}{_promise(evidence.get('promise'))}")


def _promise(promise: Any) -> str:
    """What a cascade or partial route promised, for the evidence line."""
    if not isinstance(promise, dict) or not promise:
        return ""
    if "routed_share" in promise:
        return f"; promises {_pct(promise.get('routed_share'))} of the calls to the candidate"
    return (f"; promises escalation rate {_pct(promise.get('escalation_rate'))} (bound "
            f"{_pct(promise.get('escalation_upper'))}, break-even "
            f"{_pct(promise.get('break_even'))})")


def _how(route: Any) -> str:
    """How a route serves, in words ("" for a plain promotion)."""
    if route.mode == "cascade":
        return (f" as a cascade (checks: {', '.join(route.checks)}; a failed check escalates to "
                f"{route.primary})")
    if route.mode == "partial":
        return f" for the requests where {route.rule.describe()} (partial; the rest: primary)"
    return ""


@app.command("promote")
def promote(
    task: Annotated[str, typer.Argument(help="The task type to move.")],
    to: Annotated[str, typer.Option("--to", help="The model (a \\[models] key) to serve it.")],
    cascade: Annotated[str | None, typer.Option(
        "--cascade", metavar="POLICY",
        help="A cascade instead: MODEL answers, a failed check (POLICY: one the report "
             "evaluated: all, schema or extract) escalates to the primary. Needs CASCADE.",
        show_default=False)] = None,
    partial: Annotated[bool, typer.Option(
        "--partial", help="A partial route instead: MODEL serves the requests the report's "
                          "rule picks, the primary the rest. Needs PARTIAL.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Promote without a PROMOTE verdict "
                                        "(needs --reason).")] = False,
    reason: ReasonOption = None,
    by: ByOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Route TASK to a cheaper model: allowed when the latest report says PROMOTE for it
    (CASCADE for --cascade, PARTIAL for --partial)."""
    from ..routing import promote as ops

    cfg = load(config, database_url)
    ops.check_target(cfg, to)  # a typo in --to is named before the database is opened
    change = _run(cfg, lambda store: ops.promote(cfg, store, task, to, force=force,
                                                 reason=reason, by=by, cascade=cascade,
                                                 partial=partial))
    route = change.route
    if not change.changed:
        say(f"{task} is already served by {to}{_how(route)} (since "
            f"{route.since:%Y-%m-%d %H:%M} UTC); nothing changed")
        return
    say(("promoted", "green"), f" {task} -> {route.model}{_how(route)} (replacing "
        f"{route.primary})")
    say(f"evidence: {_evidence_line(route.evidence)}")
    if route.forced:
        say(("forced", "yellow"), f" by {route.by}: {route.reason}")
    for warning in change.warnings:
        say(("warning:", "yellow"), f" {warning}")
    say(f"route map: {cfg.routes_file()} (commit it); {cfg.reverse_rate(task):.0%} of {task}'s "
        f"requests go to {route.primary} too (reverse shadow, for drift); roll back with "
        f"`shadowroute demote {task}`")


@app.command("demote")
def demote(
    task: Annotated[str, typer.Argument(help="The promoted task type to move back.")],
    reason: ReasonOption = None,
    by: ByOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Roll TASK back to the primary it had before its promotion."""
    from ..routing import promote as ops

    cfg = load(config, database_url)
    change = _run(cfg, lambda store: ops.demote(cfg, store, task, reason=reason, by=by))
    say(("demoted", "green"), f" {task} -> {change.route.model} (from "
        f"{change.route.evidence.get('demoted_from')}); route map: {cfg.routes_file()}")


@app.command("routes")
def routes(
    diff: Annotated[bool, typer.Option("--diff", help="What the latest report recommends "
                                                      "versus the map.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if a promoted task type should "
                                        "be demoted or the file differs from the database.")
                     ] = False,
    history: Annotated[bool, typer.Option("--history", help="Every change, oldest first.")
                       ] = False,
    export: Annotated[bool, typer.Option("--export", help="Write the database's map to the "
                                         "route map file.")] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Show the route map: which task types a promoted model serves, and on what evidence."""
    from ..routing import promote as ops
    from ..store.queries.routes import route_changes

    cfg = load(config, database_url)
    if check:
        problems = _run(cfg, lambda store: ops.check_routes(cfg, store))
        for problem in problems:
            say((problem, "red"))
        if problems:
            raise typer.Exit(1)
        console.print("ok: every promoted task type holds and the route map file is current")
        return
    if export:
        exported = _run(cfg, lambda store: ops.export_routes(cfg, store))
        say(f"wrote {cfg.routes_file()} ({sum(r.promoted for r in exported.values())} promoted "
            "task types)")
        return
    if diff:
        report, lines = _run(cfg, lambda store: ops.routes_diff(cfg, store))
        if report is not None:
            say(f"latest report {report['id'][:12]} ({report['created_at']:%Y-%m-%d %H:%M} UTC) "
                "versus the route map:")
        for line in lines:
            arrow = f"{line.current} -> {line.recommended}" if line.changes else line.current
            say(("~" if line.changes else " ", "yellow"), f" {line.task}: {arrow}  ({line.why})")
            if line.command:
                say(f"    run: {line.command}")
        if not lines:
            console.print("nothing to compare: no report and no route yet")
        return
    if history:
        changes = _run(cfg, route_changes)
        table = Table("when (UTC)", "task type", "action", "model", "primary", "by", "forced",
                      "reason", "report", title="route map history")
        for c in changes:
            mode = (c["evidence"] or {}).get("mode")
            table.add_row(*map(escape, (
                f"{c['created_at']:%Y-%m-%d %H:%M}", c["task_type"],
                f"{c['action']} ({mode})" if mode else c["action"], c["model"],
                c["primary_model"], c["actor"], "yes" if c["forced"] else "", c["reason"] or "",
                (c["report_id"] or "")[:12])))
        console.print(table)
        return
    current = _run(cfg, ops.current_routes)
    promoted = {t: r for t, r in current.items() if r.promoted}
    if not promoted:
        console.print("no task type is promoted: every call goes to its primary "
                      "(`shadowroute report` says what could move)")
        return
    table = Table("task type", "model", "replacing", "since (UTC)", "by", "evidence",
                  title=f"route map ({cfg.routes_file()})")
    for task, r in sorted(promoted.items()):
        evidence = _evidence_line(r.evidence)
        if r.forced:
            evidence = f"FORCED: {r.reason}; {evidence}"
        model = r.model if r.whole else f"{r.model}{_how(r)}"
        table.add_row(*map(escape, (task, model, r.primary, f"{r.since:%Y-%m-%d %H:%M}", r.by,
                                    evidence)))
    console.print(table)
