"""The verdict for one task type x candidate: a pure function of counts and a policy.

    decide(Evidence(n=400, passed=391, noise_n=100, noise_passed=98), Policy(family_size=6))

A candidate output *passes* when every scorer that applies to it passed; a judge verdict that
flips when the two answers swap places is a failure (the judge could not tell them apart).
Two criteria:

* quality: the pass rate reaches ``required_quality`` (outputs on which no scorer applied
  count as failures here unless ``unscored_fail`` is off);
* non-inferiority: the candidate fails at most ``margin`` more often than the primary
  disagrees with itself (its noise floor, from ``primary@replay``), tested on the difference
  with the floor's own uncertainty in the test, paired on the exchanges both answered when
  the counts are given.

**What the guarantee covers** (``sequential``, the default): each decision runs at
``level = (1 - confidence) / family_size`` with always-valid tests (:mod:`.core`), so on
*cumulative* counts, re-decided every night for as long as you like, the chance that a report
ever shows PROMOTE for a candidate that truly misses either criterion is at most ``level``,
and for any of the report's ``family_size`` decisions at most ``1 - confidence``. The same
holds for a HOLD of a candidate that truly meets both. **What it does not cover**: counts
from a window that slides (a new sample every night voids it: pass counts since the
candidate started), rates that change while the evidence grows, scorers that do not measure
what matters (the judge's calibration is a separate check), or a ``family_size`` smaller than
the decisions the report actually makes. CONFIG PROBLEM (primary schema, inconsistent judge)
is shown by always-valid lower bounds at the same level, not by observed rates.

Verdicts: PROMOTE (both criteria shown), HOLD (a criterion shown to fail: more data would not
change it), NEED MORE DATA (below ``min_samples``, or not shown either way yet: with a range of
days from :mod:`.projection`), CONFIG PROBLEM.

``sequential=False`` is for a one-off evaluation of a fixed dataset: fixed-sample bounds at the
same level, not valid under repeated looks.
"""

from __future__ import annotations

import math
from dataclasses import replace

from .bounds import lower_bound
from .core import CODES, Counts, Priors, Tests, evaluate, judge_flip_limit
from .excess import excess_bounds
from .fixed import fixed_criteria, fixed_samples_needed
from .policy import Evidence, Policy, Verdict
from .projection import Projection, project
from .results import Criterion, Decision
from .sequences import rate_lower, rate_upper

__all__ = ["Criterion", "Decision", "Evidence", "Policy", "Verdict", "decide", "method_of"]


def method_of(p: Policy, *, paired: bool = False) -> str:
    """How the decision was made, in one line."""
    per = f"{p.level:.3%}".rstrip("0").rstrip(".")
    family = (f"{p.alpha:.0%} family-wise over {p.family_size} decisions, {per} each"
              if p.family_size > 1 else f"{p.alpha:.0%} ({per})")
    if not p.sequential:
        return (f"fixed-sample {p.bound} bounds at {family}: valid for one look at a fixed "
                "dataset, not for nightly re-runs")
    design = "paired on the exchanges both answered" if paired else "candidate vs replays"
    return (f"always-valid tests at {family}, on cumulative counts, any number of nightly "
            f"looks; non-inferiority on the difference ({design}), the noise floor's "
            "uncertainty included; flipped judge verdicts count as failures")


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _sequential_criteria(e: Evidence, p: Policy, t: Tests, priors: Priors,
                         counts: Counts) -> tuple[Criterion, Criterion]:
    fq, nq = (float(x) for x in counts.quality_counts(p))
    rate = 1.0 - fq / nq
    lower = 1.0 - float(rate_upper(fq, nq, p.level, priors.failure))
    upper = 1.0 - float(rate_lower(fq, nq, p.level, priors.failure))
    q_met, q_refuted = bool(t.quality_met), bool(t.quality_refuted)
    counted = []
    if e.unscored and p.unscored_fail:
        counted.append(f"{e.unscored:,} unscored")
    if e.flipped:
        counted.append(f"{e.flipped:,} flipped judge verdicts")
    unscored = f" ({' and '.join(counted)} counted as failures)" if counted else ""
    if q_refuted:
        q_detail = (f"pass rate {_pct(rate)}{unscored}, upper bound {_pct(upper)} < required "
                    f"{_pct(p.required_quality)}")
    else:
        q_detail = (f"pass rate {_pct(rate)}{unscored}, lower bound {_pct(lower)} "
                    f"{'>=' if q_met else '<'} required {_pct(p.required_quality)}")
    quality = Criterion("quality", q_met, rate, lower, p.required_quality, q_detail, q_refuted,
                        upper)

    fc, fr = e.n - e.effective_passed, e.noise_n - e.effective_noise_passed
    paired = counts.paired
    excess_low, excess_up = excess_bounds(fc, e.n, fr, e.noise_n, p.level, priors.failure,
                                          priors.floor, paired=paired, cells=priors.cells)
    # The verdict's tests at the margin decide; the bounds (grid inversions of the same test)
    # are for the words and agree with them up to their resolution.
    x_met, x_refuted = bool(t.excess_met), bool(t.excess_refuted)
    noise = fr / e.noise_n if e.noise_n else 0.0
    estimate = fc / e.n - noise
    floor = f"the primary's noise floor {_pct(noise)}" if e.noise_n else \
        "a noise floor taken as 0 (no replays)"
    if x_refuted:
        x_detail = (f"fails {_pct(fc / e.n)} vs {floor}; the excess's lower bound "
                    f"{excess_low:+.1%} > margin {_pct(p.margin)}")
    else:
        x_detail = (f"fails {_pct(fc / e.n)} vs {floor}; the excess's upper bound "
                    f"{excess_up:+.1%} {'<=' if x_met else '>'} margin {_pct(p.margin)}")
    inferiority = Criterion("non-inferiority", x_met, estimate, excess_up, p.margin, x_detail,
                            x_refuted, excess_low)
    return quality, inferiority


def _config_problem(e: Evidence, p: Policy, t: Tests, priors: Priors) -> str:
    if bool(t.schema_problem):
        low = float(rate_lower(e.primary_invalid, e.primary_checked, p.level, priors.config))
        return (f"the primary fails the task's JSON schema on "
                f"{e.primary_invalid / e.primary_checked:.0%} of checks "
                f"({e.primary_invalid:,} of {e.primary_checked:,}; at least {low:.0%} with "
                f"{1 - p.level:.1%} confidence, the limit is {p.config_problem_rate:.0%}): fix "
                "the schema or the prompt before comparing candidates")
    low = float(rate_lower(e.flipped, e.judged, p.level, priors.config))
    limit = judge_flip_limit(p)
    why = ("" if limit >= p.max_judge_flip_rate else
           f": a flip is a failure, so at this rate no candidate can show "
           f"{p.required_quality:.0%}")
    return (f"judge inconsistent: {e.flipped / e.judged:.0%} of its verdicts flip when the two "
            f"answers swap places ({e.flipped:,} of {e.judged:,}; at least {low:.1%}, the limit "
            f"is {limit:.0%}{why}): calibrate it (shadowroute calibrate-judge) or change it "
            "before trusting its verdicts")


def _days(samples: int, e: Evidence) -> float | None:
    if e.samples_per_day is None or e.samples_per_day <= 0:
        return None
    return samples / e.samples_per_day


def _day_count(days: float) -> str:
    """``1 day``, ``12 days``: whole days, at least one."""
    n = max(1, math.ceil(days))
    return f"{n:,} day{'s' if n != 1 else ''}"


def _more_data(unmet: str, pr: Projection, p: Policy) -> str:
    if pr.days_median is None and pr.samples_median is None:
        within = (f"within {p.horizon_days:,} days" if pr.horizon_days is not None
                  else "in the projection")
        return (f"{unmet}; neither shown yet, and at the current rates {1 - pr.decided:.0%} of "
                f"projections get no verdict {within}: the rates are close to the limits")
    if pr.days_median is not None:
        end = (_day_count(pr.days_p80) if pr.days_p80 is not None
               else f"more than {p.horizon_days:,} days")
        when = f"a verdict in about {_day_count(pr.days_median)} (80% within {end})"
    else:
        when = f"a verdict after about {pr.samples_median:,} more outputs"
    return (f"{unmet}; neither shown yet: at the current rates {when}; PROMOTE in "
            f"{pr.promote:.0%}, HOLD in {pr.decided - pr.promote:.0%} of projections")


def decide(e: Evidence, p: Policy, *, project: bool = True) -> Decision:
    """The verdict for one task type x candidate (see the module docstring).

    ``project=False`` skips the projection of how long an inconclusive case needs."""
    return _decide(e, p, project_ahead=project)


def _decide(e: Evidence, p: Policy, *, project_ahead: bool) -> Decision:
    priors = Priors.for_policy(p)
    counts = Counts.of(e)
    common = {"level": p.level, "family_size": p.family_size,
              "method": method_of(p, paired=e.pairs is not None),
              "flip_rate": e.flipped / e.judged if e.judged else None}
    t = evaluate(counts, p, priors) if p.sequential else None
    if t is not None and CODES[int(t.verdict)] is Verdict.CONFIG_PROBLEM:
        return Decision(Verdict.CONFIG_PROBLEM, _config_problem(e, p, t, priors), **common)
    if not p.sequential:
        problem = _fixed_config_problem(e, p, priors)
        if problem is not None:
            return Decision(Verdict.CONFIG_PROBLEM, problem, **common)
    if e.n == 0:
        return Decision(Verdict.NEED_MORE_DATA, f"no scored outputs yet (need {p.min_samples:,})",
                        samples_needed=p.min_samples, days_needed=_days(p.min_samples, e),
                        **common)
    if t is not None:
        criteria = _sequential_criteria(e, p, t, priors, counts)
    else:
        criteria = fixed_criteria(e, p)
    quality, inferiority = criteria
    fields = {
        "pass_rate": e.effective_passed / e.n,
        "lower_bound": lower_bound(e.effective_passed, e.n, 1 - p.level, p.bound),
        "sequential_lower": quality.bound if p.sequential else None,
        "noise_floor": ((e.noise_n - e.effective_noise_passed) / e.noise_n
                        if e.noise_n else None),
        "criteria": criteria, **common,
    }
    if e.n < p.min_samples:
        needed = p.min_samples - e.n
        return Decision(
            Verdict.NEED_MORE_DATA,
            f"{e.n:,} scored outputs, fewer than the {p.min_samples:,} required",
            samples_needed=needed, days_needed=_days(needed, e), **fields,
        )
    if quality.met and inferiority.met:
        return Decision(Verdict.PROMOTE, f"{quality.detail}; {inferiority.detail}", **fields)
    refuted = [c for c in criteria if c.refuted]
    if refuted:
        return Decision(Verdict.HOLD, "; ".join(f"{c.name}: {c.detail}" for c in refuted)
                        + ": more data would not change this", **fields)
    unmet = "; ".join(f"{c.name}: {c.detail}" for c in criteria if not c.met)
    if not project_ahead:
        return Decision(Verdict.NEED_MORE_DATA, unmet, **fields)
    if not p.sequential:
        needed = fixed_samples_needed(e, p)
        words = (f"{unmet}; the bounds do not settle it yet" if needed is not None else
                 f"{unmet}; too close to the limit to settle with any sample size")
        return Decision(Verdict.NEED_MORE_DATA, words, samples_needed=needed,
                        days_needed=_days(needed, e) if needed else None, **fields)
    pr = project(e, p, priors)
    return Decision(
        Verdict.NEED_MORE_DATA, _more_data(unmet, pr, p),
        samples_needed=pr.samples_median, days_needed=pr.days_median,
        days_needed_80=pr.days_p80, verdict_chance=pr.decided, promote_chance=pr.promote,
        **fields,
    )


def _fixed_config_problem(e: Evidence, p: Policy, priors: Priors) -> str | None:
    """The CONFIG PROBLEM rules are the same with fixed-sample decisions (always-valid bounds:
    a wrong one would block a task type for good)."""
    t = evaluate(Counts.of(e), _sequential(p), priors)
    return _config_problem(e, p, t, priors) if bool(t.schema_problem | t.judge_inconsistent) \
        else None


def _sequential(p: Policy) -> Policy:
    return replace(p, sequential=True)
