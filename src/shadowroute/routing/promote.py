"""Changing the route map: promote (gated on the latest decision), demote, export, diff, check.

Every change is a row of ``route_changes`` carrying who, when, why and the evidence (report id,
n, pass rate, lower bound, noise floor, judge version, projected savings); the current map is
exported to ``[routes] file`` after each change. These functions are what the ``promote``,
``demote`` and ``routes`` commands run.
"""

from __future__ import annotations

import difflib
import getpass
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..config import Config
from ..decision import DriftVerdict, Verdict
from ..errors import ConfigError, PromotionRefused
from ..store import Store
from ..store.queries.routes import (
    add_route_change,
    decisions_of,
    latest_decision,
    latest_report,
    route_changes,
)
from .gate import CASCADE, PARTIAL, policy_results
from .gate import policy_route as _policy_route
from .routemap import Route, read_routes, route_fields, routes_from_changes, write_routes

__all__ = [
    "Change",
    "DiffLine",
    "actor",
    "check_routes",
    "check_target",
    "current_routes",
    "demote",
    "export_routes",
    "promote",
    "routes_diff",
]

ACTOR_ENV = "SHADOWROUTE_ACTOR"


def actor() -> str:
    """Who is changing the map: ``$SHADOWROUTE_ACTOR``, else the login name."""
    found = os.environ.get(ACTOR_ENV)
    if found:
        return found
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass
class Change:
    """The outcome of a promote / demote."""

    route: Route
    changed: bool
    """False when the map already said so (nothing recorded)."""
    warnings: list[str] = field(default_factory=list)


async def current_routes(store: Store) -> dict[str, Route]:
    """The map as the database says (demoted task types included, with tier ``primary``)."""
    return routes_from_changes(await route_changes(store))


async def export_routes(config: Config, store: Store) -> dict[str, Route]:
    """Write the database's current map to ``[routes] file``."""
    routes = await current_routes(store)
    path = config.routes_file()
    try:
        write_routes(path, routes)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the route map: {exc.strerror or exc}; the database holds the change: "
            "run `shadowroute routes --export` once the file can be written",
            path=str(path),
        ) from exc
    return routes


def _evidence(decision: dict[str, Any] | None) -> dict[str, Any]:
    if decision is None:
        return {}
    return {
        "report": decision["report_id"], "decided_at": decision["created_at"].isoformat(),
        "verdict": decision["verdict"], "n": decision["n"], "pass_rate": decision["pass_rate"],
        "lower_bound": decision["lower_bound"], "noise_floor": decision["noise_floor"],
        "judge": decision["judge_version"], "monthly_savings_usd": decision["monthly_savings"],
    }


def _primary_name(config: Config, model: str) -> str:
    declared = config.model_named(model)
    return declared.name if declared is not None else model


async def promote(
    config: Config, store: Store, task: str, model: str, *, force: bool = False,
    reason: str | None = None, by: str | None = None, now: datetime | None = None,
    cascade: str | None = None, partial: bool = False,
) -> Change:
    """Route ``task`` to ``model`` if the latest report said PROMOTE for that pair.

    Otherwise raises :class:`PromotionRefused` naming the verdict and its failing criterion,
    unless ``force`` (which needs a ``reason``; both are recorded). ``cascade`` (a policy name
    of the report: ``all``, ``schema`` or ``extract``) or ``partial`` write a cascade or a
    partial route instead, gated on that policy's verdict (CASCADE, PARTIAL) in the latest
    report's overview; the route map entry carries its checks or rule and its promise."""
    check_target(config, model)
    if cascade is not None and partial:
        raise PromotionRefused("--cascade and --partial are two different routes: choose one")
    if force and not (reason and reason.strip()):
        raise PromotionRefused("--force needs --reason '...': the reason is recorded with the "
                               "route")
    by_policy = cascade is not None or partial
    routes = await current_routes(store)
    existing = routes.get(task)
    if not by_policy and existing is not None and existing.promoted and \
            existing.model == model and existing.whole:
        return Change(existing, changed=False)
    decision = await latest_decision(store, task, model)
    if decision is None and existing is None and task not in config.tasks:
        await _check_task_known(config, store, task, routes)
    if by_policy:
        how, evidence, passed = await _policy_route(config, store, task, model, cascade, force)
        if existing is not None and existing.promoted and existing.model == model and \
                route_fields(existing) == how:
            return Change(existing, changed=False)
        evidence = {**_evidence(decision), **evidence}
    else:
        how, evidence = {}, _evidence(decision)
        passed = decision is not None and decision["verdict"] == Verdict.PROMOTE
        if not force:
            _gate(task, model, decision, existing)
    if existing is not None and existing.promoted:
        primary = existing.primary  # switching models: the primary replaced stays the same
    elif decision is not None and decision["primary_model"]:
        primary = _primary_name(config, decision["primary_model"])
    elif existing is not None:
        primary = existing.primary
    else:
        raise PromotionRefused(
            f"no report has seen {task}'s primary yet, so there is nothing to roll back to: "
            "run `shadowroute report` on its stored traffic first")
    warnings = _warnings(config, task, model, primary)
    await add_route_change(store, {
        "created_at": now or datetime.now(UTC), "task_type": task, "action": "promote",
        "model": model, "primary_model": primary, "actor": by or actor(),
        "reason": reason.strip() if reason else None, "forced": bool(force and not passed),
        "report_id": evidence.get("report"), "evidence": {**evidence, **how},
    })
    routes = await export_routes(config, store)
    return Change(routes[task], changed=True, warnings=warnings)


def _gate(task: str, model: str, decision: dict[str, Any] | None,
          existing: Route | None) -> None:
    """Refuse a plain promotion without a PROMOTE verdict (see :func:`promote`)."""
    if decision is None and existing is None:  # --force would fail: no primary known
        raise PromotionRefused(
            f"no report has decided {task} -> {model} yet: run `shadowroute score` and "
            f"`shadowroute report` first (a promotion needs a report that has seen {task}'s "
            "primary, to roll back to)")
    if decision is None:
        raise PromotionRefused(
            f"no report has decided {task} -> {model} yet: run `shadowroute score` and "
            "`shadowroute report` first, or promote anyway with --force --reason '...'")
    if decision["verdict"] != Verdict.PROMOTE:
        raise PromotionRefused(
            f"the latest report ({decision['report_id'][:12]}, "
            f"{decision['created_at']:%Y-%m-%d %H:%M} UTC) says {decision['verdict']} for "
            f"{task} -> {model}: {decision['reason']}. Promote anyway with --force "
            "--reason '...'")


def check_target(config: Config, model: str) -> None:
    """Raise :class:`ConfigError` unless ``model`` is declared under ``[models]``."""
    if model not in config.models:
        known = ", ".join(sorted(config.models)) or "none declared"
        raise ConfigError(f"cannot promote to {model!r}: it is not declared under [models] "
                          f"(models: {known}); the router needs its base URL",
                          path=config.source)


async def _check_task_known(
    config: Config, store: Store, task: str, routes: dict[str, Route]
) -> None:
    """Refuse a task type that neither the config, the latest report nor the route map knows
    (a typo: ``--force`` could not help, so it is not offered)."""
    report = await latest_report(store)
    reported = {r["task_type"] for r in await decisions_of(store, report["id"])} if report else set()
    known = sorted(set(config.tasks) | reported | set(routes))
    if task in known:
        return
    match = difflib.get_close_matches(task, known, n=3)
    hint = (f"did you mean {' or '.join(repr(m) for m in match)}?" if match
            else f"known task types: {', '.join(known)}" if known
            else "no task type is declared or reported yet")
    raise PromotionRefused(
        f"unknown task type {task!r}: it is not under [tasks], in the latest report or in the "
        f"route map; {hint}")


def _warnings(config: Config, task: str, model: str, primary: str) -> list[str]:
    out = []
    declared = config.models.get(primary)
    if declared is None:
        out.append(f"{primary!r} is not declared under [models]: there will be no reverse "
                   "shadow, so drift cannot be seen; declare it")
    elif config.models[model].api != declared.api:
        out.append(f"{model} speaks the {config.models[model].api} API and {primary} the "
                   f"{declared.api} API: the sidecar routes only calls made in {model}'s API "
                   "(the library Router without call= translates)")
    if config.reverse_rate(task) == 0:
        out.append(f"{task}'s reverse_shadow_rate is 0: drift cannot be seen")
    return out


async def demote(
    config: Config, store: Store, task: str, *, reason: str | None = None,
    by: str | None = None, now: datetime | None = None,
) -> Change:
    """Route ``task`` back to the primary it had before its promotion."""
    existing = (await current_routes(store)).get(task)
    if existing is None or not existing.promoted:
        raise PromotionRefused(f"{task} is not promoted: its primary serves it already")
    drift = await latest_decision(store, task, existing.model, kind="drift")
    await add_route_change(store, {
        "created_at": now or datetime.now(UTC), "task_type": task, "action": "demote",
        "model": existing.primary, "primary_model": existing.primary,
        "actor": by or actor(), "reason": reason.strip() if reason else None, "forced": False,
        "report_id": drift["report_id"] if drift else None,
        "evidence": {**_evidence(drift), "demoted_from": existing.model},
    })
    routes = await export_routes(config, store)
    return Change(routes[task], changed=True)


@dataclass(frozen=True)
class DiffLine:
    task: str
    current: str
    """The model serving the task type now (``primary`` when not promoted)."""
    recommended: str
    """What the latest report recommends (``primary`` to demote or stay)."""
    why: str
    command: str | None

    @property
    def changes(self) -> bool:
        return self.command is not None


async def routes_diff(
    config: Config, store: Store, current: dict[str, Route] | None = None
) -> tuple[dict[str, Any] | None, list[DiffLine]]:
    """What the latest report recommends versus the map: (the report, one line per task type
    that has a route or a verdict). ``current``: the map, when the caller has read it."""
    report = await latest_report(store)
    if current is None:
        current = await current_routes(store)
    routes = {t: r for t, r in current.items() if r.promoted}
    if report is None:
        return None, [DiffLine(t, r.model, r.model, "no report yet", None)
                      for t, r in sorted(routes.items())]
    rows = await decisions_of(store, report["id"])
    lines = []
    for task in sorted({r["task_type"] for r in rows} | set(routes)):
        route = routes.get(task)
        current = _label(route)
        drift = next((r for r in rows if r["task_type"] == task and r["kind"] == "drift"
                      and route is not None and r["model"] == route.model), None)
        best = max((r for r in rows if r["task_type"] == task and r["kind"] == "shadow"
                    and r["verdict"] == Verdict.PROMOTE),
                   key=lambda r: (r["monthly_savings"] is not None, r["monthly_savings"] or 0.0),
                   default=None)
        policy = None if best is not None else _best_policy(
            report, task, {r["model"] for r in rows if r["task_type"] == task})
        if drift is not None and drift["verdict"] == DriftVerdict.DEMOTE:
            lines.append(DiffLine(task, current, "primary", f"DEMOTE RECOMMENDED: "
                                  f"{drift['reason']}", f"shadowroute demote {task}"))
        elif best is not None and best["model"] != current:
            lines.append(DiffLine(task, current, best["model"], f"PROMOTE: {best['reason']}",
                                  f"shadowroute promote {task} --to {best['model']}"))
        elif policy is not None and policy[0] != current:
            lines.append(DiffLine(task, current, *policy))
        else:
            why = (f"drift check {drift['verdict']}" if drift is not None
                   else "promoted; no drift check in this report" if route is not None
                   else "no candidate has PROMOTE")
            lines.append(DiffLine(task, current, current, why, None))
    return report, lines


def _label(route: Route | None) -> str:
    """How a route reads in the diff: its model, and its mode unless a plain promotion."""
    if route is None:
        return "primary"
    if route.whole:
        return route.model
    return f"{route.model} ({route.mode}{': ' + ', '.join(route.checks) if route.checks else ''})"


def _best_policy(report: dict[str, Any], task: str,
                 models: set[str]) -> tuple[str, str, str] | None:
    """(the route it reads as, why, the command) of the cascade or partial route the report
    recommends for ``task`` that saves the most, if any (when no candidate has PROMOTE)."""
    found = []
    for model in sorted(models):
        results = policy_results(report, task, model)
        for name, r in sorted((results.get("cascade") or {}).items()):
            if isinstance(r, dict) and r.get("verdict") == CASCADE:
                label = f"{model} (cascade: {', '.join(r.get('checks') or [name])})"
                found.append((r.get("monthly_savings") or 0.0, label,
                              f"CASCADE: escalates {_pct_of(r.get('escalation_rate'))}",
                              f"shadowroute promote {task} --to {model} --cascade {name}"))
        r = results.get("partial")
        if isinstance(r, dict) and r.get("verdict") == PARTIAL:
            found.append((r.get("monthly_savings") or 0.0, f"{model} (partial)",
                          f"PARTIAL: {_pct_of(r.get('routed_share'))} of the traffic",
                          f"shadowroute promote {task} --to {model} --partial"))
    if not found:
        return None
    _, label, why, command = max(found, key=lambda f: f[0])
    return label, why, command


def _pct_of(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "?"


async def check_routes(config: Config, store: Store) -> list[str]:
    """Problems a cron job should alert on: promoted task types whose latest drift check says
    DEMOTE RECOMMENDED, and a route map file that differs from the database."""
    problems = []
    expected = await current_routes(store)
    _, lines = await routes_diff(config, store, expected)
    for line in lines:
        if line.recommended == "primary" and line.command is not None:
            problems.append(f"{line.task}: {line.why} -> run `{line.command}`")
    try:
        on_disk = read_routes(config.routes_file())
    except ConfigError as exc:
        problems.append(f"the route map file is unreadable: {exc}")
    else:
        if on_disk != expected:
            problems.append(f"{config.routes_file()} differs from the database: run "
                            "`shadowroute routes --export` (or review who edited it)")
    return problems
