"""Decisions: which candidate can take over which task type, with statistics that hold up
under nightly re-runs. Pure functions of counts; :mod:`shadowroute.report` gathers the counts.

    decide(Evidence(n=400, passed=391, noise_n=100, noise_passed=98),
           Policy.for_task(config, task, family_size=6))

Modules: :mod:`.policy` (what is asked and given), :mod:`.verdict` (``decide``: the words),
:mod:`.core` (the rules, vectorised), :mod:`.sequences` and :mod:`.excess` (the always-valid
tests), :mod:`.projection` (days to a verdict), :mod:`.replays` (how many replays),
:mod:`.drift` (promoted models), :mod:`.bounds` and :mod:`.fixed` (fixed-sample bounds).
"""

from .bounds import (
    BOUND_METHODS,
    clopper_pearson_lower,
    clopper_pearson_upper,
    lower_bound,
    sequential_lower,
    sequential_upper,
    upper_bound,
    wilson_lower,
    wilson_upper,
)
from .core import Counts, Priors, Tests, evaluate
from .drift import DriftCheck, DriftVerdict, check_drift
from .excess import Paired
from .policy import Evidence, Policy, Verdict
from .projection import Projection, project
from .replays import recommended_replay_share, replay_share
from .results import Criterion, Decision
from .verdict import decide, method_of

__all__ = [
    "BOUND_METHODS",
    "Counts",
    "Criterion",
    "Decision",
    "DriftCheck",
    "DriftVerdict",
    "Evidence",
    "Paired",
    "Policy",
    "Priors",
    "Projection",
    "Tests",
    "Verdict",
    "check_drift",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "decide",
    "evaluate",
    "lower_bound",
    "method_of",
    "project",
    "recommended_replay_share",
    "replay_share",
    "sequential_lower",
    "sequential_upper",
    "upper_bound",
    "wilson_lower",
    "wilson_upper",
]
