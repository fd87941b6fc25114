"""The report's promoted section: each task type the route map sends to a promoted model, with
the drift check of its reverse-shadow pairs since the promotion (see
:mod:`shadowroute.decision.drift`), and, for a cascade or a partial route, what it served
against what its evidence promised (``routed_daily``).

Escalation creep: a cascade was promoted on an escalation rate whose always-valid upper bound
stayed below the break-even. When the escalation rate the Router and the sidecar observe is
shown above that promised bound (or above the break-even) by its own always-valid lower bound,
the cascade no longer delivers what it was promoted on, and the report recommends the
demotion, whatever the drift check of the answers it kept says."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..config import Config
from ..decision import DriftVerdict, Evidence, Policy, check_drift
from ..decision.bounds import sequential_lower
from ..records import NOISE_FLOOR_MODEL, ROUTE_REVERSE
from ..routing.routemap import MODE_CASCADE, MODE_PARTIAL, Route
from ..store.figures import Worst
from ..store.queries import Connection
from ..store.queries import report as q
from ..store.queries.evidence import Counts, nightly_counts
from ..store.queries.routed import routed_counts
from ..store.queries.scores import Keys
from .evidence import drift_nights
from .examples import Example, build_example

__all__ = ["PromotedResult", "promoted_results"]


@dataclass
class PromotedResult:
    task: str
    model: str
    primary: str
    since: datetime
    by: str
    forced: bool
    verdict: str
    """A :class:`~shadowroute.decision.DriftVerdict`."""
    reason: str
    n: int
    """Scored reverse-shadow pairs since the promotion (stored ones: the detector's nights)."""
    passed: int
    pass_rate: float | None
    recent_pass_rate: float | None
    """Since the drop began when the detector alarmed, over the last 14 nights otherwise."""
    reference: float | None
    """The lowest pass rate the promotion allowed: the detector watches for a drop below it."""
    alarm_night: int | None
    """The night after the promotion (1 = the first) the detector alarmed; ``None``: no alarm."""
    noise_floor: float | None
    noise_n: int
    command: str | None
    """``shadowroute demote ...`` when the verdict is DEMOTE RECOMMENDED."""
    monthly_cost: float | None = None
    """The task type's volume at the promoted model's mean cost (filled in by the report)."""
    monthly_savings: float | None = None
    examples: list[Example] = field(default_factory=list)
    mode: str = "promote"
    """``promote``, ``cascade`` or ``partial`` (:mod:`shadowroute.routing.routemap`)."""
    served: dict[str, int] = field(default_factory=dict)
    """Outcome -> calls the route served since the promotion (``routed_daily``)."""
    observed: float | None = None
    """Cascade: the share of its calls escalated; partial: the share the candidate served."""
    observed_lower: float | None = None
    """Cascade: the always-valid lower bound of the escalation rate."""
    promised: float | None = None
    """Cascade: the escalation rate's upper bound at promotion; partial: the routed share."""
    break_even: float | None = None


async def promoted_results(
    conn: Connection, config: Config, routes: Mapping[str, Route],
    keys: Mapping[str, Keys], since: datetime | None, noise: Mapping[str, tuple[int, int]],
    examples: int, *, family: int = 1, baselines: Counts | None = None,
) -> list[PromotedResult]:
    """The drift check of every promoted task type. ``noise`` maps a task type to the
    (replays, failures) of its shadow pairs, pooled with the reverse pairs' own replays: both
    measure how often the same primary disagrees with itself. The check is change detection
    over the reverse pairs' nights since the promotion (a detector that restarts, so a drop is
    caught as fast a year after the promotion as a week after it), against the candidate's
    own shadow record before it (``baselines``: cumulative counts)."""
    out = []
    for task, route in sorted(routes.items()):
        if not route.promoted:
            continue
        task_keys = keys.get(task)
        start = route.since if since is None else max(since, route.since)
        counts: dict[tuple[str, str], dict[str, int]] = {}
        worst: list[Worst] = []
        if task_keys:
            counts, worst = await q.outcomes(conn, {task: task_keys}, start, examples,
                                             route=ROUTE_REVERSE)
        replays = counts.get((task, NOISE_FLOOR_MODEL), {"counted": 0, "passed": 0})
        shadow_n, shadow_failures = noise.get(task, (0, 0))
        noise_n = shadow_n + replays["counted"]
        noise_failures = shadow_failures + replays["counted"] - replays["passed"]
        nights = drift_nights(await nightly_counts(
            conn, task, task_keys or [], route.model, since=route.since, route=ROUTE_REVERSE),
            route.since)
        before = (baselines or {}).get((task, route.model), {})
        baseline = ((before["counted"], before["passed"] - before.get("flipped_passed", 0))
                    if before.get("counted") else None)
        check = check_drift(
            Evidence(n=0, passed=0, noise_n=noise_n, noise_passed=noise_n - noise_failures),
            Policy.for_task(config, task, family_size=family), nights=nights,
            baseline=baseline,
        )
        served = (await routed_counts(conn, route.since)).get((task, route.model), {}) \
            if route.mode in (MODE_CASCADE, MODE_PARTIAL) else {}
        creep = _creep(route, served, Policy.for_task(config, task, family_size=family).level)
        if creep["reason"] and check.verdict is not DriftVerdict.DEMOTE:
            check = replace(check, verdict=DriftVerdict.DEMOTE,
                            reason=f"{creep['reason']}; the answers it kept: {check.reason}")
        creep.pop("reason")
        drift_n = sum(n for n, _ in nights)
        drift_passed = sum(passed for _, passed in nights)
        demote = check.verdict is DriftVerdict.DEMOTE
        rows = await q.example_rows(conn, [w.output_id for w in worst if w.model == route.model],
                                    {task: task_keys or []})
        out.append(PromotedResult(
            task=task, model=route.model, primary=route.primary, since=route.since,
            by=route.by, forced=route.forced, verdict=str(check.verdict), reason=check.reason,
            n=drift_n, passed=drift_passed, pass_rate=check.pass_rate,
            recent_pass_rate=check.recent_pass_rate, reference=check.reference,
            alarm_night=check.alarm_night, noise_floor=check.noise_floor, noise_n=noise_n,
            command=f"shadowroute demote {shlex.quote(task)}" if demote else None,
            examples=[build_example(rows[w.output_id]) for w in worst
                      if w.model == route.model and w.output_id in rows],  # worst first
            mode=route.mode, served=served, **creep,
        ))
    return out


def _creep(route: Route, served: Mapping[str, int], level: float) -> dict[str, Any]:
    """What a cascade or partial route served against its promise (see the module
    docstring); ``reason`` names the escalation creep, ``None`` when there is none."""
    promise = (route.evidence or {}).get("promise") or {}
    out: dict[str, Any] = {"observed": None, "observed_lower": None, "promised": None,
                           "break_even": None, "reason": None}
    if route.mode == MODE_PARTIAL:
        kept, rest = served.get("kept", 0), served.get("primary", 0)
        out["observed"] = kept / (kept + rest) if kept + rest else None
        out["promised"] = promise.get("routed_share")
        return out
    if route.mode != MODE_CASCADE:
        return out
    escalated = sum(n for outcome, n in served.items() if outcome.startswith("escalated:"))
    n = escalated + served.get("kept", 0)
    promised, even = promise.get("escalation_upper"), promise.get("break_even")
    out.update(promised=promised, break_even=even)
    if not n:
        return out
    lower = sequential_lower(escalated, n, level)
    out.update(observed=escalated / n, observed_lower=lower)
    limits = [(v, name) for v, name in ((promised, "the promised"), (even, "the break-even"))
              if isinstance(v, int | float)]
    if limits:
        limit, name = min(limits)
        if lower > limit:
            out["reason"] = (f"escalation creep: {escalated / n:.1%} of {n:,} calls escalated "
                             f"(always-valid lower bound {lower:.1%}), above {name} "
                             f"{limit:.1%}")
    return out


def as_decision_row(p: PromotedResult) -> dict[str, Any]:
    """The ``decisions`` row (kind ``drift``) of a promoted task type."""
    return {"task_type": p.task, "model": p.model, "kind": "drift", "verdict": p.verdict,
            "reason": p.reason, "primary_model": p.primary, "n": p.n, "passed": p.passed,
            "pass_rate": p.pass_rate, "lower_bound": p.reference,
            "noise_floor": p.noise_floor, "judge_version": None,
            "monthly_savings": p.monthly_savings}
