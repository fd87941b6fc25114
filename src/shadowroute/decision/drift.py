"""Drift: does a promoted model still hold up on the reverse-shadow pairs?

Once a task type is promoted, a slice of its requests is also answered by the primary it
replaced; those pairs are scored exactly like shadow pairs (the primary's answer is the
reference).

**Change detection** (``check_drift(e, policy, nights=[(n, passed), ...], baseline=(n,
passed))``: the nightly counts since the promotion, oldest first, and the candidate's shadow
counts that led to the promotion): a CUSUM e-detector. The in-control failure rate is the
least promotion allowed and the evaluation showed,

    f0 = min(1 - required_quality, floor_upper + margin, baseline_upper + margin)

(either criterion missed is a drift, and so is failing ``margin`` more often than the
candidate did while it was evaluated; the floor and the baseline at their upper bounds, so an
uncertain one makes the detector alarm later, never sooner). For each of three alternatives
``f1`` (log-odds +0.75, +1.25, +2: for f0 = 5%, 10 / 15 / 26% failures) the statistic
``W_t = max(0, W_{t-1} + log LR_t(f1 : f0))`` restarts at zero whenever the evidence of a drop
runs out, so a drop is caught as fast a year after the promotion as a week after it (a
cumulative test needs ever more evidence as the good nights pile up). DEMOTE RECOMMENDED when
``max W >= log(3 * H / (a / 2))`` with ``a = drift_false_alarm`` and
``H = drift_horizon_days``.

**Guarantee**: ``exp(W_t)`` is the largest, over start nights ``s``, of the likelihood ratio
from ``s`` to ``t``; each one is a nonnegative supermartingale from its start while the true
failure rate is at most ``f0`` every night (Ville's inequality: it ever reaches ``c`` with
chance at most ``1/c``). A union over the ``H`` start nights and 3 alternatives bounds the
chance of a false alarm within ``H`` nights by ``a / 2``, and the floor's and the baseline's
upper bounds (at ``a / 4`` each) miss with chance at most ``a / 2``: a model that keeps the
failure rate it had when evaluated, and still meets the bar, is flagged within ``H`` nights
with chance at most ``a``; beyond ``H`` nights the chance grows by ``a / 2`` per ``H``
nights. **Not covered**: a drop smaller than the first alternative is detected slowly or not
at all; a model whose rate creeps up slowly trips the detector only once it is past ``f0``.

Without ``nights`` (a one-off check; the report always passes them) the check reads one total:
DEMOTE RECOMMENDED when the pass rate's *upper* bound is below ``required_quality`` or the
excess's *lower* bound is above ``margin``; HOLDS when both promotion criteria are met on the
reverse pairs alone; NEED MORE DATA otherwise. A drop after a long good run takes that check
months to see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .bounds import lower_bound, sequential_lower, sequential_upper, upper_bound
from .policy import Evidence, Policy
from .sequences import BetaMixture, rate_upper

__all__ = ["DriftCheck", "DriftVerdict", "check_drift", "drift_reference", "drift_statistic",
           "drift_threshold"]

SHIFTS = (0.75, 1.25, 2.0)
"""Log-odds shifts of the alternatives the detector watches for."""


class DriftVerdict(StrEnum):
    HOLDS = "HOLDS"
    NEED_MORE_DATA = "NEED MORE DATA"
    DEMOTE = "DEMOTE RECOMMENDED"


@dataclass(frozen=True, slots=True)
class DriftCheck:
    verdict: DriftVerdict
    reason: str
    pass_rate: float | None = None
    upper_bound: float | None = None
    """Upper bound of the pass rate (total check: DEMOTE RECOMMENDED when below
    ``required_quality``)."""
    lower_bound: float | None = None
    """Lower bound of the pass rate (total check: HOLDS needs it at ``required_quality``)."""
    noise_floor: float | None = None
    statistic: float | None = None
    """Change detection: the detector's largest log statistic (DEMOTE at ``threshold``)."""
    threshold: float | None = None
    alarm_night: int | None = None
    """The first night (1 = the first since promotion) the detector alarmed."""
    change_night: int | None = None
    """Where the evidence of the drop starts (the detector's last restart before the alarm)."""
    reference: float | None = None
    """The lowest pass rate promotion allowed, ``1 - f0``."""
    recent_pass_rate: float | None = None
    """Since ``change_night`` when alarmed, over the last 14 nights otherwise."""


def drift_reference(p: Policy, noise_n: int = 0, noise_failures: int = 0,
                    baseline_n: int = 0, baseline_failures: int = 0) -> float:
    """The in-control failure rate ``f0`` (see the module docstring)."""
    f0 = 1.0 - p.required_quality
    for n, failures in ((noise_n, noise_failures), (baseline_n, baseline_failures)):
        if n:
            upper = float(rate_upper(failures, n, p.drift_false_alarm / 4,
                                     BetaMixture.jeffreys()))
            f0 = min(f0, upper + p.margin)
    return min(max(f0, 1e-6), 1 - 1e-6)


def drift_threshold(p: Policy) -> float:
    return math.log(len(SHIFTS) * p.drift_horizon_days / (p.drift_false_alarm / 2))


def _alternatives(f0: float) -> NDArray[np.float64]:
    logit = math.log(f0 / (1 - f0))
    return np.array([1 / (1 + math.exp(-(logit + s))) for s in SHIFTS])


def drift_statistic(failures: ArrayLike, n: ArrayLike, f0: float) -> tuple[
        NDArray[np.float64], NDArray[np.int64]]:
    """The detector over nights (last axis): (max over alternatives of ``W_t``, the night
    index where the largest one last restarted). Arrays of any leading shape."""
    fails, total = np.asarray(failures, dtype=np.float64), np.asarray(n, dtype=np.float64)
    f1 = _alternatives(f0)
    up, down = np.log(f1 / f0), np.log((1 - f1) / (1 - f0))
    shape = np.broadcast_shapes(fails.shape, total.shape)
    fails, total = np.broadcast_to(fails, shape), np.broadcast_to(total, shape)
    w = np.zeros(shape[:-1] + (len(SHIFTS),))
    start = np.zeros(shape[:-1] + (len(SHIFTS),), dtype=np.int64)
    best = np.empty(shape)
    origin = np.empty(shape, dtype=np.int64)
    for t in range(shape[-1]):
        step = fails[..., t, None] * up + (total[..., t, None] - fails[..., t, None]) * down
        w = w + step
        reset = w <= 0
        w = np.where(reset, 0.0, w)
        start = np.where(reset, t + 1, start)
        j = w.argmax(axis=-1)
        best[..., t] = np.take_along_axis(w, j[..., None], axis=-1)[..., 0]
        origin[..., t] = np.take_along_axis(start, j[..., None], axis=-1)[..., 0]
    return best, origin


def _detect(e: Evidence, p: Policy, nights: Sequence[tuple[int, int]],
            baseline: tuple[int, int] | None) -> DriftCheck:
    n = np.array([night[0] for night in nights], dtype=np.float64)
    passed = np.array([night[1] for night in nights], dtype=np.float64)
    if np.any(passed < 0) or np.any(passed > n):
        raise ValueError("each night needs 0 <= passed <= n")
    total, total_passed = int(n.sum()), int(passed.sum())
    noise_failures = e.noise_n - e.effective_noise_passed
    noise = noise_failures / e.noise_n if e.noise_n else None
    if total == 0:
        return DriftCheck(DriftVerdict.NEED_MORE_DATA,
                          "no scored reverse-shadow pairs since the promotion yet",
                          noise_floor=noise)
    base_n, base_passed = baseline if baseline is not None else (0, 0)
    if not 0 <= base_passed <= base_n:
        raise ValueError("the baseline needs 0 <= passed <= n")
    f0 = drift_reference(p, e.noise_n, noise_failures, base_n, base_n - base_passed)
    threshold = drift_threshold(p)
    stat, origin = drift_statistic(n - passed, n, f0)
    alarmed = np.flatnonzero(stat >= threshold)
    figures = {"pass_rate": total_passed / total, "noise_floor": noise,
               "statistic": float(stat.max()), "threshold": threshold, "reference": 1 - f0}
    guarantee = (f"a model still passing {1 - f0:.1%} or more is flagged by mistake with "
                 f"chance at most {p.drift_false_alarm:.0%} in {p.drift_horizon_days:,} days")
    if alarmed.size:
        at = int(alarmed[0])
        since = int(origin[at])
        n_since, passed_since = n[since:at + 1].sum(), passed[since:at + 1].sum()
        recent = float(passed_since / n_since) if n_since else None
        return DriftCheck(
            DriftVerdict.DEMOTE,
            f"quality dropped: {int(passed_since):,} of {int(n_since):,} reverse-shadow pairs "
            f"passed ({recent:.1%}) from night {since + 1} to night {at + 1} after the "
            f"promotion, against {1 - f0:.1%} needed; {guarantee}",
            alarm_night=at + 1, change_night=since + 1, recent_pass_rate=recent, **figures)
    last = slice(max(0, len(n) - 14), len(n))
    recent_n = n[last].sum()
    recent = float(passed[last].sum() / recent_n) if recent_n else None
    if total < p.min_samples:
        return DriftCheck(
            DriftVerdict.NEED_MORE_DATA,
            f"{total:,} reverse-shadow pairs since the promotion, pass rate "
            f"{total_passed / total:.1%}: too few to tell yet (watching for a drop below "
            f"{1 - f0:.1%})", recent_pass_rate=recent, **figures)
    return DriftCheck(
        DriftVerdict.HOLDS,
        f"no drop detected in {total:,} reverse-shadow pairs over {len(n)} nights (pass rate "
        f"{total_passed / total:.1%}, last 14 nights "
        f"{'–' if recent is None else f'{recent:.1%}'}; watching for a drop below "
        f"{1 - f0:.1%}); {guarantee}", recent_pass_rate=recent, **figures)


# ----------------------------------------------------------------------------- one total


def _upper(successes: int, n: int, alpha: float, p: Policy) -> float:
    if p.sequential:
        return sequential_upper(successes, n, alpha)
    return upper_bound(successes, n, 1 - alpha, p.bound)


def _lower(successes: int, n: int, alpha: float, p: Policy) -> float:
    if p.sequential:
        return sequential_lower(successes, n, alpha)
    return lower_bound(successes, n, 1 - alpha, p.bound)


def _total(e: Evidence, p: Policy) -> DriftCheck:
    if e.n == 0:
        return DriftCheck(DriftVerdict.NEED_MORE_DATA,
                          "no scored reverse-shadow pairs since the promotion yet")
    passed, noise_passed = e.effective_passed, e.effective_noise_passed
    rate = passed / e.n
    noise = (e.noise_n - noise_passed) / e.noise_n if e.noise_n else None
    alpha = p.alpha
    lower = _lower(passed, e.n, alpha, p)
    figures: dict[str, float | None] = {"pass_rate": rate, "lower_bound": lower,
                                        "noise_floor": noise}
    if not p.sequential and e.n < p.min_samples:
        return DriftCheck(DriftVerdict.NEED_MORE_DATA,
                          f"{e.n:,} reverse-shadow pairs, fewer than the {p.min_samples:,} "
                          "required with fixed-sample bounds", **figures)
    upper = _upper(passed, e.n, alpha, p)
    figures["upper_bound"] = upper
    share = alpha / 2 if e.noise_n else alpha
    failures, noise_failures = e.n - passed, e.noise_n - noise_passed
    fail_lower = _lower(failures, e.n, share, p)
    fail_upper = _upper(failures, e.n, share, p)
    noise_upper = _upper(noise_failures, e.noise_n, share, p) if e.noise_n else 0.0
    noise_lower = _lower(noise_failures, e.noise_n, share, p) if e.noise_n else 0.0
    floor = f"the primary's noise floor {noise:.1%}" if noise is not None else \
        "a noise floor taken as 0"
    failing = []
    if upper < p.required_quality:
        failing.append(f"quality: pass rate {rate:.1%}, upper bound {upper:.1%} < required "
                       f"{p.required_quality:.1%}")
    excess = fail_lower - noise_upper
    if excess > p.margin:
        failing.append(f"non-inferiority: fails {1 - rate:.1%} vs {floor}; the excess's lower "
                       f"bound {excess:+.1%} > margin {p.margin:.1%}")
    if failing:
        return DriftCheck(DriftVerdict.DEMOTE, "; ".join(failing), **figures)
    excess_up = fail_upper - noise_lower
    if lower >= p.required_quality and excess_up <= p.margin:
        return DriftCheck(
            DriftVerdict.HOLDS,
            f"pass rate {rate:.1%}, lower bound {lower:.1%} >= required "
            f"{p.required_quality:.1%}; fails {1 - rate:.1%} vs {floor}; the excess's upper "
            f"bound {excess_up:+.1%} <= margin {p.margin:.1%}", **figures)
    return DriftCheck(
        DriftVerdict.NEED_MORE_DATA,
        f"{e.n:,} reverse-shadow pairs, pass rate {rate:.1%}: the bounds neither confirm nor "
        "refute the promotion yet", **figures)


def check_drift(e: Evidence, p: Policy, *, nights: Sequence[tuple[int, int]] | None = None,
                baseline: tuple[int, int] | None = None) -> DriftCheck:
    """The drift verdict of a promoted model.

    With ``nights`` (counted reverse-shadow pairs and passes per night since the promotion,
    oldest first, a night without pairs as (0, 0)): change detection; ``e`` then only gives
    the noise floor (``noise_n``, ``noise_passed``), and ``baseline`` is (counted, passed) of
    the candidate's shadow pairs up to its promotion. Without ``nights``: the check of the
    totals ``e.n`` / ``e.passed`` (see the module docstring)."""
    if nights is not None:
        return _detect(e, p, nights, baseline)
    return _total(e, p)
