"""Where shadow money goes: each candidate's share of its task's sampled calls.

A candidate is called on a *share* of the calls its task type samples, drawn independently of
the request:

* undecided, still short of ``min_samples``: 1 (every candidate gets its first look);
* undecided with enough outputs: ``chance / FULL_AT`` clipped to ``[floor, 1]``, where
  ``chance`` (:func:`pass_chance`) is the posterior probability that it meets both bars; a
  candidate at least as likely as not to pass keeps every sampled call, one that is unlikely
  to ever be promoted costs only the floor until its HOLD is shown;
* settled (PROMOTE, or HOLD shown): ``[decision] maintenance_rate``;
* retired by hand (``shadowroute retire``): 0, until the primary changes.

This is Thompson sampling's idea applied to "passes the bar" rather than "is the best": the
money follows the chance that one more output brings a promotion, and no candidate is ever
starved below the floor, so a wrong early impression is corrected by later data.

**Why the decisions stay valid.** The share of a candidate is fixed by the last report (past
data only) and the draw that applies it is independent of the request and of the outcome. So
each stored output is, given the past, a draw from the same outcome distribution as an output
that was not kept: the counts grow more slowly, they are not tilted. The always-valid tests
(:mod:`.sequences`, :mod:`.excess`) are nonnegative (super)martingales in the number of
*observed* outcomes, and a stopping or thinning rule that depends only on the past is an
optional-sampling step that keeps them so: ``P(wrong PROMOTE ever) <= level`` holds under any
such allocation. ``bench/decision_sim.py --only allocation`` and
``tests/decision/test_allocation.py`` measure it. What would break it is a draw that looks at
the request (an "easy" request kept more often) or at the candidate's answer; neither is
possible here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .core import HOLD, NEED_MORE_DATA, PROMOTE, Counts, evaluate
from .policy import Evidence, Policy

__all__ = ["DRAWS", "FULL_AT", "pass_chance", "pass_chances", "shares", "simulate_shares"]

FULL_AT = 0.5
"""A candidate whose chance of passing is at least this keeps every sampled call."""
DRAWS = 4000
"""Posterior draws behind one chance (Monte Carlo error under 1%)."""
_SEED = 20261204


def pass_chances(failures: ArrayLike, n: ArrayLike, noise_failures: ArrayLike,
                 noise_n: ArrayLike, p: Policy, draws: int = DRAWS) -> NDArray[np.float64]:
    """Posterior probability (Jeffreys priors, independent) that the failure rate is below
    ``1 - required_quality`` and exceeds the noise floor's by less than ``margin``, element by
    element, from ``draws`` posterior draws. Deterministic: the draws come from a fixed seed."""
    f, nn = np.asarray(failures, dtype=np.float64), np.asarray(n, dtype=np.float64)
    rf, rn = np.asarray(noise_failures, dtype=np.float64), np.asarray(noise_n, dtype=np.float64)
    shape = np.broadcast_shapes(f.shape, nn.shape, rf.shape, rn.shape)
    f, nn, rf, rn = (np.broadcast_to(x, shape)[..., None] for x in (f, nn, rf, rn))
    rng = np.random.default_rng(_SEED)
    rate = rng.beta(f + 0.5, nn - f + 0.5, (*shape, draws))
    floor = rng.beta(rf + 0.5, rn - rf + 0.5, (*shape, draws))
    passes = (rate < 1.0 - p.required_quality) & (rate - floor < p.margin)
    return passes.mean(axis=-1)


def pass_chance(e: Evidence, p: Policy) -> float:
    """:func:`pass_chances` of one candidate's evidence (failures as the decision counts them:
    flipped judge verdicts, and unscored outputs when ``Policy.unscored_fail``)."""
    failures, n = Counts.of(e).quality_counts(p)
    return float(pass_chances(failures, n, e.noise_n - e.effective_noise_passed, e.noise_n, p))


def shares(verdict: ArrayLike, n: ArrayLike, chance: ArrayLike, p: Policy, *,
           maintenance: float, floor: float) -> NDArray[np.float64]:
    """Each candidate's share of its task's sampled calls from its last verdict (codes of
    :mod:`.core`), its counted outputs and its :func:`pass_chances`, element by element (see
    the module docstring; retirement is the caller's)."""
    code = np.asarray(verdict)
    shape = np.broadcast_shapes(code.shape, np.shape(n), np.shape(chance))
    out = np.ones(shape)
    allocated = np.broadcast_to((code == NEED_MORE_DATA) & (np.asarray(n) >= p.min_samples),
                                shape)
    wanted = np.clip(np.asarray(chance, dtype=np.float64) / FULL_AT, floor, 1.0)
    out[allocated] = np.broadcast_to(wanted, shape)[allocated]
    out[np.broadcast_to((code == PROMOTE) | (code == HOLD), shape)] = maintenance
    return out


def simulate_shares(rng: np.random.Generator, p: Policy, *, runs: int, nights: int,
                    per_night: int, fails: Sequence[float], floor: float, replays: int,
                    maintenance: float, floor_share: float,
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Nightly reports on one task type whose candidates fail at ``fails`` against a primary
    that disagrees with itself at ``floor``: ``per_night`` sampled exchanges and ``replays``
    replays a night, each candidate called on the share (:func:`shares`) the previous night's
    verdicts set (``maintenance = floor_share = 1``: every candidate on every exchange).
    Returns the night of each candidate's first PROMOTE (``inf``: none), shaped (runs,
    candidates), and the candidate outputs per run and night, shaped (runs, nights). For the
    simulation audit (``bench/decision_sim.py``) and the tests."""
    rates = np.asarray(fails, dtype=np.float64)
    k = rates.size
    n, f = np.zeros((runs, k)), np.zeros((runs, k))
    m, mf = np.zeros((runs, 1)), np.zeros((runs, 1))
    share = np.ones((runs, k))
    first = np.full((runs, k), np.inf)
    outputs = np.zeros((runs, nights))
    for night in range(1, nights + 1):
        calls = rng.binomial(per_night, share)
        n += calls
        f += rng.binomial(calls, rates)
        m += replays
        mf += rng.binomial(replays, floor, (runs, 1))
        outputs[:, night - 1] = calls.sum(axis=1)
        verdict = evaluate(Counts(n, n - f, m, m - mf), p).verdict
        first[(verdict == PROMOTE) & ~np.isfinite(first)] = night
        if maintenance < 1.0 or floor_share < 1.0:
            chance = pass_chances(f, n, mf, m, p, draws=400)
            share = shares(verdict, n, chance, p, maintenance=maintenance, floor=floor_share)
    return first, outputs
