"""The verdict rules as vectorised functions of counts: :func:`evaluate` decides one case or
a million at once. :func:`~shadowroute.decision.decide` calls it for its verdict (and adds the
words and the figures), the projection of NEED MORE DATA and ``bench/decision_sim.py`` call it
on simulated counts, so the simulation measures the rules the report applies.

Rules (sequential policies; ``level = (1 - confidence) / family_size``):

1. CONFIG PROBLEM when the always-valid lower bound (at ``level``) of the primary's schema
   failure rate reaches ``config_problem_rate`` (at least 10 checks), or that of the judge's
   flip rate reaches ``max_judge_flip_rate`` or ``1 - required_quality``, the lower (at least
   10 judged outputs).
2. NEED MORE DATA below ``min_samples`` counted outputs.
3. PROMOTE when both criteria are shown at ``level``: *quality*, the failure rate's mixture
   martingale rejects ``failure rate >= 1 - required_quality``; *non-inferiority*, the excess
   e-value (:mod:`.excess`) rejects ``excess >= margin``.
4. HOLD when either criterion is shown to fail at ``level`` (the same martingale rejects
   ``failure rate <= 1 - required_quality``, or the excess e-value rejects
   ``excess <= margin``): more data would not change it.
5. NEED MORE DATA otherwise.

A wrong PROMOTE needs the criterion that truly fails to be shown met: at most ``level`` for
each decision, over all nights (intersection-union: the two criteria need no split). A wrong
HOLD likewise. Flipped judge verdicts are failures (moved out of the passes); outputs on which
no scorer applied are failures for quality (``Policy.unscored_fail``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .excess import Paired, excess_log_evalues
from .policy import Evidence, Policy, Verdict
from .sequences import BetaMixture, DirichletMixture, rate_log_evalue, rate_lower

__all__ = [
    "CODES",
    "CONFIG_PROBLEM",
    "HOLD",
    "MIN_JUDGED",
    "MIN_SCHEMA_CHECKS",
    "NEED_MORE_DATA",
    "PROMOTE",
    "Counts",
    "Priors",
    "Tests",
    "evaluate",
    "judge_flip_limit",
]

NEED_MORE_DATA, PROMOTE, HOLD, CONFIG_PROBLEM = 0, 1, 2, 3
CODES = {NEED_MORE_DATA: Verdict.NEED_MORE_DATA, PROMOTE: Verdict.PROMOTE, HOLD: Verdict.HOLD,
         CONFIG_PROBLEM: Verdict.CONFIG_PROBLEM}
MIN_SCHEMA_CHECKS = 10
"""Schema checks of the primary needed before its failure rate can make a CONFIG PROBLEM."""
MIN_JUDGED = 10
"""Judged outputs needed before the judge's flip rate can make a CONFIG PROBLEM."""

_PAIRED_FIELDS = tuple(f.name for f in fields(Paired))
Array = NDArray[np.float64]
Bools = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Priors:
    """The mixtures of the always-valid tests, fixed in advance from the policy: failure rates
    (candidate and floor) centred on half of ``1 - required_quality``."""

    failure: BetaMixture
    floor: BetaMixture
    cells: DirichletMixture
    config: BetaMixture

    @classmethod
    def for_policy(cls, p: Policy) -> Priors:
        centre = (1.0 - p.required_quality) / 2
        return cls(BetaMixture.tuned(centre), BetaMixture.tuned(centre),
                   DirichletMixture.tuned(centre), BetaMixture.jeffreys())


@dataclass(frozen=True, slots=True)
class Counts:
    """:class:`~shadowroute.decision.Evidence` as arrays that broadcast; ``passed`` and
    ``noise_passed`` already count flipped judge verdicts as failures."""

    n: ArrayLike
    passed: ArrayLike
    noise_n: ArrayLike = 0
    noise_passed: ArrayLike = 0
    unscored: ArrayLike = 0
    judged: ArrayLike = 0
    flipped: ArrayLike = 0
    primary_checked: ArrayLike = 0
    primary_invalid: ArrayLike = 0
    paired: Paired | None = None

    @classmethod
    def of(cls, e: Evidence) -> Counts:
        paired = None
        if e.pairs is not None:
            paired = Paired.from_totals(
                e.n, e.n - e.effective_passed, e.noise_n, e.noise_n - e.effective_noise_passed,
                e.pairs, e.pairs_both_failed, e.pairs_candidate_failed, e.pairs_replay_failed)
        return cls(e.n, e.effective_passed, e.noise_n, e.effective_noise_passed, e.unscored,
                   e.judged, e.flipped, e.primary_checked, e.primary_invalid, paired)

    def quality_counts(self, p: Policy) -> tuple[Array, Array]:
        """(failures, outputs) of the quality criterion."""
        n, passed = _f(self.n), _f(self.passed)
        unscored = _f(self.unscored) if p.unscored_fail else np.zeros_like(n)
        return n - passed + unscored, n + unscored


@dataclass(frozen=True, slots=True)
class Tests:
    """What :func:`evaluate` found, element by element."""

    verdict: NDArray[np.int8]
    quality_met: Bools
    quality_refuted: Bools
    excess_met: Bools
    excess_refuted: Bools
    schema_problem: Bools
    judge_inconsistent: Bools
    quality_log_e: Array
    """log of the quality martingale at the bar (evidence either way; which way is the
    observed rate's side of the bar)."""
    excess_log_e: Array
    """log E against ``excess >= margin`` (-inf where not computed)."""


def judge_flip_limit(p: Policy) -> float:
    """The flip rate above which the judge gives no verdict: ``max_judge_flip_rate``, or
    ``1 - required_quality`` when lower (flips are failures, so beyond it no candidate could
    reach the bar: the judge, not the candidate, would decide the HOLD)."""
    return min(p.max_judge_flip_rate, 1.0 - p.required_quality)


def _f(value: ArrayLike) -> Array:
    return np.asarray(value, dtype=np.float64)


def _at_least(k: Array, n: Array, minimum: int, threshold: float, level: float,
              prior: BetaMixture) -> Bools:
    """The rate's always-valid lower bound reaches ``threshold`` (with ``minimum`` trials)."""
    result = np.zeros(np.broadcast_shapes(k.shape, n.shape), dtype=bool)
    enough = np.broadcast_to(n >= minimum, result.shape)
    if enough.any():
        kk, nn = np.broadcast_to(k, result.shape)[enough], np.broadcast_to(n, result.shape)[enough]
        result[enough] = rate_lower(kk, nn, level, prior) >= threshold
    return result


def _take(value: ArrayLike, shape: tuple[int, ...], mask: Bools) -> Array:
    return np.broadcast_to(_f(value), shape)[mask]


def evaluate(c: Counts, p: Policy, priors: Priors | None = None) -> Tests:
    """The verdict of every element (see the module docstring); sequential policies only."""
    if not p.sequential:
        raise ValueError("evaluate() decides with always-valid tests: a sequential policy")
    priors = priors or Priors.for_policy(p)
    level, threshold = p.level, math.log(1.0 / p.level)
    n, noise_n = _f(c.n), _f(c.noise_n)
    fq, nq = c.quality_counts(p)
    arrays = [n, _f(c.passed), noise_n, _f(c.noise_passed), fq, nq, _f(c.judged),
              _f(c.primary_checked)]
    if c.paired is not None:
        arrays += [_f(getattr(c.paired, name)) for name in _PAIRED_FIELDS]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))

    schema = _at_least(_f(c.primary_invalid), _f(c.primary_checked), MIN_SCHEMA_CHECKS,
                       p.config_problem_rate, level, priors.config)
    judge = _at_least(_f(c.flipped), _f(c.judged), MIN_JUDGED, judge_flip_limit(p), level,
                      priors.config)
    schema, judge = np.broadcast_to(schema, shape), np.broadcast_to(judge, shape)

    bar = 1.0 - p.required_quality
    fq, nq = np.broadcast_to(fq, shape), np.broadcast_to(nq, shape)
    quality_e = np.where(nq > 0, rate_log_evalue(fq, nq, bar, priors.failure), 0.0)
    observed = np.divide(fq, nq, out=np.full(shape, np.nan), where=nq > 0)
    quality_met = (observed < bar) & (quality_e >= threshold)
    quality_refuted = (observed > bar) & (quality_e >= threshold)

    n_b = np.broadcast_to(n, shape)
    decidable = (n_b > 0) & (n_b >= p.min_samples) & ~schema & ~judge
    excess_below = np.full(shape, -np.inf)
    excess_above = np.full(shape, -np.inf)
    if decidable.any():
        take = [_take(x, shape, decidable) for x in (n, c.passed, noise_n, c.noise_passed)]
        nc, passed, nr, noise_passed = take
        paired = None
        if c.paired is not None:
            paired = Paired(*(_take(getattr(c.paired, name), shape, decidable)
                              for name in _PAIRED_FIELDS))
        below, above = excess_log_evalues(nc - passed, nc, nr - noise_passed, nr, p.margin,
                                          priors.failure, priors.floor, paired=paired,
                                          cells=priors.cells, threshold=threshold)
        excess_below[decidable], excess_above[decidable] = below, above
    excess_met = excess_below >= threshold
    excess_refuted = excess_above >= threshold

    verdict = np.full(shape, NEED_MORE_DATA, dtype=np.int8)
    verdict[decidable & quality_met & excess_met] = PROMOTE
    verdict[decidable & ~(quality_met & excess_met) & (quality_refuted | excess_refuted)] = HOLD
    verdict[schema | judge] = CONFIG_PROBLEM
    return Tests(verdict, quality_met, quality_refuted, excess_met, excess_refuted,
                 schema.copy(), judge.copy(), quality_e, excess_below)
