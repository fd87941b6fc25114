"""Cascade what-if: the candidate answers, a runtime check escalates its failures to the primary.

Proven on the stored pairs, with no new model call: for each stored output of a candidate the
cascade's checks (:class:`~shadowroute.scoring.checks.Checks`, the very ones the Router and the
sidecar run) say whether it would have been escalated. The served answer is then the
candidate's when kept (its stored pass or failure) and the primary's when escalated (a pass:
it *is* the primary's answer). Those served outcomes go through the same decision as a
promotion (:func:`shadowroute.decision.decide`: quality against the bar, non-inferiority
against the primary's noise floor, paired with the replays on the same exchanges, always-valid
bounds), at a level shared with every other policy the report tries (``family_size``), so
picking the best of several policies after the fact stays within alpha.

Money: the candidate is always called and the primary on every escalation, so a request costs
``c + e·p`` against ``p`` on the primary alone (``c``, ``p``: mean known costs; ``e``: the
escalation rate). The cascade saves while ``e < 1 - c/p``, the *break-even* escalation rate;
the report recommends it (CASCADE) only when it passes the bars and its always-valid upper
bound on ``e`` stays below the break-even. Latency: a kept request takes the candidate's
time, an escalated one the candidate's plus the primary's (sequential calls).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..decision import Evidence, Policy, Verdict, decide
from ..decision.bounds import sequential_upper
from ..scoring.checks import Checks
from ..store.queries.policies import StoredPair
from .money import mean_known, monthly_saving

__all__ = ["CASCADE", "SINGLE", "CascadeResult", "cascade_policies", "evaluate_cascade"]

CASCADE = "CASCADE"


@dataclass(frozen=True)
class CascadeResult:
    model: str
    policy: str
    """The policy's name: ``all`` (every check the task can run), or one strict check's."""
    checks: tuple[str, ...]
    verdict: str
    """``CASCADE``; else the decision's verdict on the served answers (``HOLD``, ``NEED MORE
    DATA``, ``CONFIG PROBLEM``), or ``NO SAVING`` when it passes the bars but escalates too
    often to save money."""
    reason: str
    n: int
    """Counted outputs (a scorer applied, or escalated)."""
    escalated: int
    escalations: dict[str, int] = field(default_factory=dict)
    """Check (or ``error``) -> escalations it caused."""
    escalation_rate: float | None = None
    escalation_upper: float | None = None
    """Always-valid upper bound of the escalation rate at the decision's level."""
    pass_rate: float | None = None
    """Of the served answers."""
    lower_bound: float | None = None
    """Always-valid lower bound of the served pass rate."""
    cost_per_1k: float | None = None
    primary_cost_per_1k: float | None = None
    break_even: float | None = None
    """The escalation rate above which the cascade costs more than the primary alone."""
    monthly_savings: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "checks": list(self.checks)}


SINGLE = ("schema", "extract")
"""Checks also tried alone: the strict ones, which may escalate answers that were fine."""


def cascade_policies(available: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The policies the report tries for a task that can run ``available`` checks: all of
    them together (``all``: the cheap universal checks never escalate a good answer), and
    each strict one (:data:`SINGLE`) alone. Few policies on purpose: each one tried widens
    the family the error level is shared with."""
    out = {"all": tuple(available)} if available else {}
    for name in SINGLE:
        if name in available:
            out[name] = (name,)
    return out


def evaluate_cascade(pairs: Sequence[StoredPair], checks: Checks, policy: Policy, model: str,
                     name: str, *, noise: tuple[int, int] = (0, 0),
                     requests_per_day: float | None = None) -> CascadeResult:
    """One cascade policy of one candidate on its stored pairs (see the module docstring).
    ``policy`` carries the family size; ``noise`` is the primary's (replays, failures)."""
    served: list[int | None] = []
    reasons: Counter[str] = Counter()
    latency: list[float] = []
    replay_cells = Counter[str]()
    for p in pairs:
        why = checks.failed(p.output, p.finish_reason, p.request, error=p.error)
        if why is not None:
            reasons[why] += 1
            ok: int | None = 1
            if p.latency_ms is not None and p.primary_latency_ms is not None:
                latency.append(p.latency_ms + p.primary_latency_ms)
        else:
            ok = p.ok
            if p.latency_ms is not None:
                latency.append(p.latency_ms)
        served.append(ok)
        if ok is not None and p.replay_ok is not None:
            c_fail, r_fail = ok == 0, p.replay_ok == 0
            replay_cells["pairs"] += 1
            replay_cells["both"] += c_fail and r_fail
            replay_cells["candidate"] += c_fail and not r_fail
            replay_cells["replay"] += r_fail and not c_fail
    n = sum(ok is not None for ok in served)
    passed = sum(ok == 1 for ok in served)
    escalated = sum(reasons.values())
    noise_n, noise_failures = noise
    evidence = Evidence(
        n=n, passed=passed, noise_n=noise_n, noise_passed=noise_n - noise_failures,
        unscored=len(served) - n,
        pairs=replay_cells["pairs"] if noise_n else None,
        pairs_both_failed=replay_cells["both"], pairs_candidate_failed=replay_cells["candidate"],
        pairs_replay_failed=replay_cells["replay"])
    decision = decide(evidence, policy, project=False)
    total = len(served)
    rate = escalated / total if total else None
    upper = sequential_upper(escalated, total, decision.level or policy.level) if total else None
    cand = mean_known(p.cost_usd for p in pairs)
    prim = mean_known(p.primary_cost_usd for p in pairs)
    per_request = None if cand is None or prim is None or rate is None else cand + rate * prim
    break_even = 1.0 - cand / prim if cand is not None and prim else None
    savings = monthly_saving(prim, per_request, requests_per_day)
    verdict, reason = str(decision.verdict), decision.reason
    if decision.verdict is Verdict.PROMOTE:
        if break_even is None or upper is None:
            verdict, reason = "NO SAVING", "passes the bars, but the costs are unknown"
        elif upper >= break_even:
            verdict = "NO SAVING"
            reason = (f"passes the bars, but escalates {rate:.1%} (upper bound {upper:.1%}) "
                      f"against a break-even of {break_even:.1%}: it would not save money")
        else:
            verdict = CASCADE
    p50, p95 = (float(np.percentile(latency, q)) for q in (50, 95)) if latency else (None, None)
    return CascadeResult(
        model=model, policy=name, checks=checks.names, verdict=verdict, reason=reason, n=n,
        escalated=escalated, escalations=dict(reasons.most_common()), escalation_rate=rate,
        escalation_upper=upper, pass_rate=passed / n if n else None,
        lower_bound=decision.sequential_lower,
        cost_per_1k=None if per_request is None else per_request * 1000,
        primary_cost_per_1k=None if prim is None else prim * 1000, break_even=break_even,
        monthly_savings=savings, latency_p50=p50, latency_p95=p95)
