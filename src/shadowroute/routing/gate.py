"""The gate of ``shadowroute promote --cascade POLICY`` / ``--partial``: the latest report's
verdict on that policy, read from its overview.

The report evaluates, per task type and candidate, each cascade policy (a set of checks: one
check alone, or ``all``) and the partial route its learned rule makes, and writes the results
into its overview::

    overview["policies"][task][model] = {
        "cascade": {"schema": {"verdict": "CASCADE", "checks": ["schema"],
                               "escalation_rate": 0.08, "escalation_upper": 0.12,
                               "break_even": 0.93, "monthly_savings": 410.0, "n": 900,
                               "pass_rate": 0.97, "lower_bound": 0.95}, ...},
        "partial": {"verdict": "PARTIAL", "rule": {...}, "routed_share": 0.71,
                    "pass_rate": 0.989, "lower_bound": 0.976, "monthly_savings": 290.0,
                    "held_out": 400}}

A route is written only on CASCADE / PARTIAL (``--force --reason`` writes it anyway, recorded
as forced); the entry carries its checks or its rule and its promise (escalation rate and its
bound and break-even; routed share), which the next reports hold the observed outcomes
against.
"""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..errors import PromotionRefused
from ..store import Store
from ..store.queries.routes import latest_report
from .routemap import MODE_CASCADE, MODE_PARTIAL
from .rules import PartialRule

__all__ = ["CASCADE", "PARTIAL", "policy_results", "policy_route"]

CASCADE = "CASCADE"
PARTIAL = "PARTIAL"
_CASCADE_PROMISE = ("escalation_rate", "escalation_upper", "break_even")


def policy_results(report: dict[str, Any] | None, task: str, model: str) -> dict[str, Any]:
    """``overview["policies"][task][model]`` of ``report`` (empty when it has none)."""
    overview = (report or {}).get("overview") or {}
    found = ((overview.get("policies") or {}).get(task) or {}).get(model)
    return found if isinstance(found, dict) else {}


def _source(report: dict[str, Any] | None) -> str:
    if report is None:
        return "no report yet"
    return f"the latest report ({report['id'][:12]}, {report['created_at']:%Y-%m-%d %H:%M} UTC)"


def _verdicts(cascades: dict[str, Any]) -> str:
    return ", ".join(f"{name} {r.get('verdict') if isinstance(r, dict) else '?'}"
                     for name, r in sorted(cascades.items())) or "none evaluated"


async def policy_route(
    config: Config, store: Store, task: str, model: str, cascade: str | None, force: bool,
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(how the route serves: ``mode`` and ``checks`` or ``rule``; its evidence; whether the
    report's verdict allows it) for a cascade route of policy ``cascade``, or a partial route
    when ``cascade`` is ``None``. Raises :class:`PromotionRefused` (one line, naming the
    policies the report has and their verdicts) unless the verdict allows it or ``force``."""
    report = await latest_report(store)
    results = policy_results(report, task, model)
    if cascade is not None:
        return _cascade(config, report, results, task, model, cascade, force)
    return _partial(report, results, task, model, force)


def _cascade(config: Config, report: dict[str, Any] | None, results: dict[str, Any],
             task: str, model: str, policy: str, force: bool,
             ) -> tuple[dict[str, Any], dict[str, Any], bool]:
    from ..scoring.checks import CHECKS, Checks  # only a cascade needs them

    cascades = results.get("cascade") if isinstance(results.get("cascade"), dict) else {}
    result = cascades.get(policy)
    result = result if isinstance(result, dict) else None
    verdict = result.get("verdict") if result else None
    passed = verdict == CASCADE
    if not passed and not force:
        if result is None:
            what = (f"has no cascade policy {policy!r} for {task} -> {model} (policies: "
                    f"{_verdicts(cascades)})" if report is not None else
                    f"has evaluated no cascade of {task} -> {model}: run `shadowroute score` "
                    "and `shadowroute report` first")
        else:
            what = (f"says {verdict} for the {policy!r} cascade of {task} -> {model} "
                    f"(policies: {_verdicts(cascades)})")
        raise PromotionRefused(f"{_source(report)} {what}; apply one that says CASCADE, or "
                               "this one anyway with --force --reason '...'")
    checks = result.get("checks") if result else None
    if not checks:  # forced, without the report's word: the policy names its checks
        checks = (list(Checks.available(config, task)) if policy == "all" else
                  [policy] if policy in CHECKS else None)
        if checks is None:
            raise PromotionRefused(
                f"unknown cascade policy {policy!r}: name a check ({', '.join(CHECKS)}) or "
                f"'all' (the report's policies for {task} -> {model}: {_verdicts(cascades)})")
    try:
        Checks.for_task(config, task, checks)
    except ValueError as exc:
        raise PromotionRefused(f"the {policy!r} cascade of {task} cannot run: {exc}") from exc
    promise = {k: result.get(k) for k in _CASCADE_PROMISE} if result else {}
    evidence = _evidence(report, result, verdict) | {"policy": policy, "promise": promise}
    return {"mode": MODE_CASCADE, "checks": list(checks)}, evidence, passed


def _partial(report: dict[str, Any] | None, results: dict[str, Any], task: str, model: str,
             force: bool) -> tuple[dict[str, Any], dict[str, Any], bool]:
    result = results.get("partial") if isinstance(results.get("partial"), dict) else None
    verdict = result.get("verdict") if result else None
    passed = verdict == PARTIAL
    if not passed and not force:
        what = (f"says {verdict} for a partial route of {task} -> {model}" if result else
                f"has no partial route for {task} -> {model}" if report is not None else
                f"has evaluated no partial route of {task} -> {model}: run `shadowroute "
                "score` and `shadowroute report` first")
        raise PromotionRefused(f"{_source(report)} {what}; apply it anyway with --force "
                               "--reason '...'")
    if not result or not isinstance(result.get("rule"), dict):
        # --force cannot help: there is no rule to apply
        raise PromotionRefused(f"{_source(report)} has learned no rule for {task} -> {model}: "
                               "a partial route needs one (run `shadowroute report`)")
    try:
        rule = PartialRule.from_dict(result["rule"])
    except ValueError as exc:
        raise PromotionRefused(f"the report's rule for {task} -> {model} is unusable: "
                               f"{exc}") from exc
    evidence = _evidence(report, result, verdict) | {
        "rule_text": rule.describe(), "held_out": result.get("held_out"),
        "promise": {"routed_share": result.get("routed_share")}}
    return {"mode": MODE_PARTIAL, "rule": rule.to_dict()}, evidence, passed


def _evidence(report: dict[str, Any] | None, result: dict[str, Any] | None,
              verdict: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if report is not None:
        out = {"report": report["id"], "decided_at": report["created_at"].isoformat()}
    if result:
        out |= {"verdict": verdict, "n": result.get("n", result.get("held_out")),
                "pass_rate": result.get("pass_rate"), "lower_bound": result.get("lower_bound"),
                "monthly_savings_usd": result.get("monthly_savings")}
    return out
