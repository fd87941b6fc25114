"""Gather the stored evidence and decide: the :class:`Report` that the HTML and JSON render.

All counting happens in SQL (:mod:`shadowroute.store.queries.report`); this module combines the
aggregates per task type x candidate, calls :func:`shadowroute.decision.decide`, and works out
the money. Monthly figures are "at current volume": production requests per day (the
``traffic_daily`` counts, sampled or not) x 30 x the mean cost of one call. Task types the
route map sends to a promoted model get a drift check (:mod:`.promoted`). The judge's latest
calibration against human verdicts (``shadowroute calibrate-judge``) comes along when one is
stored for the configured judge model; each task type's scorers come with the scorer that
decided its verdicts and their latest calibration against labels (``shadowroute calibrate``),
and a verdict resting on a scorer that agrees poorly with labels is flagged (:mod:`.validity`).
"""

from __future__ import annotations

import math
import shlex
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..config import Config
from ..decision import Policy, Verdict, decide, recommended_replay_share
from ..decision.allocation import pass_chance
from ..records import NOISE_FLOOR_MODEL
from ..routing.routemap import Route, routes_from_changes
from ..scoring import Plans
from ..scoring.validity import MIN_KAPPA
from ..store import Store
from ..store.queries import report as q
from ..store.queries.calibrations import latest_calibration, latest_scorer_calibrations
from ..store.queries.days import window_figures
from ..store.queries.evidence import TASK_ROW, add_counts, archived_counts
from ..store.queries.history import decision_history
from ..store.queries.plans import live_counts
from ..store.queries.retirements import retired_models
from ..store.queries.routes import route_changes
from .evidence import candidate_evidence, family_size, noise_of
from .examples import Example, build_example
from .policies import what_if
from .promoted import PromotedResult, promoted_results
from .rates import shadow_rates
from .reasons import TaskAction, criteria_fields, money_overview, summarize
from .trend import Trend
from .validity import ScorerValidity, apply_validity, flagged_verdicts

__all__ = [
    "CandidateResult", "PromotedResult", "Report", "ScorerStat", "ScorerValidity", "TaskResult",
    "build_report",
]

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
    costed: int = 0
    """Successful outputs whose cost is known (usage reported): the cost figures rest on them."""
    days_needed_80: float | None = None
    """80% of the projected paths reach a verdict by then (``days_needed`` is the median)."""
    level: float | None = None
    """The decision's own error level: ``alpha / K`` (see the report's method section)."""
    method: str = ""
    flip_rate: float | None = None
    """Share of the judge's verdicts on this candidate that flipped with the order."""
    not_carried: dict[str, int] = field(default_factory=dict)
    """Setting -> outputs whose request lacked it: this candidate's API could not be given it."""
    decided_by: str | None = None
    """The scorer that failed the most of its failing outputs (``None``: no failure of a
    scorer's own; see :mod:`.validity`)."""
    failures_by_scorer: dict[str, int] = field(default_factory=dict)
    """Scorer -> failing outputs it failed itself."""
    low_kappa: bool = False
    """The verdict rests on a scorer whose kappa against labels is below 0.4."""
    low_kappa_scorers: list[str] = field(default_factory=list)
    upper_bound: float | None = None
    """The pass rate's upper bound (below the bar: a HOLD on quality)."""
    excess_lower: float | None = None
    """The excess failure rate's lower bound (above the margin: a HOLD on non-inferiority)."""
    refuted: list[str] = field(default_factory=list)
    """The criteria shown to fail: why a HOLD holds (:mod:`.reasons`)."""
    promote_chance: float | None = None
    """NEED MORE DATA: the share of projected paths whose verdict is PROMOTE."""
    pass_chance: float | None = None
    """NEED MORE DATA with ``min_samples`` outputs: the posterior chance of passing both bars
    (:func:`~shadowroute.decision.allocation.pass_chance`)."""
    shadow_rate: float | None = None
    """Share of the task's sampled calls it is shadowed on from now (``None``: all of them)."""
    shadow_why: str | None = None
    """Why not all: ``settled``, ``allocated`` or ``retired`` (:mod:`.rates`)."""
    cascades: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Cascade policy -> its what-if (:mod:`.policies`; empty when not tried)."""
    partial: dict[str, Any] = field(default_factory=dict)
    """The per-request rule's what-if (:mod:`.policies`; empty when not tried)."""
    why: str = ""
    """The verdict's reason in a few words (the terminal table's)."""


@dataclass
class TaskResult:
    task: str
    policy: dict[str, Any]
    primary_models: list[str]
    primary_model: str | None
    """The primary of most of the task type's exchanges (what a promotion replaces)."""
    judge_version: str | None
    """The judge scorer's current version, when the task type uses the judge."""
    routed_to: str | None
    """The promoted model serving the task type now (route map), ``None`` on the primary."""
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
    primary_costed: int = 0
    """Exchanges whose primary cost is known; the rest (no usage reported) are left out of the
    primary's mean cost, not counted as free."""
    judge_calls: int = 0
    """Judge calls that cost something, in the window."""
    judge_skipped: int = 0
    """Judge calls not made: a cheaper scorer decided the pair (``[judge] when``)."""
    not_shadowable: int = 0
    """Sampled calls not mirrored: they depend on state their provider keeps."""
    primary_not_carried: dict[str, int] = field(default_factory=dict)
    """Setting -> exchanges whose primary request had it and the canonical form could not."""
    validity: list[ScorerValidity] = field(default_factory=list)
    """Each current scorer: the failures it decided and its agreement with labels."""
    sources: dict[str, int] = field(default_factory=dict)
    """Who captured the task type's exchanges in the window: source -> exchanges (see
    ``shadowroute prune --source``)."""
    replay_share: float = 0.0
    """Share of sampled exchanges the pipeline replays on the primary from now on (the
    overview's ``replay_shares``, read by running pipelines): ``[decision]
    evaluation_replay_rate`` while the noise floor is the less certain side of an open
    non-inferiority test, the task's ``noise_floor_rate`` otherwise."""
    base_replay_share: float = 0.0
    decided_by: str | None = None
    """The scorer with the most failing outputs over the task type's candidates."""
    validity_warning: str | None = None
    """Set when a verdict of the task type rests on a scorer with kappa below 0.4."""


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
    promoted: list[PromotedResult] = field(default_factory=list)
    judge_calibration: dict[str, Any] | None = None
    """The latest ``shadowroute calibrate-judge`` run of the configured judge model (see
    :func:`_describe_calibration`); ``None`` when there is none."""
    actions: list[TaskAction] = field(default_factory=list)
    """Per task type: the action, why, and what would change it (:mod:`.reasons`)."""
    action_counts: dict[str, int] = field(default_factory=dict)
    money: dict[str, Any] = field(default_factory=dict)
    """Gross saving, evaluation spend, net, and where evaluation spend goes per task type."""
    trends: list[Trend] = field(default_factory=list)
    """Per task type x candidate, night by night (:mod:`.trend`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _days(first: datetime | None, last: datetime | None) -> float:
    if first is None or last is None:
        return 1.0
    return max(1.0, (last - first).total_seconds() / 86400)


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


@dataclass
class _Aggregates:
    """What the queries returned, keyed as in :mod:`shadowroute.store.queries.report`."""

    primaries: dict[str, dict[str, Any]]
    outputs: dict[tuple[str, str], dict[str, Any]]
    counts: dict[tuple[str, str], dict[str, int]]
    traffic: dict[str, dict[str, int]]
    latency: dict[tuple[str, str | None], dict[float, float]]
    scorers: dict[tuple[str, str], list[ScorerStat]]
    similarity: dict[tuple[str, str], list[int]]
    schema: dict[str, dict[str, int]]
    judging: dict[str, dict[str, Any]]
    examples: dict[tuple[str, str], list[Example]]
    not_carried: dict[tuple[str, str | None], dict[str, int]] = field(default_factory=dict)
    failures: dict[tuple[str, str], dict[str, dict[str, int]]] = field(default_factory=dict)
    calibrations: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    evidence: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    """Cumulative decision counts, pruned exchanges included (:mod:`.evidence`)."""
    models: dict[str, list[str]] = field(default_factory=dict)
    """Each task type's candidates decided on."""
    family_size: int = 1
    sources: dict[str, dict[str, int]] = field(default_factory=dict)


async def build_report(
    config: Config, store: Store, *, since: datetime | None = None, examples: int = 3,
    now: datetime | None = None,
) -> Report:
    """Decide every task type x candidate with data since ``since`` (all data when ``None``)."""
    now = now or datetime.now(UTC)
    routes = routes_from_changes(await route_changes(store))
    calibration = None
    if config.judge is not None:
        row = await latest_calibration(store, config.judge.model)
        if row is not None:
            calibration = _describe_calibration(row, config.judge.min_agreement)
    plans = Plans(config)
    async with q.reading(store) as conn:
        figures, rolled_days = await window_figures(conn, plans.keys_of, since, examples)
        primaries, outputs = figures.primaries, figures.outputs
        tasks = sorted(set(primaries) | {t for t, c in config.tasks.items() if c.candidates})
        keys = {t: plans.keys_of(t) for t in figures.tasks()}
        worst = figures.worst
        evidence = add_counts(await live_counts(conn, keys),
                              await archived_counts(conn, keys))
        rows = await q.example_rows(conn, [w.output_id for w in worst], keys)
        agg = _Aggregates(
            primaries=primaries, outputs=outputs, counts=figures.counts,
            traffic=await q.traffic_totals(conn, since),
            latency=figures.percentiles(QUANTILES),
            scorers={}, similarity=figures.similarity, schema=figures.schema,
            judging=figures.judging, examples={}, not_carried=figures.not_carried,
            failures=figures.failures, evidence=evidence, sources=figures.sources,
        )
        agg.models = {task: sorted({m for (t, m) in outputs if t == task and m != NOISE_FLOOR_MODEL}
                                   | set(config.task(task).candidates)) for task in tasks}
        agg.family_size = family_size(agg.models)
        noise = {}
        for task in tasks:
            n, passed, flipped = noise_of(evidence, task)
            noise[task] = (n, n - passed + flipped)
        promoted = await promoted_results(
            conn, config, routes, {t: plans[t].keys() for t in routes}, since, noise, examples,
            family=agg.family_size, baselines=evidence)
    agg.calibrations = await latest_scorer_calibrations(
        store, {t: plans[t].keys() for t in tasks})
    for s in figures.summary_rows():
        agg.scorers.setdefault((s["task"], s["model"]), []).append(ScorerStat(
            s["scorer"], s["n"], s["passed"], s["failed"], s["ignored"], s["mean"],
            s["better"], s["same"], s["worse"]))
    for w in worst:
        if w.output_id in rows:
            agg.examples.setdefault((w.task, w.model), []).append(build_example(rows[w.output_id]))
    results = [_task_result(config, task, plans[task].keys(), routes.get(task), agg)
               for task in tasks]
    by_task = {t.task: t for t in results}
    for p in promoted:
        _money(p, by_task.get(p.task))
    overview = money_overview(results, promoted)
    overview["low_kappa"], overview["min_kappa"] = flagged_verdicts(results), MIN_KAPPA
    overview["days_from_rollups"] = rolled_days
    overview["shadow_rates"] = shadow_rates(config, results, await retired_models(store))
    overview["policies"] = await what_if(store, config, results,
                                         {task: plans[task].keys() for task in tasks})
    summary = summarize(config, results, promoted, overview, await decision_history(store), now)
    return Report(
        id=uuid.uuid4().hex, generated_at=now, since=since,
        database=store.url,
        config_source=config.source,
        decision={**config.decision.model_dump(), "family_size": agg.family_size,
                  "level": (1 - config.decision.confidence) / agg.family_size,
                  "drift_false_alarm": config.routes.drift_false_alarm},
        overview=overview, tasks=results, promoted=promoted,
        judge_calibration=calibration, **summary,
    )


def _money(p: PromotedResult, t: TaskResult | None) -> None:
    """The promoted model's monthly cost at the task type's volume, from its shadow pairs."""
    c = next((c for c in t.candidates if c.model == p.model), None) if t else None
    if c is not None:
        p.monthly_cost, p.monthly_savings = c.monthly_cost, c.monthly_savings


def _task_result(
    config: Config, task: str, keys: list[tuple[str, str]], route: Route | None,
    agg: _Aggregates,
) -> TaskResult:
    prim = agg.primaries.get(task, {})
    by_primary = prim.get("models", {})
    seen = agg.traffic.get(task)
    if seen and seen["days"]:
        days, requests, volume_source = float(seen["days"]), seen["requests"], "traffic"
    else:  # no traffic counts (e.g. imported data): the stored exchanges are all we know
        days = _days(prim.get("first"), prim.get("last"))
        requests, volume_source = prim.get("exchanges", 0), "stored exchanges"
    per_day = requests / days
    shadow = sum(v["spend"] for (t, _), v in agg.outputs.items() if t == task)
    judging = agg.judging.get(task, {})
    judge = judging.get("spend", 0.0)
    noise_n, noise_passed, noise_flipped = noise_of(agg.evidence, task)
    checks = agg.evidence.get((task, TASK_ROW), {})
    policy = Policy.for_task(config, task, family_size=agg.family_size)
    primary_latency = agg.latency.get((task, None), {})
    result = TaskResult(
        task=task, policy=asdict(policy), primary_models=sorted(by_primary),
        primary_model=max(by_primary, key=lambda m: (by_primary[m], m)) if by_primary else None,
        judge_version=next((version for name, version in keys if name == "judge"), None),
        routed_to=route.model if route is not None and route.promoted else None,
        exchanges=prim.get("exchanges", 0), requests=requests, volume_source=volume_source,
        days=days, requests_per_day=per_day, share_of_spend=None,
        primary_cost_per_1k=_times(prim.get("mean_cost"), 1000),
        primary_latency_p50=primary_latency.get(0.5), primary_latency_p95=primary_latency.get(0.95),
        monthly_primary_cost=_times(prim.get("mean_cost"), per_day * DAYS_PER_MONTH),
        shadow_spend=shadow, judge_spend=judge, judge_calls=judging.get("calls", 0),
        judge_skipped=judging.get("skipped", 0),
        monthly_evaluation_cost=(shadow + judge) / days * DAYS_PER_MONTH,
        noise_n=noise_n, noise_failures=noise_n - noise_passed + noise_flipped,
        primary_schema_checked=checks.get("schema_checked", 0),
        primary_schema_invalid=checks.get("schema_invalid", 0),
        scorers=[name for name, _ in keys], candidates=[],
        primary_costed=prim.get("costed", 0),
        not_shadowable=agg.traffic.get(task, {}).get("not_shadowable", 0),
        primary_not_carried=agg.not_carried.get((task, None), {}),
        sources=dict(sorted(agg.sources.get(task, {}).items(), key=lambda kv: -kv[1])),
    )
    for model in agg.models.get(task, []):
        result.candidates.append(_candidate_result(result, model, policy, agg))
    result.base_replay_share = config.task(task).noise_floor_rate
    pending = [candidate_evidence(agg.evidence, task, c.model, samples_per_day=None,
                                  noise_per_day=None)
               for c in result.candidates if c.verdict == Verdict.NEED_MORE_DATA]
    result.replay_share = (0.0 if not result.base_replay_share else recommended_replay_share(
        pending, base=result.base_replay_share,
        evaluation=config.decision.evaluation_replay_rate))
    apply_validity(result, keys, agg.failures, agg.calibrations)
    promotable = [c for c in result.candidates if c.command]
    if promotable:  # the largest known saving; unknown savings rank last
        max(promotable, key=lambda c: (c.monthly_savings is not None,
                                       c.monthly_savings or 0.0)).recommended = True
    return result


def _candidate_result(t: TaskResult, model: str, policy: Policy, agg: _Aggregates) -> CandidateResult:
    totals = agg.outputs.get((t.task, model), {"outputs": 0, "errors": 0, "mean_cost": None,
                                                "spend": 0.0, "first": None, "last": None})
    c = agg.counts.get((t.task, model), {"complete": 0, "counted": 0, "passed": 0})
    rate = c["counted"] / _days(totals["first"], totals["last"]) if c["counted"] else None
    replays = agg.counts.get((t.task, NOISE_FLOOR_MODEL), {}).get("counted", 0)
    noise_rate = replays / _days(totals["first"], totals["last"]) if rate else None
    evidence = candidate_evidence(agg.evidence, t.task, model, samples_per_day=rate,
                                  noise_per_day=noise_rate)
    decision = decide(evidence, policy)
    chance = (pass_chance(evidence, policy) if decision.verdict is Verdict.NEED_MORE_DATA
              and evidence.n >= policy.min_samples else None)
    ev = agg.evidence.get((t.task, model), {})
    inferiority = next((x for x in decision.criteria if x.name == "non-inferiority"), None)
    monthly = _times(totals["mean_cost"], t.requests_per_day * DAYS_PER_MONTH)
    savings = (None if monthly is None or t.monthly_primary_cost is None
               else t.monthly_primary_cost - monthly)
    latency = agg.latency.get((t.task, model), {})
    return CandidateResult(
        model=model, verdict=str(decision.verdict), reason=decision.reason,
        outputs=totals["outputs"], errors=totals["errors"],
        unscored=totals["outputs"] - c["complete"], ignored=c["complete"] - c["counted"],
        n=ev.get("counted", 0), passed=ev.get("passed", 0), pass_rate=decision.pass_rate,
        lower_bound=decision.lower_bound, sequential_lower=decision.sequential_lower,
        noise_floor=decision.noise_floor,
        excess_failure=inferiority.estimate if inferiority else None,
        excess_upper=inferiority.bound if inferiority else None,
        samples_needed=decision.samples_needed, days_needed=decision.days_needed,
        days_needed_80=decision.days_needed_80, level=decision.level, method=decision.method,
        flip_rate=decision.flip_rate, samples_per_day=rate,
        scorers=agg.scorers.get((t.task, model), []),
        similarity_histogram=agg.similarity.get((t.task, model)),
        cost_per_1k=_times(totals["mean_cost"], 1000),
        latency_p50=latency.get(0.5), latency_p95=latency.get(0.95),
        monthly_cost=monthly, monthly_savings=savings,
        monthly_savings_net=None if savings is None else savings - t.monthly_evaluation_cost,
        shadow_spend=totals["spend"],
        command=(f"shadowroute promote {shlex.quote(t.task)} --to {shlex.quote(model)}"
                 if decision.verdict is Verdict.PROMOTE else None),
        examples=agg.examples.get((t.task, model), []),
        costed=totals.get("costed", 0),
        not_carried=agg.not_carried.get((t.task, model), {}), pass_chance=chance,
        **criteria_fields(decision),
    )


def _whole_pct(value: float) -> str:
    """Rounded down, so a rate just under ``[judge] min_agreement`` never reads as equal."""
    return f"{math.floor(value * 100 + 1e-9):.0f}%"


def _describe_calibration(row: dict[str, Any], min_agreement: float) -> dict[str, Any]:
    """A stored calibration (a ``judge_calibrations`` row) as the report shows it: the row's
    fields plus ``min_agreement``, ``below`` (agreement under it, or no decided pair at all),
    ``summary`` ("judge calibrated: 83% agreement with people (kappa 0.66, n 200, 20 ties,
    2026-11-30)") and ``warning`` (``None`` unless ``below``)."""
    rate = row.get("agreement")
    kappa = row.get("kappa")
    n, ties = row["n"], row["ties"]
    created: datetime = row["created_at"]
    tied = f", {ties:,} ties" if ties else ""
    if rate is None:
        summary = (f"judge calibrated: it picked a side on none of {n:,} pairs with a human "
                   f"verdict ({created:%Y-%m-%d})")
        warning = (f"the judge picked a side on none of the {n:,} calibration pairs: treat its "
                   "verdicts with care; see shadowroute calibrate-judge")
    else:
        kappa_text = "–" if kappa is None else f"{kappa:.2f}"
        summary = (f"judge calibrated: {_whole_pct(rate)} agreement with people (kappa "
                   f"{kappa_text}, n {n:,}{tied}, {created:%Y-%m-%d})")
        warning = (f"the judge agrees with people only {_whole_pct(rate)} of the time: "
                   "treat its verdicts with care; see shadowroute calibrate-judge")
    below = rate is None or rate < min_agreement
    return {
        **row,
        "min_agreement": min_agreement,
        "below": below,
        "summary": summary,
        "warning": warning if below else None,
    }
