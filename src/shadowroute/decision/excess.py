"""Always-valid evidence about the excess: how much more often the candidate fails than the
primary disagrees with itself (its noise floor), ``d = π_c - π_r``.

One test on the difference, not two bounds split by Bonferroni, and the floor's own
uncertainty stays in it (the floor is a parameter of the model, never plugged in).

The test of ``H0: d >= δ`` (``side="below"``: evidence that the excess is below ``δ``; with
``δ`` the margin, non-inferiority) and of ``H0: d <= δ`` (``side="above"``) is the e-value

    E = q(data) / sup_{θ in H0} p_θ(data)

with ``q`` a mixture over the parameters (Bayesian marginal likelihood, priors fixed in
advance) and the supremum over every null parameter: the candidate's failure rate, the
floor, and, with paired counts, how the two go together. For the true ``θ0`` in ``H0``,
``E <= q / p_θ0``, a nonnegative martingale starting at 1 (Wasserman, Ramdas & Balakrishnan
2020, "Universal inference"), so ``P(E >= 1/alpha at any time) <= alpha``: reject when
``E >= 1/alpha`` as often as you like, on growing counts.

Two models, both exact:

* **unpaired** (counts of candidate outputs and of replays): candidate and replay outcomes are
  independent Bernoulli draws. Candidates and replays answer the *same* requests, so on a
  request that is hard for both they fail together; this positive correlation is outside the
  model (the bench measures it as conservative, but it is not proven).
* **paired** (on the exchanges with both a replay and a candidate output, the four cells
  both-fail / candidate-only-fail / replay-only-fail / both-pass, plus the outputs without a
  partner): the cells are a free multinomial, so any correlation is in the model. The
  numerator mixes the independent model (weight 2/3) with the free one (1/3): when outcomes
  are independent it costs about half a nat of evidence against the unpaired test; when
  they are correlated (failures on the same hard requests) the discordant pairs carry the
  comparison and the test needs far fewer pairs.

Every function takes counts as numbers or numpy arrays that broadcast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import xlogy

from .sequences import BetaMixture, DirichletMixture, log_likelihood

__all__ = [
    "Paired", "excess_bounds", "excess_log_evalue", "excess_log_evalues", "excess_lower",
    "excess_upper",
]

Array = NDArray[np.float64]
Side = Literal["below", "above"]

INDEPENDENT_WEIGHT = 2 / 3
"""Weight of the independent model in the paired numerator."""
SAFETY = 1e-6
"""Nats added to every supremum, so that the numerical maximum is never below the true one."""
_ITERATIONS = 100
_TOLERANCE = 1e-9


def _f(value: ArrayLike) -> Array:
    return np.asarray(value, dtype=np.float64)


def _ratio(count: Array, value: Array) -> Array:
    """count / value with 0 / 0 = 0 (a zero count contributes nothing, wherever it is) and a
    value rounded below zero read as zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, count / np.maximum(value, 0.0), 0.0)


def _square(count: Array, value: Array) -> Array:
    """count / value**2, as :func:`_ratio`."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(count > 0, count / np.maximum(value, 0.0) ** 2, 0.0)


Slope = Callable[[Array, NDArray[np.intp]], tuple[Array, Array, Array]]


def _root(g: Slope, low: Array, high: Array) -> Array:
    """Where the decreasing ``g`` crosses zero in [low, high] (1-d arrays), or the end it
    stays on the wrong side of. ``g(x, index)`` returns, for the elements ``index``, the value
    at ``x``, its derivative and a scale (the sum of the absolute values of its terms).

    A bracket that only shrinks; a Newton step when it lands inside it and is at most half
    the step before ("rtsafe", Press et al.), a bisection otherwise. An element stops when
    its value is below 1e-9 of its scale (an error in the maximised log-likelihood far below
    1e-9 nats) or its bracket is below 1e-12, so the work is what each element needs."""
    every = np.arange(low.size)
    with np.errstate(invalid="ignore"):
        at_low = g(low, every)[0] <= 0  # nan (inf - inf at an end) is neither
        at_high = g(high, every)[0] >= 0
    x = np.where(at_low, low, np.where(at_high, high, 0.5 * (low + high)))
    active = np.flatnonzero(~(at_low | at_high))
    lo, hi, xa = low[active], high[active], x[active]
    previous = hi - lo
    for _ in range(_ITERATIONS):
        if not active.size:
            break
        value, slope, scale = g(xa, active)
        lo = np.where(value > 0, xa, lo)
        hi = np.where(value < 0, xa, hi)
        width = hi - lo
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = xa - value / slope
            slow = np.abs(2 * value) > np.abs(previous * slope)
        step = np.isfinite(newton) & (newton > lo) & (newton < hi) & ~slow
        previous = np.where(step, np.abs(newton - xa), width)
        done = (value == 0) | (np.abs(value) <= _TOLERANCE * scale) | (width <= 1e-12)
        xa = np.where(done, xa, np.where(step, newton, 0.5 * (lo + hi)))
        x[active] = xa
        keep = ~done
        active, lo, hi, xa, previous = (y[keep] for y in (active, lo, hi, xa, previous))
    return x


@dataclass(frozen=True, slots=True)
class Paired:
    """Paired outcomes: on exchanges with both a candidate output and a replay, ``both``
    failed, ``candidate`` failed alone, ``replay`` failed alone, ``neither`` failed; plus the
    outputs without a partner: candidate failures ``lone_c_fail`` of ``lone_c``, replay
    failures ``lone_r_fail`` of ``lone_r``. Fields are numbers or arrays."""

    both: ArrayLike
    candidate: ArrayLike
    replay: ArrayLike
    neither: ArrayLike
    lone_c_fail: ArrayLike
    lone_c: ArrayLike
    lone_r_fail: ArrayLike
    lone_r: ArrayLike

    @classmethod
    def from_totals(cls, n: ArrayLike, failures: ArrayLike, noise_n: ArrayLike,
                    noise_failures: ArrayLike, pairs: ArrayLike, both: ArrayLike,
                    candidate: ArrayLike, replay: ArrayLike) -> Paired:
        """From the totals of :class:`~shadowroute.decision.Evidence` and the paired counts."""
        n, failures, noise_n, noise_failures, pairs, both, candidate, replay = (
            _f(x) for x in (n, failures, noise_n, noise_failures, pairs, both, candidate,
                            replay))
        neither = pairs - both - candidate - replay
        lone_c, lone_c_fail = n - pairs, failures - both - candidate
        lone_r, lone_r_fail = noise_n - pairs, noise_failures - both - replay
        if (np.any(neither < 0) or np.any(lone_c_fail < 0) or np.any(lone_c_fail > lone_c)
                or np.any(lone_r_fail < 0) or np.any(lone_r_fail > lone_r)
                or np.any(np.minimum(both, np.minimum(candidate, replay)) < 0)):
            raise ValueError("inconsistent paired counts: the pairs must be among the "
                             "candidate's outputs and the replays, failures among them")
        return cls(both, candidate, replay, neither, lone_c_fail, lone_c, lone_r_fail, lone_r)


def _numerator_unpaired(fc: Array, nc: Array, fr: Array, nr: Array, prior_c: BetaMixture,
                        prior_r: BetaMixture) -> Array:
    return prior_c.log_marginal(fc, nc) + prior_r.log_marginal(fr, nr)


# ----------------------------------------------------------------------------- unpaired


def _flat(*arrays: ArrayLike) -> tuple[tuple[int, ...], list[Array]]:
    values = [_f(a) for a in arrays]
    shape = np.broadcast_shapes(*(v.shape for v in values))
    return shape, [np.broadcast_to(v, shape).ravel() for v in values]


def _unpaired_boundary(fc: ArrayLike, nc: ArrayLike, fr: ArrayLike, nr: ArrayLike,
                       delta: ArrayLike, point: bool = False) -> tuple[Array, ...]:
    """max over π_r of the log-likelihood with π_c = π_r + δ, and its derivative in δ (the
    profile's slope: > 0 means the unconstrained maximum has d > δ); with ``point``, π_r."""
    shape, (fc, nc, fr, nr, delta) = _flat(fc, nc, fr, nr, delta)
    sc, sr = nc - fc, nr - fr

    def g(x: Array, i: NDArray[np.intp]) -> tuple[Array, Array]:
        pc = x + delta[i]
        value = (_ratio(fc[i], pc) - _ratio(sc[i], 1 - pc) + _ratio(fr[i], x)
                 - _ratio(sr[i], 1 - x))
        slope = -(_square(fc[i], pc) + _square(sc[i], 1 - pc) + _square(fr[i], x)
                  + _square(sr[i], 1 - x))
        scale = (_ratio(fc[i], pc) + _ratio(sc[i], 1 - pc) + _ratio(fr[i], x)
                 + _ratio(sr[i], 1 - x))
        return value, slope, scale

    x = _root(g, np.maximum(0.0, -delta), np.minimum(1.0, 1.0 - delta))
    pc = x + delta
    value = log_likelihood(fc, nc, np.maximum(pc, 0.0)) + log_likelihood(fr, nr, x)
    slope = _ratio(fc, pc) - _ratio(sc, 1 - pc)
    # Held at an end that moves with δ (π_c = 0 at x = -δ, or π_c = 1 at x = 1 - δ), the
    # profile moves with x = ∓δ while π_c stays put: its slope is the replays' side alone.
    held = ((delta < 0) & (x <= -delta + 1e-12)) | ((delta > 0) & (x >= 1 - delta - 1e-12))
    slope = np.where(held, _ratio(sr, 1 - x) - _ratio(fr, x), slope)
    out = (value, slope, x) if point else (value, slope)
    return tuple(y.reshape(shape) for y in out)


# ----------------------------------------------------------------------------- paired


def _paired_loglik(p: Paired, u: Array, v: Array, delta: Array) -> Array:
    """Full log-likelihood at π_r = u, replay-only failure v (both = u - v, candidate-only
    = v + δ, neither = 1 - u - v - δ, π_c = u + δ)."""
    both, cand, rep, neither = (_f(x) for x in (p.both, p.candidate, p.replay, p.neither))
    value = (xlogy(both, np.maximum(u - v, 0.0)) + xlogy(cand, np.maximum(v + delta, 0.0))
             + xlogy(rep, v) + xlogy(neither, np.maximum(1 - u - v - delta, 0.0)))
    return value + log_likelihood(p.lone_c_fail, p.lone_c, u + delta) + \
        log_likelihood(p.lone_r_fail, p.lone_r, u)


def _paired_boundary(p: Paired, delta: ArrayLike) -> tuple[Array, Array]:
    """max of the full log-likelihood with d = δ, and its derivative in δ (the profile's
    slope; only its sign is used: > 0 means the unconstrained maximum has d > δ)."""
    shape, fields = _flat(p.both, p.candidate, p.replay, p.neither, p.lone_c_fail, p.lone_c,
                          p.lone_r_fail, p.lone_r, delta)
    a, b, c, d, fcu, ncu, fru, nru, delta = fields
    value, u, v = _paired_max(*fields)
    scu = ncu - fcu
    d_delta = (_ratio(b, v + delta) - _ratio(d, 1 - u - v - delta)
               + _ratio(fcu, u + delta) - _ratio(scu, 1 - u - delta))
    # The partial derivative is the profile's slope only while no constraint that moves with
    # δ holds the maximum (the envelope theorem): v >= -δ (the candidate-only cell at 0),
    # u >= -δ, u <= 1 - δ, v <= 1 - u - δ (the "neither" cell at 0). Where one does (small
    # counts with empty cells: common), the slope is the profile's own difference quotient:
    # the profile is concave in δ (the likelihood is concave in (u, v, δ) on a polytope).
    edge = 1e-9
    moving = (((delta < 0) & ((v <= -delta + edge) | (u <= -delta + edge)))
              | ((delta > 0) & (u >= 1 - delta - edge)) | (v >= 1 - u - delta - edge))
    if moving.any():
        at = np.flatnonzero(moving)
        step = 1e-6
        high, low = np.minimum(delta[at] + step, 1.0), np.maximum(delta[at] - step, -1.0)
        rest = [f[at] for f in fields[:-1]]
        with np.errstate(invalid="ignore"):
            d_delta[at] = (_paired_max(*rest, high)[0] - _paired_max(*rest, low)[0]) / (high - low)
    return value.reshape(shape), d_delta.reshape(shape)


def _paired_max(a: Array, b: Array, c: Array, d: Array, fcu: Array, ncu: Array, fru: Array,
                nru: Array, delta: Array) -> tuple[Array, Array, Array]:
    """(max of the full log-likelihood with d = δ, and the u and v where it is), for flat
    arrays. The log-likelihood is concave in (u, v), so is its profile in u: nested Newton
    steps on the profile's slope and, inside, on the slope in v."""
    scu, sru = ncu - fcu, nru - fru
    v_floor = np.maximum(0.0, -delta)

    def inner(u: Array, i: NDArray[np.intp]) -> Array:
        ai, bi, ci, di, dl = a[i], b[i], c[i], d[i], delta[i]

        def g(v: Array, j: NDArray[np.intp]) -> tuple[Array, Array]:
            uj, dj = u[j], dl[j]
            rest = 1 - uj - v - dj
            value = (-_ratio(ai[j], uj - v) + _ratio(bi[j], v + dj) + _ratio(ci[j], v)
                     - _ratio(di[j], rest))
            slope = -(_square(ai[j], uj - v) + _square(bi[j], v + dj) + _square(ci[j], v)
                      + _square(di[j], rest))
            scale = (_ratio(ai[j], uj - v) + _ratio(bi[j], v + dj) + _ratio(ci[j], v)
                     + _ratio(di[j], rest))
            return value, slope, scale

        floor = v_floor[i]
        return _root(g, floor, np.maximum(np.minimum(u, 1 - u - dl), floor))

    def outer(u: Array, i: NDArray[np.intp]) -> tuple[Array, Array]:
        v = inner(u, i)
        ai, bi, ci, di, dl = a[i], b[i], c[i], d[i], delta[i]
        rest = 1 - u - v - dl
        value = (_ratio(ai, u - v) - _ratio(di, rest) + _ratio(fcu[i], u + dl)
                 - _ratio(scu[i], 1 - u - dl) + _ratio(fru[i], u) - _ratio(sru[i], 1 - u))
        scale = (_ratio(ai, u - v) + _ratio(di, rest) + _ratio(fcu[i], u + dl)
                 + _ratio(scu[i], 1 - u - dl) + _ratio(fru[i], u) + _ratio(sru[i], 1 - u))
        uu = -(_square(ai, u - v) + _square(di, rest) + _square(fcu[i], u + dl)
               + _square(scu[i], 1 - u - dl) + _square(fru[i], u) + _square(sru[i], 1 - u))
        uv = _square(ai, u - v) - _square(di, rest)
        vv = -(_square(ai, u - v) + _square(bi, v + dl) + _square(ci, v) + _square(di, rest))
        # The slope of the profile: the envelope theorem while v is inside its range; when v
        # is held at an upper end that moves with u (v <= u, v <= 1 - u - δ), the end's
        # slope too (dv/du = +1 or -1).
        with np.errstate(invalid="ignore"):
            lv = -_ratio(ai, u - v) + _ratio(bi, v + dl) + _ratio(ci, v) - _ratio(di, rest)
            pushed = lv > 0
        by_u = pushed & (v >= u) & (u <= 1 - u - dl)
        by_rest = pushed & (v >= 1 - u - dl) & ~by_u
        direction = np.where(by_u, 1.0, np.where(by_rest, -1.0, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = direction != 0
            value = np.where(bound, value + direction * lv, value)
            scale = np.where(bound, scale + np.abs(lv), scale)
            slope = np.where(bound, uu + 2 * direction * uv + vv,
                             uu - np.where(vv < 0, uv * uv / vv, 0.0))
        return value, slope, scale

    u = _root(outer, np.maximum(0.0, -delta), np.minimum(1.0, 1.0 - delta))
    v = inner(u, np.arange(u.size))
    return _paired_loglik(Paired(a, b, c, d, fcu, ncu, fru, nru), u, v, delta), u, v


def _numerator_paired(p: Paired, prior_c: BetaMixture, prior_r: BetaMixture,
                      cells: DirichletMixture) -> Array:
    both, cand, rep, neither = (_f(x) for x in (p.both, p.candidate, p.replay, p.neither))
    fc = both + cand + _f(p.lone_c_fail)
    nc = both + cand + rep + neither + _f(p.lone_c)
    fr = both + rep + _f(p.lone_r_fail)
    nr = both + cand + rep + neither + _f(p.lone_r)
    independent = _numerator_unpaired(fc, nc, fr, nr, prior_c, prior_r)
    free = (cells.log_marginal(both, cand, rep, neither)
            + prior_c.log_marginal(p.lone_c_fail, p.lone_c)
            + prior_r.log_marginal(p.lone_r_fail, p.lone_r))
    return np.logaddexp(math.log(INDEPENDENT_WEIGHT) + independent,
                        math.log(1 - INDEPENDENT_WEIGHT) + free)


# ----------------------------------------------------------------------------- public

_FIELDS = ("both", "candidate", "replay", "neither", "lone_c_fail", "lone_c", "lone_r_fail",
           "lone_r")


def excess_log_evalues(
    fc: ArrayLike, nc: ArrayLike, fr: ArrayLike, nr: ArrayLike, delta: ArrayLike,
    prior_c: BetaMixture, prior_r: BetaMixture, *, paired: Paired | None = None,
    cells: DirichletMixture | None = None, threshold: float | None = None,
) -> tuple[Array, Array]:
    """(log E against ``H0: d >= δ``, log E against ``H0: d <= δ``) for ``fc`` candidate
    failures of ``nc`` and ``fr`` replay failures of ``nr``; with ``paired`` (whose totals must
    be these) the paired model. ``-inf`` where the maximum-likelihood excess is itself in
    ``H0`` (the test cannot reject there).

    With ``paired`` and a ``threshold``, elements whose e-value certainly stays below it are
    ``-inf`` without the exact supremum: the likelihood at two points of the boundary (the
    unpaired optimum with independent outcomes; the observed cells moved apart to ``δ``)
    bounds the supremum from below, so the numerator minus it bounds log E from above.
    Comparisons with ``threshold`` are the same, much faster."""
    delta = _f(delta)
    if paired is None:
        fc, nc, fr, nr = (_f(x) for x in (fc, nc, fr, nr))
        numerator = _numerator_unpaired(fc, nc, fr, nr, prior_c, prior_r)
        supremum, slope = _unpaired_boundary(fc, nc, fr, nr, delta)
        return _evalues(numerator, supremum, slope)
    numerator = _numerator_paired(paired, prior_c, prior_r, cells or DirichletMixture.tuned(0.025))
    if threshold is None:
        return _evalues(numerator, *_paired_boundary(paired, delta))
    fields = [_f(getattr(paired, name)) for name in _FIELDS]
    shape = np.broadcast_shapes(numerator.shape, np.shape(delta), *(f.shape for f in fields))
    fields = [np.broadcast_to(f, shape) for f in fields]
    delta, numerator = np.broadcast_to(delta, shape), np.broadcast_to(numerator, shape)
    both, cand, rep, neither, lcf, lc, lrf, lr = fields
    pairs = both + cand + rep + neither
    fc, nc = both + cand + lcf, pairs + lc
    fr, nr = both + rep + lrf, pairs + lr
    whole = Paired(*fields)
    # Two points of the boundary: the unpaired optimum with independent outcomes
    # (p10 - p01 = π_c - π_r = δ), and the observed cells with p10 and p01 moved apart to δ.
    _, _, floor = _unpaired_boundary(fc, nc, fr, nr, delta, point=True)
    lower = _paired_loglik(whole, floor, (1 - floor - delta) * floor, delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = (delta - (cand - rep) / pairs) / 2
        v = rep / pairs - shift
        u = both / pairs + v
    usable = (pairs > 0) & (v >= np.maximum(0.0, -delta)) & (v + delta >= 0)
    if usable.any():
        moved = _paired_loglik(whole, np.where(usable, u, 0.5), np.where(usable, v, 0.0), delta)
        with np.errstate(invalid="ignore"):
            lower = np.where(usable & (moved > lower), moved, lower)
    need = numerator - lower - SAFETY >= threshold
    below, above = np.full(shape, -np.inf), np.full(shape, -np.inf)
    if need.any():
        part = Paired(*(f[need] for f in fields))
        below[need], above[need] = _evalues(numerator[need],
                                            *_paired_boundary(part, delta[need]))
    return below, above


def _evalues(numerator: Array, supremum: Array, slope: Array) -> tuple[Array, Array]:
    # H0 "d >= δ": its supremum is the boundary's when the profile likelihood falls beyond δ
    # (slope <= 0); otherwise the unconstrained maximum lies in H0 and nothing is rejected.
    value = np.where(np.isfinite(supremum), numerator - supremum - SAFETY, -np.inf)
    return np.where(slope > 0, -np.inf, value), np.where(slope < 0, -np.inf, value)


def excess_log_evalue(
    fc: ArrayLike, nc: ArrayLike, fr: ArrayLike, nr: ArrayLike, delta: ArrayLike, side: Side,
    prior_c: BetaMixture, prior_r: BetaMixture, *, paired: Paired | None = None,
    cells: DirichletMixture | None = None,
) -> Array:
    """log E against ``H0: d >= δ`` (``side="below"``) or ``H0: d <= δ`` (``"above"``); see
    :func:`excess_log_evalues`."""
    below, above = excess_log_evalues(fc, nc, fr, nr, delta, prior_c, prior_r, paired=paired,
                                      cells=cells)
    return below if side == "below" else above


def excess_bounds(fc: int, nc: int, fr: int, nr: int, alpha: float, prior_c: BetaMixture,
                  prior_r: BetaMixture, *, paired: Paired | None = None,
                  cells: DirichletMixture | None = None) -> tuple[float, float]:
    """Always-valid (lower, upper) bounds of the excess for scalar counts: where the tests
    stop rejecting ``H0: d <= δ`` and start rejecting ``H0: d >= δ``, found on vectorised grids
    of δ (rounded outwards, resolution ~5e-5)."""
    level = math.log(1 / alpha)

    def tests(deltas: Array) -> tuple[Array, Array]:
        below, above = excess_log_evalues(fc, nc, fr, nr, deltas, prior_c, prior_r,
                                          paired=paired, cells=cells, threshold=level)
        return below >= level, above >= level

    grid = np.linspace(-1.0 + 1e-9, 1.0 - 1e-9, 201)
    below, above = tests(grid)
    # "below" rejects for every δ above the upper bound; "above" for every δ below the lower.
    upper = 1.0
    if below.any():
        first = int(np.argmax(below))
        upper = float(grid[0])
        if first:
            fine = np.linspace(grid[first - 1], grid[first], 201)
            upper = float(fine[int(np.argmax(tests(fine)[0]))])
    lower = -1.0
    if above.any():
        last = len(grid) - 1 - int(np.argmax(above[::-1]))
        lower = float(grid[-1])
        if last < len(grid) - 1:
            fine = np.linspace(grid[last], grid[last + 1], 201)
            hits = tests(fine)[1]
            lower = float(fine[len(fine) - 1 - int(np.argmax(hits[::-1]))])
    return lower, upper


def excess_upper(fc: int, nc: int, fr: int, nr: int, alpha: float, prior_c: BetaMixture,
                 prior_r: BetaMixture, *, paired: Paired | None = None,
                 cells: DirichletMixture | None = None) -> float:
    """Always-valid upper bound of the excess (see :func:`excess_bounds`)."""
    return excess_bounds(fc, nc, fr, nr, alpha, prior_c, prior_r, paired=paired, cells=cells)[1]


def excess_lower(fc: int, nc: int, fr: int, nr: int, alpha: float, prior_c: BetaMixture,
                 prior_r: BetaMixture, *, paired: Paired | None = None,
                 cells: DirichletMixture | None = None) -> float:
    """Always-valid lower bound of the excess (see :func:`excess_bounds`)."""
    return excess_bounds(fc, nc, fr, nr, alpha, prior_c, prior_r, paired=paired, cells=cells)[0]
