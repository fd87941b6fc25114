"""How many sampled exchanges to replay on the primary: more while the noise floor is what
keeps non-inferiority undecided, the base share after.

Non-inferiority compares the candidate's failure rate (from every sampled exchange) with the
primary's noise floor (from the replayed ones). With the task's base share of replays (10%)
the floor rests on a tenth of the data and its uncertainty dominates: the audit's candidate as
good as the primary needed ~15,700 pairs. Replaying half the sampled exchanges while the
comparison is open cuts that several-fold; once no candidate is under evaluation, or the floor
has at least as much information as the candidate's rate, the base share is enough.

    share = recommended_replay_share(pending, base=task.noise_floor_rate,
                                     evaluation=config.decision.evaluation_replay_rate)

The pipeline calls it per task type (each night, or when the report has run) with the
:class:`~shadowroute.decision.Evidence` of the candidates whose latest verdict is NEED MORE
DATA (their ``noise_*`` counts are the task type's replays). It changes no guarantee: how many
exchanges are replayed may depend on the counts so far (the tests are valid under any
allocation decided from past data).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .policy import Evidence

__all__ = ["recommended_replay_share", "replay_share"]


def replay_share(noise_n: ArrayLike, noise_failures: ArrayLike, n: ArrayLike,
                 failures: ArrayLike, *, base: float, evaluation: float) -> NDArray[np.float64]:
    """The share for one candidate under evaluation (arrays broadcast): ``evaluation`` while
    the floor's variance, ``f_r (1 - f_r) / noise_n``, exceeds the candidate's,
    ``f_c (1 - f_c) / n`` (rates smoothed by half a count), ``base`` otherwise. Never below
    ``base``."""
    noise_n, noise_failures, n, failures = (np.asarray(x, dtype=np.float64)
                                            for x in (noise_n, noise_failures, n, failures))
    floor = (noise_failures + 0.5) / (noise_n + 1)
    rate = (failures + 0.5) / (n + 1)
    floor_var = floor * (1 - floor) / np.maximum(noise_n, 1)
    rate_var = rate * (1 - rate) / np.maximum(n, 1)
    dominated = (noise_n == 0) | (floor_var > rate_var)
    return np.where(dominated, max(base, evaluation), base)


def recommended_replay_share(pending: Sequence[Evidence], *, base: float,
                             evaluation: float) -> float:
    """The task type's replay share: :func:`replay_share` for its most advanced candidate
    under evaluation (the most outputs), ``base`` when none is."""
    if not pending:
        return base
    e = max(pending, key=lambda x: x.n)
    return float(replay_share(e.noise_n, e.noise_n - e.effective_noise_passed, e.n,
                              e.n - e.effective_passed, base=base, evaluation=evaluation))
