"""How long until an inconclusive case gets a verdict: an honest range, not one number.

:func:`project` simulates the evidence forward: each of ``PATHS`` paths draws rates from their
posterior given the counts so far (Jeffreys prior: the candidate's failure rate, the floor,
the paired cells, the share of unscored outputs), adds the outputs and replays expected per
day, and applies the decision rules (:func:`~.core.evaluate`) on a grid of future days. The
median and the 80th percentile of the day of the first PROMOTE or HOLD are the range the
report shows, with the share of paths that reach each verdict within the horizon.

What it is not: a guarantee. It assumes today's traffic, sample and replay rates, and rates
that do not change; the uncertainty about the rates themselves is in it (so the first night's
projection is not optimistic), the uncertainty about future traffic is not. It is
deterministic for given counts (the seed comes from them).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import astuple, dataclass

import numpy as np

from .core import HOLD, PROMOTE, Counts, Priors, evaluate
from .excess import Paired
from .policy import Evidence, Policy

__all__ = ["PATHS", "Projection", "project"]

PATHS = 200
BATCHES = 40
"""Without a daily rate the projection steps in batches of outputs, at most this many."""
CHUNK = 8
"""Grid points decided per call; later ones only while some path has no verdict yet."""
_FIELDS = ("both", "candidate", "replay", "neither", "lone_c_fail", "lone_c", "lone_r_fail",
           "lone_r")


@dataclass(frozen=True, slots=True)
class Projection:
    days_median: float | None
    """Median day of the first verdict (``None``: under half the paths get one)."""
    days_p80: float | None
    """80% of the paths have a verdict by then (``None``: fewer do within the horizon)."""
    samples_median: int | None
    """More counted outputs of the candidate by the median path's verdict."""
    decided: float
    """Share of paths with PROMOTE or HOLD within the horizon."""
    promote: float
    """Share of paths whose first verdict is PROMOTE."""
    horizon_days: float | None
    """What the projection covered in days (``None`` without a daily rate)."""


def _grid(horizon: int) -> np.ndarray:
    parts = [np.arange(1, 15), np.arange(16, 31, 2), np.arange(35, 92, 7),
             np.arange(105, horizon + 1, 14), [horizon]]
    days = np.unique(np.concatenate(parts))
    return days[days <= horizon].astype(np.float64)


def _seed(e: Evidence, p: Policy) -> int:
    return zlib.crc32(repr((astuple(e), astuple(p))).encode())


def project(e: Evidence, p: Policy, priors: Priors | None = None) -> Projection:
    """Simulate the evidence forward (see the module docstring)."""
    rng = np.random.default_rng(_seed(e, p))
    per_day = e.samples_per_day if e.samples_per_day and e.samples_per_day > 0 else None
    if per_day is not None:
        steps = _grid(p.horizon_days)
        added_n = np.round(steps * per_day)
    else:
        batch = max(p.min_samples, e.n // 4, 50)
        steps = np.arange(1, BATCHES + 1, dtype=np.float64)
        added_n = steps * batch
    share = e.noise_n / e.n if e.n else 0.0
    noise_day = e.noise_per_day if e.noise_per_day is not None else (
        share * per_day if per_day is not None else None)
    added_r = np.round(steps * noise_day) if noise_day is not None else np.round(added_n * share)
    unscored_share = rng.beta(e.unscored + 0.5, e.n + 0.5, PATHS)[:, None]
    fails, noise_fails = e.n - e.effective_passed, e.noise_n - e.effective_noise_passed

    d_n = np.diff(added_n, prepend=0.0)[None, :].repeat(PATHS, axis=0)
    d_r = np.diff(added_r, prepend=0.0)[None, :].repeat(PATHS, axis=0)
    n = e.n + np.cumsum(d_n, axis=1)
    noise_n = e.noise_n + np.cumsum(d_r, axis=1)
    unscored = e.unscored + np.round(unscored_share * (n - e.n))
    paired = None
    if e.pairs is None:
        rate = rng.beta(fails + 0.5, e.n - fails + 0.5, PATHS)[:, None]
        floor = rng.beta(noise_fails + 0.5, e.noise_n - noise_fails + 0.5, PATHS)[:, None]
        new_fails = np.cumsum(rng.binomial(d_n.astype(np.int64), rate), axis=1)
        new_noise_fails = np.cumsum(rng.binomial(d_r.astype(np.int64), floor), axis=1)
    else:
        both, cand, rep = e.pairs_both_failed, e.pairs_candidate_failed, e.pairs_replay_failed
        cells = np.array([both, cand, rep, e.pairs - both - cand - rep], dtype=np.float64)
        q = rng.dirichlet(cells + 0.5, PATHS)
        d_pairs = np.minimum(d_r, d_n).astype(np.int64)  # new replays answer sampled requests
        new_cells = np.cumsum(np.stack([rng.multinomial(d_pairs[:, j], q)
                                        for j in range(d_pairs.shape[1])], axis=1), axis=1)
        lone = (d_n - d_pairs).astype(np.int64)
        lone_fails = np.cumsum(rng.binomial(lone, (q[:, 0] + q[:, 1])[:, None]), axis=1)
        lone_r = (d_r - d_pairs).astype(np.int64)
        lone_r_fails = np.cumsum(rng.binomial(lone_r, (q[:, 0] + q[:, 2])[:, None]), axis=1)
        new_fails = new_cells[..., 0] + new_cells[..., 1] + lone_fails
        new_noise_fails = new_cells[..., 0] + new_cells[..., 2] + lone_r_fails
        pairs = e.pairs + np.cumsum(d_pairs, axis=1)
        paired = Paired.from_totals(
            n, fails + new_fails, noise_n, noise_fails + new_noise_fails, pairs,
            both + new_cells[..., 0], cand + new_cells[..., 1], rep + new_cells[..., 2])
    passed, noise_passed = n - (fails + new_fails), noise_n - (noise_fails + new_noise_fails)
    verdict = np.zeros(n.shape, dtype=np.int8)
    settled = np.zeros(PATHS, dtype=bool)
    for start in range(0, len(steps), CHUNK):  # stop once every path has its verdict
        k = slice(start, start + CHUNK)
        part = None if paired is None else Paired(*(np.asarray(getattr(paired, f))[:, k]
                                                    for f in _FIELDS))
        counts = Counts(n[:, k], passed[:, k], noise_n[:, k], noise_passed[:, k],
                        unscored[:, k], e.judged, e.flipped, e.primary_checked,
                        e.primary_invalid, part)
        verdict[:, k] = evaluate(counts, p, priors).verdict
        settled |= ((verdict[:, k] == PROMOTE) | (verdict[:, k] == HOLD)).any(axis=1)
        if settled.all():
            break
    final = (verdict == PROMOTE) | (verdict == HOLD)
    has = final.any(axis=1)
    first = np.where(has, final.argmax(axis=1), -1)
    at = np.where(has, steps[np.maximum(first, 0)], np.inf)
    promote = float(np.mean(has & (verdict[np.arange(PATHS), np.maximum(first, 0)] == PROMOTE)))
    median, p80 = (float(x) for x in np.quantile(at, [0.5, 0.8], method="inverted_cdf"))
    median_n = None
    if math.isfinite(median):
        index = int(np.searchsorted(steps, median))
        median_n = max(int(added_n[min(index, len(steps) - 1)]), 1)
    unit = 1.0 if per_day is not None else None
    return Projection(
        days_median=median * unit if unit and math.isfinite(median) else None,
        days_p80=p80 * unit if unit and math.isfinite(p80) else None,
        samples_median=median_n, decided=float(np.mean(has)), promote=promote,
        horizon_days=float(p.horizon_days) if per_day is not None else None,
    )
