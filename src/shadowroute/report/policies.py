"""What each policy would save: cascades and per-request rules beside the plain verdicts.

For every task type on its primary, every candidate that plain promotion does not move
(anything but PROMOTE) is tried as a cascade under each policy its task can run
(:func:`~shadowroute.policies.cascade.cascade_policies`) and as a per-request rule
(:mod:`shadowroute.policies.partial`), on the same stored pairs. All of them share the task's
error level with the plain decisions: the family grows by the number of policies tried, so
choosing the best of them after the fact keeps a wrong move within alpha.

The results land on each candidate (``cascades``, ``partial``), in the overview
(``overview["policies"]``, read by ``shadowroute promote --cascade`` / ``--partial``), and in
the task type's "What each policy would save" table. The observed escalation rate of a cascade
that already serves (``routed_daily``) is set against the one its evidence promised.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..config import Config
from ..decision import Policy
from ..policies.cascade import CASCADE, cascade_policies, evaluate_cascade
from ..policies.partial import learn_partial
from ..scoring.checks import Checks
from ..store import Store
from ..store.queries.policies import stored_pairs
from ..store.queries.scores import Keys

__all__ = ["PARTIAL", "PolicyRow", "best_cascade_dict", "best_policy", "policy_rows", "what_if"]

PARTIAL = "PARTIAL"


@dataclass
class PolicyRow:
    """One line of a task type's "What each policy would save" table."""

    policy: str
    """``all on the primary``, ``promote``, ``cascade (CHECKS)`` or ``partial``."""
    model: str | None
    verdict: str | None
    served_by_candidate: float | None
    """Share of requests the candidate's answer serves."""
    pass_rate: float | None
    lower_bound: float | None
    cost_per_1k: float | None
    monthly_savings: float | None
    command: str | None = None
    detail: str = ""
    curve: dict[str, Any] = field(default_factory=dict)
    latency: tuple[float | None, float | None] | None = None
    """p50, p95 of the served calls (a cascade's escalated ones take both calls)."""
    escalation: tuple[float | None, float | None, float | None] | None = None
    """A cascade's escalation rate, its upper bound and the break-even rate."""


async def what_if(store: Store, config: Config, tasks: list[Any],
                  keys: dict[str, Keys]) -> dict[str, dict[str, Any]]:
    """Try the cascades and the per-request rule of every candidate not promoted as a whole
    (see the module docstring); returns ``overview["policies"]``."""
    out: dict[str, dict[str, Any]] = {}
    for t in tasks:
        if t.routed_to or not t.candidates or t.primary_model is None:
            continue
        tried = [c for c in t.candidates if c.verdict != "PROMOTE" and c.n]
        if not tried:
            continue
        policies = cascade_policies(Checks.available(config, t.task))
        checks = {name: Checks.for_task(config, t.task, names)
                  for name, names in policies.items()}
        base = Policy(**t.policy)
        policy = replace(base, family_size=base.family_size * (len(policies) + 1))
        noise = (t.noise_n, t.noise_failures)
        fields = config.task(t.task).route_features
        async with store.connect("read the stored pairs in") as conn:
            for c in tried:
                pairs = await stored_pairs(conn, t.task, keys[t.task], c.model)
                c.cascades = {
                    name: evaluate_cascade(pairs, check, policy, c.model, name, noise=noise,
                                           requests_per_day=t.requests_per_day).to_dict()
                    for name, check in checks.items()}
                c.partial = learn_partial(
                    pairs, base, c.model, fields=fields, noise=noise,
                    family_size=policy.family_size,
                    requests_per_day=t.requests_per_day).to_dict()
                out.setdefault(t.task, {})[c.model] = {"cascade": c.cascades,
                                                        "partial": c.partial}
    return out


def _command(task: str, model: str, flag: str) -> str:
    return f"shadowroute promote {task} --to {model} {flag}"


def policy_rows(t: Any) -> list[PolicyRow]:
    """A task type's "What each policy would save" table: all on the primary, plain
    promotion (its best candidate), the best cascade and the per-request rule of each
    candidate tried."""
    rows = [PolicyRow("all on the primary", None, None, 0.0, 1.0, None,
                      t.primary_cost_per_1k, 0.0)]
    promote = next((c for c in t.candidates if c.verdict == "PROMOTE" and c.recommended),
                   None) or max(t.candidates, key=lambda c: c.pass_rate or 0.0, default=None)
    if promote is not None:
        rows.append(PolicyRow("promote", promote.model, promote.verdict, 1.0, promote.pass_rate,
                              promote.sequential_lower, promote.cost_per_1k,
                              promote.monthly_savings, promote.command))
    for c in t.candidates:
        cascades = getattr(c, "cascades", None) or {}
        best = best_cascade_dict(cascades)
        if best is not None:
            rows.append(PolicyRow(
                f"cascade ({best['policy']})", c.model, best["verdict"],
                None if best["escalation_rate"] is None else 1 - best["escalation_rate"],
                best["pass_rate"], best["lower_bound"], best["cost_per_1k"],
                best["monthly_savings"],
                _command(t.task, c.model, f"--cascade {best['policy']}")
                if best["verdict"] == CASCADE else None,
                curve=_curve(best), latency=(best["latency_p50"], best["latency_p95"]),
                escalation=(best["escalation_rate"], best["escalation_upper"],
                            best["break_even"])))
        partial = getattr(c, "partial", None)
        if partial:
            rows.append(PolicyRow(
                "partial", c.model, partial.get("verdict"), partial.get("routed_share"),
                partial.get("pass_rate"), partial.get("lower_bound"), partial.get("cost_per_1k"),
                partial.get("monthly_savings"),
                _command(t.task, c.model, "--partial")
                if partial.get("verdict") == PARTIAL else None,
                detail=partial.get("reason") or ""))
    return rows


def best_cascade_dict(cascades: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The policy to show for a candidate: its best CASCADE, else the one closest to a
    verdict; ``None`` when no policy escalates anything (each is then plain promotion)."""
    cascades = {name: r for name, r in cascades.items() if r["escalated"]}
    if not cascades:
        return None
    passing = [r for r in cascades.values() if r["verdict"] == CASCADE]
    if passing:
        return max(passing, key=lambda r: r["monthly_savings"] or 0.0)
    return max(cascades.values(), key=lambda r: (r["lower_bound"] or 0.0,
                                                 -(r["escalation_rate"] or 0.0)))


def _curve(r: dict[str, Any]) -> dict[str, Any]:
    """Savings per 1k requests as the escalation rate goes from 0 to 1, with the break-even
    and the policy's own point: the data of the report's curve."""
    prim, cost, rate = r["primary_cost_per_1k"], r["cost_per_1k"], r["escalation_rate"]
    if prim is None or cost is None or rate is None:
        return {}
    cand = cost - rate * prim  # per 1k, the candidate alone
    return {"at_zero": prim - cand, "at_one": -cand, "break_even": r["break_even"],
            "rate": rate, "upper": r["escalation_upper"], "saving": prim - cost}


def best_policy(t: Any) -> tuple[str, Any, dict[str, Any]] | None:
    """The task type's best proven partial move when no candidate can take it whole:
    (``CASCADE`` or ``PARTIAL``, the candidate, its result), the larger monthly saving."""
    if any(c.verdict == "PROMOTE" for c in t.candidates):
        return None
    found = []
    for c in t.candidates:
        cascade = best_cascade_dict(getattr(c, "cascades", None) or {})
        if cascade is not None and cascade["verdict"] == CASCADE:
            found.append((CASCADE, c, cascade))
        partial = getattr(c, "partial", None)
        if partial and partial.get("verdict") == PARTIAL:
            found.append((PARTIAL, c, partial))
    return max(found, key=lambda f: f[2].get("monthly_savings") or 0.0, default=None)
