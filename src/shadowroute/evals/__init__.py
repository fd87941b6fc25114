"""Offline evals: real, public data run through the normal scoring and decision.

    run = await run_eval(get_eval("routellm"))     # `shadowroute eval routellm`
    for line in run.lines(): print(line)

Each eval loads its data as exchanges with pre-recorded candidate outputs into a throw-away
database, scores them with its config (``evals/<name>/shadowroute.toml``) and builds the report:
a check that the verdicts come out right on data whose answer is known.
"""

from __future__ import annotations

from ..errors import ConfigError
from . import routellm
from .runner import DATASETS_ENV, Eval, EvalRun, find_config, find_data, run_eval

__all__ = [
    "DATASETS_ENV",
    "EVALS",
    "Eval",
    "EvalRun",
    "find_config",
    "find_data",
    "get_eval",
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
}
"""Every eval ``shadowroute eval NAME`` knows, by name."""


def get_eval(name: str) -> Eval:
    """The eval called ``name``; :class:`ConfigError` listing the known ones otherwise."""
    found = EVALS.get(name)
    if found is None:
        raise ConfigError(f"unknown eval {name!r}; known evals: {', '.join(sorted(EVALS))}",
                          key="NAME")
    return found
