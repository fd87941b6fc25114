"""The report's first screen in words: per task type the action to take, why in one line, and
what would change it; and the money, with how to spend less on evaluating.

The action of a task type comes from its candidates' verdicts and the route map:

* ``PROMOTED``: the route map already sends it to a model (its drift check says how that holds);
  ``DEMOTE RECOMMENDED`` when the drift check alarmed;
* ``PROMOTE``: a candidate can take over (the recommended one: the largest saving);
* ``CONFIG PROBLEM``: the setup gives no verdict (the primary fails its own schema, or the judge
  flips);
* ``NEED MORE DATA``: some candidate is still open; the one closest to a verdict is named, with
  the decision's projection of the days it needs at today's volume;
* ``HOLD``: every candidate is shown to miss a criterion: more data would not change it, a better
  candidate, a cascade or a lower bar would;
* ``NO CANDIDATES``: nothing shadows it.

The reason names the evidence (n, pass rate, the bound the verdict used against the bar, the
excess failure rate over the primary's noise floor against the margin), so that a reader sees
*why* without opening the task type's section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..decision import DriftVerdict, Verdict

if TYPE_CHECKING:
    from ..config import Config
    from ..decision import Decision

__all__ = [
    "ACTIONS", "TaskAction", "action_counts", "candidate_why", "criteria_fields", "money_summary",
    "money_overview", "per_day", "short_reason", "summarize", "task_actions",
]

ACTIONS = ("PROMOTE", "CASCADE", "PARTIAL", "PROMOTED", "DEMOTE RECOMMENDED", "CONFIG PROBLEM",
           "NEED MORE DATA", "HOLD", "NO CANDIDATES")
"""Every action, in the order the first screen counts them."""
DAYS_PER_MONTH = 30


@dataclass
class TaskAction:
    """What to do about one task type, as the first screen says it."""

    task: str
    action: str
    """One of :data:`ACTIONS`."""
    model: str | None
    """The candidate (or promoted model) the action is about."""
    reason: str
    """One line: n, pass rate, bound vs bar, excess vs noise floor."""
    change: str | None
    """What would change the action (``None``: nothing to wait for)."""
    command: str | None = None
    requests_per_day: float = 0.0
    monthly_savings: float | None = None
    monthly_savings_net: float | None = None
    others: list[str] = field(default_factory=list)
    """The task type's other candidates and their verdicts (``"tiny HOLD"``)."""


def criteria_fields(decision: Decision) -> dict[str, Any]:
    """What the reasons need from a decision beyond the report's columns: the pass rate's
    upper bound, the excess's lower bound, the criteria shown to fail, the projected chance
    of PROMOTE."""
    by = {c.name: c for c in decision.criteria}
    quality, excess = by.get("quality"), by.get("non-inferiority")
    return {"upper_bound": quality.opposite if quality else None,
            "excess_lower": excess.opposite if excess else None,
            "refuted": [c.name for c in decision.criteria if c.refuted],
            "promote_chance": decision.promote_chance}


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _signed(value: float) -> str:
    return f"{value * 100:+.1f}%".replace("-", "−")


def _days(value: float) -> str:
    n = max(1, math.ceil(value))
    return f"{n:,} day{'s' if n != 1 else ''}"


def per_day(value: float | None) -> str:
    """Requests per day as a whole number: ``1,293``, ``<1`` below one, ``0``, ``–``."""
    if value is None:
        return "–"
    if value == 0:
        return "0"
    if value < 1:
        return "<1"
    return f"{round(value):,}"


def _bound(c: Any) -> float | None:
    return c.sequential_lower if c.sequential_lower is not None else c.lower_bound


def candidate_why(c: Any, policy: dict[str, Any]) -> str:
    """One line of evidence for candidate ``c`` (a :class:`~.build.CandidateResult`) under
    its task type's ``policy``: n, pass rate, the bound against the bar, the excess over the
    noise floor against the margin."""
    if c.verdict == "CONFIG PROBLEM":
        return c.reason
    if not c.n or c.pass_rate is None:
        return "no scored outputs yet"
    bar, margin = policy["required_quality"], policy["margin"]
    parts = [f"n {c.n:,}" + (f" (fewer than the {policy['min_samples']:,} required)"
                             if c.n < policy["min_samples"] else ""),
             f"pass rate {_pct(c.pass_rate)}"]
    which = "always-valid lower bound" if c.sequential_lower is not None else "lower bound"
    refuted = getattr(c, "refuted", [])
    upper = getattr(c, "upper_bound", None)
    if "quality" in refuted and upper is not None:
        parts.append(f"upper bound {_pct(upper)} < bar {_pct(bar)}")
    elif _bound(c) is not None:
        low = _bound(c)
        parts.append(f"{which} {_pct(low)} {'≥' if low >= bar else '<'} bar {_pct(bar)}")
    if c.excess_failure is not None:
        floor = ("noise floor " + _pct(c.noise_floor) if c.noise_floor is not None
                 else "noise floor 0 (no replays)")
        lower = getattr(c, "excess_lower", None)
        if "non-inferiority" in refuted and lower is not None:
            test = f"lower {_signed(lower)} > margin {_pct(margin)}"
        elif c.excess_upper is not None:
            ok = c.excess_upper <= margin
            test = f"upper {_signed(c.excess_upper)} {'≤' if ok else '>'} margin {_pct(margin)}"
        else:
            test = f"margin {_pct(margin)}"
        parts.append(f"excess over the {floor}: {_signed(c.excess_failure)} ({test})")
    return " · ".join(parts)


def short_reason(c: Any, policy: dict[str, Any]) -> str:
    """A few words for the terminal table: the criterion that decided, with its figures."""
    bar, margin = policy["required_quality"], policy["margin"]
    refuted = getattr(c, "refuted", [])
    if c.verdict == "CONFIG PROBLEM":
        return ("primary fails its own schema" if "schema" in c.reason
                else "judge flips with the order")
    if not c.n:
        return "no scored outputs yet"
    if c.n < policy["min_samples"]:
        return f"n {c.n:,} < {policy['min_samples']:,} required"
    if c.verdict == "HOLD":
        if "quality" in refuted and getattr(c, "upper_bound", None) is not None:
            return f"pass ≤ {_pct(c.upper_bound)} < bar {_pct(bar)}"
        if getattr(c, "excess_lower", None) is not None:
            return f"excess ≥ {_signed(c.excess_lower)} > margin {_pct(margin)}"
        return "a criterion fails"
    low = _bound(c)
    quality = f"bound {_pct(low)} {'≥' if low is not None and low >= bar else '<'} {_pct(bar)}"
    if c.verdict == "PROMOTE":
        return f"{quality}, excess ≤ {_signed(c.excess_upper or 0.0)}"
    if low is not None and low < bar:
        text = quality
    elif c.excess_upper is not None:
        text = f"excess ≤ {_signed(c.excess_upper)} > {_pct(margin)}"
    else:
        text = "not shown yet"
    return text + (f"; ~{_days(c.days_needed)}" if c.days_needed else "")


def _waiting(c: Any, t: Any, config: Config) -> str:
    """What a NEED MORE DATA candidate waits for, at today's volume."""
    rate = config.task(t.task).sample_rate
    faster = (f"; a higher [tasks.{t.task}] sample_rate (now {_pct(rate, 0)}) gets there sooner"
              if rate < 1 else "")
    per = (f" ({c.samples_per_day:,.0f} scored a day)" if c.samples_per_day
           and c.samples_per_day >= 1 else "")
    if c.n < t.policy["min_samples"]:
        need = c.samples_needed or t.policy["min_samples"] - c.n
        when = (f"about {_days(c.days_needed)} more at today's volume{per}" if c.days_needed
                else "no outputs scored a day yet, so no date")
        return f"{need:,} more scored outputs: {when}{faster}"
    if c.days_needed:
        chance = getattr(c, "promote_chance", None)
        tail = f"; PROMOTE in {chance:.0%} of projections" if chance is not None else ""
        if chance is not None and chance < 0.2:
            tail += ": most end in HOLD, so a better candidate or a cascade is the likelier way"
        within = f", 80% of projections within {_days(c.days_needed_80)}" if c.days_needed_80 else ""
        return f"about {_days(c.days_needed)} more at today's volume{per}{within}{tail}{faster}"
    if c.samples_needed:
        return f"about {c.samples_needed:,} more scored outputs{faster}"
    return ("no verdict in sight at today's rates (they sit close to the bar): a better "
            "candidate, or a cascade that escalates its failures to the primary")


def _with_rates(change: str | None, t: Any) -> str | None:
    """``change`` plus which candidates are shadowed on less than every sampled call
    (:func:`.rates.rates_note`)."""
    from .rates import rates_note

    note = rates_note(t)
    return f"{change}; {note}" if change and note else change or note


def _holding(c: Any, t: Any) -> str:
    key = "margin" if "non-inferiority" in getattr(c, "refuted", []) and \
        "quality" not in getattr(c, "refuted", []) else "required_quality"
    now = t.policy["margin" if key == "margin" else "required_quality"]
    return ("more data would not change it: a better candidate, a cascade (the candidate answers, "
            "a runtime check escalates its failures to the primary), or a lower bar "
            f"([tasks.{t.task}] {key}, now {_pct(now)})")


def _fix(c: Any) -> str:
    if "schema" in c.reason:
        return "fix the task's JSON schema or the prompt: the primary fails its own schema"
    return "calibrate the judge (shadowroute calibrate-judge) or change it: its verdicts flip"


def _pick(candidates: list[Any], verdict: str) -> Any | None:
    matching = [c for c in candidates if c.verdict == verdict]
    if not matching:
        return None
    if verdict == "PROMOTE":
        return next((c for c in matching if c.recommended), matching[0])
    if verdict == "NEED MORE DATA":  # the closest to a verdict, then the best pass rate
        return min(matching, key=lambda c: (c.days_needed is None, c.days_needed or 0.0,
                                            -(c.pass_rate or 0.0)))
    return max(matching, key=lambda c: c.pass_rate or 0.0)


def task_actions(config: Config, tasks: list[Any], promoted: list[Any]) -> list[TaskAction]:
    """One :class:`TaskAction` per task type (see the module docstring)."""
    drift = {p.task: p for p in promoted}
    out = []
    for t in tasks:
        base = {"task": t.task, "requests_per_day": t.requests_per_day}
        p = drift.get(t.task)
        if t.routed_to and p is not None:
            demote = p.verdict == "DEMOTE RECOMMENDED"
            change = (f"roll back: {p.reason}" if demote else
                      f"a drop below {_pct(p.reference)} on the reverse-shadow pairs would "
                      "recommend a demotion" if p.reference is not None else
                      "the drift check waits for scored reverse-shadow pairs")
            better = next((c for c in t.candidates if c.recommended and c.model != p.model), None)
            if better is not None and not demote:
                change += f"; {better.model} can take over instead ({better.command})"
            out.append(TaskAction(
                **base, action="DEMOTE RECOMMENDED" if demote else "PROMOTED", model=p.model,
                reason=(f"served by {p.model} since {p.since:%Y-%m-%d} (replacing {p.primary}); "
                        f"drift check {p.verdict}: {p.reason}"),
                change=change, command=p.command, monthly_savings=p.monthly_savings,
                others=[f"{c.model} {c.verdict}" for c in t.candidates if c.model != p.model]))
            continue
        if not t.candidates:
            out.append(TaskAction(**base, action="NO CANDIDATES", model=None,
                                  reason="no candidate shadows it; its exchanges are stored",
                                  change=f"add candidates to [tasks.{t.task}] candidates"))
            continue
        move = _partial_move(t)
        if move is not None:
            out.append(TaskAction(**base, **move, others=[
                f"{o.model} {o.verdict}" for o in t.candidates if o.model != move["model"]]))
            continue
        verdict, c = next(((v, c) for v in ("PROMOTE", "CONFIG PROBLEM", "NEED MORE DATA")
                           if (c := _pick(t.candidates, v)) is not None),
                          ("HOLD", _pick(t.candidates, "HOLD") or t.candidates[0]))
        change = {"PROMOTE": None, "CONFIG PROBLEM": _fix(c), "NEED MORE DATA":
                  _waiting(c, t, config)}.get(verdict) if verdict != "HOLD" else _holding(c, t)
        change = _with_rates(change, t)
        out.append(TaskAction(
            **base, action=verdict, model=c.model, reason=candidate_why(c, t.policy),
            change=change, command=c.command, monthly_savings=c.monthly_savings,
            monthly_savings_net=c.monthly_savings_net,
            others=[f"{o.model} {o.verdict}" for o in t.candidates if o is not c]))
    return out


def _partial_move(t: Any) -> dict[str, Any] | None:
    """A task type no candidate can take whole but a cascade or a per-request rule can
    (:func:`.policies.best_policy`): the action's fields."""
    from .policies import best_policy

    found = best_policy(t)
    if found is None:
        return None
    kind, c, result = found
    if kind == "CASCADE":
        reason = (f"as a cascade ({result['policy']}: escalates "
                  f"{_pct(result['escalation_rate'])}, upper {_pct(result['escalation_upper'])}, "
                  f"break-even {_pct(result['break_even'])}) the served answers pass "
                  f"{_pct(result['pass_rate'])}, always-valid lower bound "
                  f"{_pct(result['lower_bound'])} ≥ bar {_pct(t.policy['required_quality'])}; "
                  f"alone it is {c.verdict}")
        flag = f"--cascade {result['policy']}"
        change = ("the observed escalation rate is checked against the promised one in the "
                  "next reports (a rise past the break-even recommends a demotion)")
    else:
        reason = f"{result['reason']}; alone it is {c.verdict}"
        flag = "--partial"
        change = "the routed share is checked against the promised one in the next reports"
    return {"action": kind, "model": c.model, "reason": reason, "change": change,
            "command": f"shadowroute promote {t.task} --to {c.model} {flag}",
            "monthly_savings": result.get("monthly_savings")}


def action_counts(actions: list[TaskAction]) -> dict[str, int]:
    """Task types per action, every action of :data:`ACTIONS` present (zero or not)."""
    return {a: sum(x.action == a for x in actions) for a in ACTIONS}


def _monthly(spend: float, days: float) -> float:
    return spend / days * DAYS_PER_MONTH if days else 0.0


def money_summary(config: Config, tasks: list[Any], overview: dict[str, Any]) -> dict[str, Any]:
    """The money in words: the gross saving at current volume (promoted task types and every
    recommended PROMOTE, against everything on its primary), what evaluating costs a month,
    the net, and per task type where the evaluation spend goes and which setting lowers it."""
    gross, evaluation = overview["monthly_savings"], overview["monthly_evaluation"]
    rows = []
    for t in tasks:
        if not t.monthly_evaluation_cost:
            continue
        cfg = config.task(t.task)
        candidates = _monthly(sum(c.shadow_spend for c in t.candidates), t.days)
        replays = max(_monthly(t.shadow_spend, t.days) - candidates, 0.0)
        judge = _monthly(t.judge_spend, t.days)
        held = [c for c in t.candidates if c.verdict == "HOLD"]
        advice = []
        if held and len(held) == len(t.candidates) and not t.routed_to:
            advice.append(f"every candidate HOLDs: more data would not change that, so "
                          f"shadowing it can stop (empty [tasks.{t.task}] candidates)")
        elif held:
            saved = _monthly(sum(c.shadow_spend for c in held), t.days)
            names = ", ".join(c.model for c in held)
            advice.append(f"{names} HOLD{'s' if len(held) == 1 else ''}: take "
                          f"{'it' if len(held) == 1 else 'them'} out of [tasks.{t.task}] "
                          f"candidates (their calls cost ${saved:,.2f}/month)")
        if cfg.sample_rate > 0:
            advice.append(f"[tasks.{t.task}] sample_rate {_rate(cfg.sample_rate)} → "
                          f"{_rate(cfg.sample_rate / 2)} halves candidate calls, judging and "
                          f"replays (−${t.monthly_evaluation_cost / 2:,.2f}/month), and doubles "
                          "the days to a verdict")
        if replays > 0 and cfg.noise_floor_rate > 0:
            raised = (f"; [decision] evaluation_replay_rate raised it to {_rate(t.replay_share)} "
                      "while the noise floor is the less certain side"
                      if t.replay_share > t.base_replay_share else "")
            advice.append(f"[tasks.{t.task}] noise_floor_rate {_rate(cfg.noise_floor_rate)} "
                          f"sets the primary's replays (${replays:,.2f}/month){raised}")
        economics = {**_economics(t), **_next_month(t, candidates, judge, replays)}
        if economics["payback_months"] is None and not t.routed_to and t.candidates:
            advice.append("no candidate is on its way to a saving: this evaluation cannot pay "
                          "for itself")
        elif (economics["payback_months"] or 0) > PAYBACK_HORIZON_MONTHS:
            advice.append(f"at this volume the evaluation pays for itself only after "
                          f"{economics['payback_months']:,.0f} months: sample less, or stop")
        rows.append({"task": t.task, "monthly_evaluation": t.monthly_evaluation_cost,
                     "candidates": candidates, "replays": replays, "judge": judge,
                     "sample_rate": cfg.sample_rate, "noise_floor_rate": cfg.noise_floor_rate,
                     "advice": advice, **economics})
    rows.sort(key=lambda r: -r["monthly_evaluation"])
    next_month = evaluation - sum(r["monthly_evaluation"] - r["next_month"] for r in rows)
    net = gross - evaluation
    if net < 0:
        note = (f"Net is negative: at today's volume, evaluating costs ${evaluation:,.2f} a month, "
                f"more than the ${gross:,.2f} the moves save. Shadowing is the price of the "
                "evidence; lower it where it buys nothing (below), or let it run until the "
                "verdicts settle and then sample less.")
    else:
        note = (f"Evaluation costs ${evaluation:,.2f} a month of the ${gross:,.2f} saved; "
                "it can be lowered where it buys nothing (below).")
    return {"gross": gross, "evaluation": evaluation, "net": net, "note": note,
            "evaluation_next": next_month, "by_task": rows}


def _next_month(t: Any, candidates: float, judge: float, replays: float) -> dict[str, Any]:
    """The evaluation a month at the shares this report sets (:mod:`.rates`): each candidate's
    calls at its share, the judge in proportion to the outputs it will see, the replays as
    now; and the judge calls a cheaper scorer made unnecessary, with what they would have cost
    at the mean judge call (``None``: no judge call priced yet)."""
    def share(c: Any) -> float:
        return 1.0 if c.shadow_rate is None else c.shadow_rate

    spend = sum(c.shadow_spend for c in t.candidates)
    calls = (sum(c.shadow_spend * share(c) for c in t.candidates) / spend * candidates
             if spend else 0.0)
    outputs = sum(c.outputs for c in t.candidates)
    judged = (sum(c.outputs * share(c) for c in t.candidates) / outputs * judge
              if outputs else judge)
    saved = (_monthly(t.judge_skipped * t.judge_spend / t.judge_calls, t.days)
             if t.judge_calls else None)
    return {"next_month": calls + judged + replays, "judge_skipped": t.judge_skipped,
            "judge_saved": saved}


PAYBACK_HORIZON_MONTHS = 12
"""Evaluation that pays for itself only after this long is flagged."""


def _economics(t: Any) -> dict[str, Any]:
    """What the task type's evaluation has cost (in the report's window), what it will cost
    until a verdict at today's rate (the projection's median days of its closest open
    candidate; 0 once a candidate can take over), and the months of the saving it buys that
    pay for both: ``None`` when no candidate is on its way to a saving."""
    spent = t.shadow_spend + t.judge_spend
    ready = [c for c in t.candidates if c.verdict == "PROMOTE"]
    hoped = [c for c in t.candidates if c.verdict in ("PROMOTE", "NEED MORE DATA")
             and c.monthly_savings and c.monthly_savings > 0]
    days = 0.0 if ready or t.routed_to else min(
        (c.days_needed for c in hoped if c.days_needed), default=None)
    to_verdict = None if days is None else t.monthly_evaluation_cost / DAYS_PER_MONTH * days
    # The saving being bought: a candidate that can take over now, else the best open one.
    buying = [c for c in hoped if c.verdict == "PROMOTE"] or hoped
    saving = max((c.monthly_savings for c in buying), default=None)
    payback = (spent + to_verdict) / saving if saving and to_verdict is not None else None
    return {"spent": spent, "to_verdict": to_verdict, "payback_months": payback}


def _rate(value: float) -> str:
    return f"{value:.4g}"


def summarize(config: Config, tasks: list[Any], promoted: list[Any], overview: dict[str, Any],
              history: list[dict[str, Any]], now: Any) -> dict[str, Any]:
    """The report's first screen and trend charts: ``actions``, ``action_counts``, ``money``
    and ``trends`` (the :class:`~.build.Report` fields); sets each candidate's ``why`` (the
    terminal table's short reason) on the way."""
    from .trend import build_trends

    for t in tasks:
        for c in t.candidates:
            c.why = short_reason(c, t.policy)
    actions = task_actions(config, tasks, promoted)
    return {"actions": actions, "action_counts": action_counts(actions),
            "money": money_summary(config, tasks, overview),
            "trends": build_trends(history, tasks, now)}


def money_overview(tasks: list[Any], promoted: list[Any]) -> dict[str, Any]:
    """The money at current volume: every task type on its primary; as routed now (promoted
    task types at their model's cost); and with every recommended PROMOTE applied too."""
    primary = sum(t.monthly_primary_cost or 0.0 for t in tasks)
    evaluation = sum(t.monthly_evaluation_cost for t in tasks)
    routed_cost = {p.task: p.monthly_cost for p in promoted if p.monthly_savings is not None}
    promotions, routed, after = [], 0.0, 0.0
    verdicts: dict[str, int] = {str(v): 0 for v in Verdict}
    for t in tasks:
        t.share_of_spend = (t.monthly_primary_cost or 0.0) / primary if primary else None
        for c in t.candidates:
            verdicts[c.verdict] += 1
        current = routed_cost.get(t.task, t.monthly_primary_cost) or 0.0
        routed += current
        chosen = next((c for c in t.candidates if c.recommended), None)
        if chosen is not None and chosen.model != t.routed_to:
            promotions.append({"task": t.task, "model": chosen.model, "command": chosen.command,
                               "monthly_savings": chosen.monthly_savings,
                               "monthly_savings_net": chosen.monthly_savings_net})
        if chosen is not None and chosen.monthly_savings is not None:
            after += chosen.monthly_cost or 0.0  # both costs known
        else:
            after += current
    return {
        "monthly_primary": primary, "monthly_routed": routed, "monthly_evaluation": evaluation,
        "monthly_now": routed + evaluation, "monthly_with_promotions": after + evaluation,
        "monthly_savings": primary - after, "verdicts": verdicts, "promotions": promotions,
        "drift": {str(v): sum(p.verdict == v for p in promoted) for v in DriftVerdict},
        "replay_shares": {t.task: t.replay_share for t in tasks},
    }
