"""Who is shadowed on what share of the sampled calls from this report on.

The report writes ``overview["shadow_rates"]``: task type -> candidate -> ``rate`` (the share of
the task's sampled calls on which the candidate is called), ``why`` (``settled``: PROMOTE, or
HOLD shown, at ``[decision] maintenance_rate``; ``allocated``: undecided, following its chance
of passing, :mod:`shadowroute.decision.allocation`), the verdict, the primary it was decided
against and the task's policy fingerprint. Running pipelines read it
(:mod:`shadowroute.pipeline.rates`); a candidate at the full rate is not listed. Retired
candidates (``shadowroute retire``) are read from the database by the pipelines themselves, so
a ``resume`` takes effect without waiting for a report; the report only shows them.
"""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..decision import Policy
from ..decision.allocation import FULL_AT, shares
from ..decision.core import CODES

__all__ = ["SETTLED", "rates_note", "shadow_rates"]

SETTLED = ("PROMOTE", "HOLD")
"""Verdicts more shadow data would not change (a HOLD is shown to miss a criterion)."""
_CODE = {str(verdict): code for code, verdict in CODES.items()}


def shadow_rates(config: Config, tasks: list[Any],
                 retired: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """``overview["shadow_rates"]`` (see the module docstring); sets each candidate's
    ``shadow_rate`` and ``shadow_why`` for the report's own lines."""
    decision = config.decision
    out: dict[str, dict[str, Any]] = {}
    for t in tasks:
        if t.task not in config.tasks or t.primary_model is None:
            continue
        fingerprint = config.policy_fingerprint(t.task)
        for c in t.candidates:
            if c.model not in config.tasks[t.task].candidates:
                continue
            gone = retired.get(t.task, {}).get(c.model)
            if gone is not None and gone.get("primary") == t.primary_model:
                c.shadow_rate, c.shadow_why = 0.0, "retired"
                continue  # pipelines read retirements from the database
            code = _CODE.get(c.verdict)
            if code is None:
                continue
            chance = 1.0 if c.pass_chance is None else c.pass_chance  # unknown: all calls
            rate = float(shares(code, c.n, chance, Policy(**t.policy),
                                maintenance=decision.maintenance_rate,
                                floor=decision.allocation_floor))
            if rate >= 1.0:
                continue
            why = "settled" if c.verdict in SETTLED else "allocated"
            c.shadow_rate, c.shadow_why = rate, why
            out.setdefault(t.task, {})[c.model] = {
                "rate": rate, "why": why, "verdict": c.verdict, "primary": t.primary_model,
                "policy": fingerprint}
    return out


def rates_note(t: Any) -> str | None:
    """The candidates of ``t`` shadowed on less than every sampled call, and why, in words."""
    parts = []
    for c in t.candidates:
        rate, why = getattr(c, "shadow_rate", None), getattr(c, "shadow_why", None)
        if rate is None:
            continue
        if why == "retired":
            parts.append(f"{c.model} retired (`shadowroute resume {t.task} {c.model}` brings it "
                         "back; a new primary does by itself)")
        elif why == "settled":
            parts.append(f"{c.model} settled: shadowed on {rate:.0%} of sampled calls from now "
                         "on ([decision] maintenance_rate), at the full rate again when the "
                         "primary or the task's settings change")
        else:
            parts.append(f"{c.model} unlikely to pass ({c.pass_chance:.0%} chance, full rate "
                         f"from {FULL_AT:.0%}): shadowed on {rate:.0%} of sampled calls until "
                         "its verdict ([decision] allocation_floor)")
    return "; ".join(parts) or None
