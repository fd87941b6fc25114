"""Candidate shares: not every candidate is called on every sampled exchange.

The latest report's ``overview["shadow_rates"]`` (:mod:`shadowroute.report.rates`) lists, per
task type, the candidates shadowed on less than every sampled call: settled ones (PROMOTE, or
HOLD shown) at ``[decision] maintenance_rate``, undecided ones unlikely to pass at a share that
follows their chance (:mod:`shadowroute.decision.allocation`), each with the primary it was
decided against and the task's policy fingerprint (:meth:`Config.policy_fingerprint`). A
running pipeline keeps those whose fingerprint matches its own configuration; candidates
retired by hand (``shadowroute retire``, read from the database) are not called at all. Every
entry holds only for exchanges of the primary it names: a new primary brings the full rate
back, as do a changed task or ``[decision]`` setting, a next report that no longer lists it,
or ``shadowroute resume``.

Why the decisions stay valid: whether a candidate is called depends only on the past (the last
report, the retirements) and on a draw independent of the request and of its outcome, so the
outputs that are stored are an unbiased sample of the ones that would have been, and the
always-valid tests on cumulative counts hold under such predictable sampling.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..config import Config

__all__ = ["Share", "shadow_shares"]


class Share(NamedTuple):
    primary: str
    """The entry holds for exchanges of this primary only."""
    rate: float
    why: str
    """``settled``, ``allocated`` or ``retired``."""


def shadow_shares(config: Config, rates: Any,
                  retired: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Share]]:
    """Task type -> candidate -> :class:`Share`, from a report's ``overview["shadow_rates"]``
    (the entries that still hold under ``config``) and the retirements."""
    out: dict[str, dict[str, Share]] = {}
    for task, models in (rates.items() if isinstance(rates, dict) else ()):
        if task not in config.tasks or not isinstance(models, dict):
            continue
        fingerprint = config.policy_fingerprint(task)
        for model, entry in models.items():
            if (isinstance(entry, dict) and entry.get("policy") == fingerprint
                    and model in config.tasks[task].candidates and entry.get("primary")
                    and isinstance(entry.get("rate"), int | float)):
                out.setdefault(task, {})[model] = Share(
                    str(entry["primary"]), min(1.0, max(0.0, float(entry["rate"]))),
                    str(entry.get("why") or "settled"))
    for task, models in retired.items():
        for model, entry in models.items():
            if task in config.tasks and entry.get("primary"):
                out.setdefault(task, {})[model] = Share(str(entry["primary"]), 0.0, "retired")
    return out
