"""Decisions: which candidate can take over which task type, with statistics that hold up
under nightly re-runs. Pure functions of counts; :mod:`shadowroute.report` gathers the counts.

    decide(Evidence(n=400, passed=391, noise_n=100, noise_passed=98), Policy.for_task(config, t))
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
from .drift import DriftCheck, DriftVerdict, check_drift
from .verdict import Criterion, Decision, Evidence, Policy, Verdict, decide

__all__ = [
    "BOUND_METHODS",
    "Criterion",
    "Decision",
    "DriftCheck",
    "DriftVerdict",
    "Evidence",
    "Policy",
    "Verdict",
    "clopper_pearson_lower",
    "check_drift",
    "clopper_pearson_upper",
    "decide",
    "lower_bound",
    "sequential_lower",
    "sequential_upper",
    "upper_bound",
    "wilson_lower",
    "wilson_upper",
]
