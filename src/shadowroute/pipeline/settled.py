"""Settled candidates: what the latest report decided for good is shadowed at a maintenance rate.

The report's overview lists, per task type, the candidates whose verdict more data would not
change (PROMOTE, or HOLD: shown to miss a criterion) with the primary they were decided against
and the task's policy fingerprint (:meth:`Config.policy_fingerprint`). A running pipeline keeps
those whose fingerprint matches its own configuration; the mirror then calls such a candidate
on ``[decision] maintenance_rate`` of the task's sampled calls when the call's primary is the
one it was decided against (:meth:`~shadowroute.mirror.policy.Mirror.settle`). A new primary, a
changed task or ``[decision]`` setting, or a next report that no longer settles it brings the
full rate back.

Why the decisions stay valid: whether a candidate is called depends only on the past (the last
report) and on a draw independent of the request and of its outcome, so the outputs that are
stored are an unbiased sample of the ones that would have been, and the always-valid tests on
cumulative counts hold under such predictable sampling.
"""

from __future__ import annotations

from typing import Any

from ..config import Config

__all__ = ["settled_models"]


def settled_models(config: Config, settled: Any) -> dict[str, dict[str, str]]:
    """Task type -> candidate -> the primary it was decided against, for the entries of a
    report's ``overview["settled"]`` that still hold under ``config``."""
    out: dict[str, dict[str, str]] = {}
    if not isinstance(settled, dict) or config.decision.maintenance_rate >= 1.0:
        return out
    for task, models in settled.items():
        if task not in config.tasks or not isinstance(models, dict):
            continue
        fingerprint = config.policy_fingerprint(task)
        for model, entry in models.items():
            if (isinstance(entry, dict) and entry.get("policy") == fingerprint
                    and model in config.tasks[task].candidates and entry.get("primary")):
                out.setdefault(task, {})[model] = str(entry["primary"])
    return out
