"""Gather the stored evidence and decide: the :class:`Report` that the HTML and JSON render.

All counting happens in SQL (:mod:`shadowroute.store.report_queries`); this module combines the
aggregates per task type x candidate, calls :func:`shadowroute.decision.decide`, and works out
the money. Monthly figures are "at current volume": production requests per day (the
``traffic_daily`` counts, sampled or not) x 30 x the mean cost of one call.
"""

from __future__ import annotations

import shlex
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..config import Config
from ..decision import Evidence, Policy, Verdict, decide
from ..records import REPLAY_MODEL
from ..scoring import plan_for
from ..store import Store
from ..store import report_queries as q
from ..store.scores import score_summary
from .examples import Example, build_example

__all__ = ["CandidateResult", "Report", "ScorerStat", "TaskResult", "build_report"]

DAYS_PER_MONTH = 30
QUANTILES = (0.5, 0.95)


@dataclass
class ScorerStat:
    name: str
    n: int
    passed: int
    failed: int
    ignored: int
    mean: float | None
    better: int = 0
    same: int = 0
    worse: int = 0


@dataclass
class CandidateResult:
    model: str
    verdict: str
    reason: str
    outputs: int
    """Stored outputs in the window (errors included)."""
    errors: int
    unscored: int
    """Outputs still lacking a current score (run ``shadowroute score``)."""
    ignored: int
    """Scored outputs on which no scorer applied."""
    n: int
    passed: int
    pass_rate: float | None
    lower_bound: float | None
    sequential_lower: float | None
    noise_floor: float | None
    excess_failure: float | None
    excess_upper: float | None
    samples_needed: int | None
    days_needed: float | None
    samples_per_day: float | None
    scorers: list[ScorerStat]
    similarity_histogram: list[int] | None
    cost_per_1k: float | None
    latency_p50: float | None
    latency_p95: float | None
    monthly_cost: float | None
    monthly_savings: float | None
    """Primary minus candidate at current volume."""
    monthly_savings_net: float | None
    """``monthly_savings`` less what shadowing and judging the task costs now."""
    shadow_spend: float
    command: str | None
    recommended: bool = False
    examples: list[Example] = field(default_factory=list)


@dataclass
class TaskResult:
    task: str
    policy: dict[str, Any]
    primary_models: list[str]
    exchanges: int
    requests: int
    volume_source: str
    """``traffic`` (production counts, sampled or not) or ``stored exchanges`` (no counts)."""
    days: float
    requests_per_day: float
    share_of_spend: float | None
    primary_cost_per_1k: float | None
    primary_latency_p50: float | None
    primary_latency_p95: float | None
    monthly_primary_cost: float | None
    shadow_spend: float
    judge_spend: float
    monthly_evaluation_cost: float
    noise_n: int
    noise_failures: int
    primary_schema_checked: int
    primary_schema_invalid: int
    scorers: list[str]
    candidates: list[CandidateResult]


@dataclass
class Report:
    id: str
    generated_at: datetime
    since: datetime | None
    database: str
    config_source: str
    decision: dict[str, Any]
    overview: dict[str, Any]
    tasks: list[TaskResult]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _days(first: datetime | None, last: datetime | None) -> float:
    if first is None or last is None:
        return 1.0
    return max(1.0, (last - first).total_seconds() / 86400)


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


async def build_report(
    config: Config, store: Store, *, since: datetime | None = None, examples: int = 3,
    now: datetime | None = None,
) -> Report:
    """Decide every task type x candidate with data since ``since`` (all data when ``None``)."""
    now = now or datetime.now(UTC)
    async with store.engine.connect() as conn:
        primaries = await q.primary_totals(conn, since)
        outputs = await q.output_totals(conn, since)
        tasks = sorted(set(primaries) | {t for t, c in config.tasks.items() if c.candidates})
        plans = {t: plan_for(config, t) for t in tasks}
        keys = {t: plans[t].keys() for t in tasks if any(k[0] == t for k in outputs)}
        counts = await q.outcome_counts(conn, keys, since)
        traffic = await q.traffic_totals(conn, since)
        latency = await q.latency_percentiles(conn, since, QUANTILES)
        summaries = await score_summary(conn, keys, since)
        similarity = await q.score_histograms(conn, keys, "similarity", since)
        schema = await q.primary_schema_checks(conn, keys, since)
        judging = await q.scoring_spend(conn, since)
        worst: dict[str, list[tuple[str, str]]] = {  # replays excluded
            t: await q.worst_outputs(conn, t, k, since, examples) for t, k in keys.items()
        }
        rows = await q.example_rows(conn, [oid for pairs in worst.values() for _, oid in pairs], keys)

    scorer_stats: dict[tuple[str, str], list[ScorerStat]] = {}
    for s in summaries:
        scorer_stats.setdefault((s["task"], s["model"]), []).append(ScorerStat(
            s["scorer"], s["n"], s["passed"], s["failed"], s["ignored"], s["mean"],
            s["better"], s["same"], s["worse"]))

    results: list[TaskResult] = []
    for task in tasks:
        prim = primaries.get(task, {})
        seen = traffic.get(task)
        if seen and seen["days"]:
            days, requests, volume_source = float(seen["days"]), seen["requests"], "traffic"
        else:  # no traffic counts (e.g. imported data): the stored exchanges are all we know
            days = _days(prim.get("first"), prim.get("last"))
            requests, volume_source = prim.get("exchanges", 0), "stored exchanges"
        per_day = requests / days
        models = sorted({m for (t, m) in outputs if t == task and m != REPLAY_MODEL}
                        | set(config.task(task).candidates))
        shadow = sum(v["spend"] for (t, _), v in outputs.items() if t == task)
        judge = judging.get(task, 0.0)
        noise = counts.get((task, REPLAY_MODEL), {"counted": 0, "passed": 0})
        checks = schema.get(task, {"checked": 0, "invalid": 0})
        policy = Policy.for_task(config, task)
        primary_cost = prim.get("mean_cost")
        monthly_primary = _times(primary_cost, per_day * DAYS_PER_MONTH)
        evaluation = (shadow + judge) / days * DAYS_PER_MONTH
        result = TaskResult(
            task=task, policy=asdict(policy), primary_models=sorted(prim.get("models", {})),
            exchanges=prim.get("exchanges", 0), requests=requests, volume_source=volume_source,
            days=days,
            requests_per_day=per_day, share_of_spend=None,
            primary_cost_per_1k=_times(primary_cost, 1000),
            primary_latency_p50=latency.get((task, None), {}).get(0.5),
            primary_latency_p95=latency.get((task, None), {}).get(0.95),
            monthly_primary_cost=monthly_primary, shadow_spend=shadow, judge_spend=judge,
            monthly_evaluation_cost=evaluation, noise_n=noise["counted"],
            noise_failures=noise["counted"] - noise["passed"],
            primary_schema_checked=checks["checked"], primary_schema_invalid=checks["invalid"],
            scorers=[name for name, _ in keys.get(task, plans[task].keys())], candidates=[],
        )
        for model in models:
            totals = outputs.get((task, model), {"outputs": 0, "errors": 0, "mean_cost": None,
                                                 "spend": 0.0, "first": None, "last": None})
            c = counts.get((task, model), {"complete": 0, "counted": 0, "passed": 0})
            rate = c["counted"] / _days(totals["first"], totals["last"]) if c["counted"] else None
            decision = decide(Evidence(
                n=c["counted"], passed=c["passed"], noise_n=noise["counted"],
                noise_passed=noise["passed"], primary_checked=checks["checked"],
                primary_invalid=checks["invalid"], samples_per_day=rate), policy)
            inferiority = next((x for x in decision.criteria if x.name == "non-inferiority"), None)
            monthly = _times(totals["mean_cost"], per_day * DAYS_PER_MONTH)
            savings = (None if monthly is None or monthly_primary is None
                       else monthly_primary - monthly)
            result.candidates.append(CandidateResult(
                model=model, verdict=str(decision.verdict), reason=decision.reason,
                outputs=totals["outputs"], errors=totals["errors"],
                unscored=totals["outputs"] - c["complete"], ignored=c["complete"] - c["counted"],
                n=c["counted"], passed=c["passed"], pass_rate=decision.pass_rate,
                lower_bound=decision.lower_bound, sequential_lower=decision.sequential_lower,
                noise_floor=decision.noise_floor,
                excess_failure=inferiority.estimate if inferiority else None,
                excess_upper=inferiority.bound if inferiority else None,
                samples_needed=decision.samples_needed, days_needed=decision.days_needed,
                samples_per_day=rate, scorers=scorer_stats.get((task, model), []),
                similarity_histogram=similarity.get((task, model)),
                cost_per_1k=_times(totals["mean_cost"], 1000),
                latency_p50=latency.get((task, model), {}).get(0.5),
                latency_p95=latency.get((task, model), {}).get(0.95),
                monthly_cost=monthly, monthly_savings=savings,
                monthly_savings_net=None if savings is None else savings - evaluation,
                shadow_spend=totals["spend"],
                command=(f"shadowroute promote {shlex.quote(task)} --to {shlex.quote(model)}"
                         if decision.verdict is Verdict.PROMOTE else None),
                examples=[build_example(rows[oid]) for m, oid in worst.get(task, [])
                          if m == model and oid in rows],
            ))
        promotable = [c for c in result.candidates if c.command]
        if promotable:  # the largest known saving; unknown savings rank last
            max(promotable, key=lambda c: (c.monthly_savings is not None,
                                           c.monthly_savings or 0.0)).recommended = True
        results.append(result)
    return Report(
        id=uuid.uuid4().hex, generated_at=now, since=since,
        database=store.engine.url.render_as_string(hide_password=True),
        config_source=config.source, decision=config.decision.model_dump(),
        overview=_overview(results), tasks=results,
    )


def _overview(tasks: list[TaskResult]) -> dict[str, Any]:
    primary = sum(t.monthly_primary_cost or 0.0 for t in tasks)
    evaluation = sum(t.monthly_evaluation_cost for t in tasks)
    promotions, after = [], 0.0
    verdicts: dict[str, int] = {str(v): 0 for v in Verdict}
    for t in tasks:
        t.share_of_spend = (t.monthly_primary_cost or 0.0) / primary if primary else None
        chosen = next((c for c in t.candidates if c.recommended), None)
        for c in t.candidates:
            verdicts[c.verdict] += 1
        if chosen is not None:
            promotions.append({"task": t.task, "model": chosen.model, "command": chosen.command,
                               "monthly_savings": chosen.monthly_savings,
                               "monthly_savings_net": chosen.monthly_savings_net})
        if chosen is not None and chosen.monthly_savings is not None:
            after += chosen.monthly_cost or 0.0  # both costs known
        else:
            after += t.monthly_primary_cost or 0.0
    return {
        "monthly_primary": primary, "monthly_evaluation": evaluation,
        "monthly_now": primary + evaluation, "monthly_with_promotions": after + evaluation,
        "monthly_savings": primary - after, "verdicts": verdicts, "promotions": promotions,
    }

