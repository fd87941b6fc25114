"""Offline evals: real, public data whose answer is known.

    run = await run_eval(get_eval("routellm"))     # `shadowroute eval routellm`
    run = measure_eval(get_eval("scorers"))        # `shadowroute eval scorers`
    for line in run.lines(): print(line)

A pipeline eval (``routellm``) loads its data as exchanges with pre-recorded candidate outputs
into a throw-away database, scores them with its config (``evals/<name>/shadowroute.toml``) and
builds the report: a check that the verdicts come out right. A measurement (``scorers``)
computes figures straight from the data: how far each deterministic scorer agrees with the
truth (:mod:`.scorers`).
"""

from __future__ import annotations

from ..errors import ConfigError
from . import routellm, scorers
from .runner import (
    DATASETS_ENV,
    Eval,
    EvalRun,
    Measured,
    find_config,
    find_data,
    measure_eval,
    run_eval,
)

__all__ = [
    "DATASETS_ENV",
    "EVALS",
    "Eval",
    "EvalRun",
    "Measured",
    "find_config",
    "find_data",
    "get_eval",
    "measure_eval",
    "run_eval",
]

EVALS: dict[str, Eval] = {
    "routellm": Eval(
        name="routellm",
        description="RouteLLM: GPT-4 Turbo vs Mixtral 8x7B on MT-Bench (graded) and GSM8K "
        "(right/wrong)",
        data_files=routellm.DATA_FILES,
        load=routellm.load,
    ),
    "scorers": Eval(
        name="scorers",
        description="every deterministic scorer's pass rate, precision, recall and kappa "
        "against known truth (GSM8K: GPT-4 vs Mixtral; MT-Bench human judgements)",
        data_files=scorers.DATA_FILES,
        measure=scorers.measure,
    ),
}
"""Every eval ``shadowroute eval NAME`` knows, by name."""


def get_eval(name: str) -> Eval:
    """The eval called ``name``; :class:`ConfigError` listing the known ones otherwise."""
    found = EVALS.get(name)
    if found is None:
        raise ConfigError(f"unknown eval {name!r}; known evals: {', '.join(sorted(EVALS))}",
                          key="NAME")
    return found
