"""Retiring a candidate from shadowing by hand, and bringing it back: what ``shadowroute
retire`` / ``resume`` run.

A retired candidate of a task type gets no more shadow calls while the task's primary is the
one the latest report compared it with (``decisions.primary_model``); a new primary resumes it
by itself, and :func:`resume` does it by hand. Each change is a row of ``retirements``
(who, when, why, against which primary); the state of a pair is its latest row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..config import Config
from ..config.hooks import did_you_mean
from ..errors import ConfigError, PromotionRefused
from ..store import Store
from ..store.queries.retirements import record_retirement, retired_models
from ..store.queries.routes import latest_decision
from .promote import actor

__all__ = ["ShadowingChange", "check_candidate", "resume", "retire"]


@dataclass(frozen=True)
class ShadowingChange:
    """The outcome of a retire / resume."""

    task: str
    model: str
    retired: bool
    """Whether ``model`` is retired from ``task``'s shadowing now."""
    changed: bool
    """False when it already was so (nothing recorded)."""
    primary: str | None = None
    """The primary it is retired against (after a resume: the one it was retired against)."""
    by: str | None = None
    """Who made this change; when nothing changed, who retired it (``None``: not retired)."""
    since: datetime | None = None
    """When the retirement was recorded (``None`` when it was not retired)."""
    reason: str | None = None


def check_candidate(config: Config, task: str, model: str, verb: str = "retire") -> None:
    """Raise :class:`ConfigError` unless ``task`` is declared under ``[tasks]`` and ``model`` is
    one of its candidates; the message lists the valid names (``verb`` says what was asked)."""
    if task not in config.tasks:
        known = ", ".join(sorted(config.tasks)) or "none declared"
        raise ConfigError(f"cannot {verb} {model!r} on task type {task!r}: it is not declared "
                          f"under [tasks] (task types: {known}){did_you_mean(task, config.tasks)}",
                          path=config.source)
    candidates = config.tasks[task].candidates
    if model not in candidates:
        known = ", ".join(candidates) or "none"
        raise ConfigError(f"cannot {verb} {model!r} on {task}: it is not one of its candidates "
                          f"(tasks.{task}.candidates: {known}){did_you_mean(model, candidates)}",
                          path=config.source)


def _reason(reason: str | None) -> str | None:
    return (reason.strip() or None) if reason else None


async def retire(
    config: Config, store: Store, task: str, model: str, *, reason: str | None = None,
    by: str | None = None, now: datetime | None = None,
) -> ShadowingChange:
    """Stop shadowing ``model`` on ``task`` while its primary is the one the latest report
    compared it with. Refused (:class:`PromotionRefused`) before any report has compared them;
    a pair already retired against that primary is left as it is (``changed=False``)."""
    check_candidate(config, task, model, "retire")
    decision = await latest_decision(store, task, model)
    primary = decision["primary_model"] if decision is not None else None
    if not primary:
        raise PromotionRefused(
            f"no report has compared {model} on {task} yet: run `shadowroute report` first "
            "(a retirement holds while the primary it was compared with serves the task)")
    current = (await retired_models(store)).get(task, {}).get(model)
    if current is not None and current["primary"] == primary:
        return ShadowingChange(task, model, retired=True, changed=False, primary=primary,
                               by=current["by"], since=datetime.fromisoformat(current["at"]),
                               reason=current["reason"])
    at, who, why = now or datetime.now(UTC), by or actor(), _reason(reason)
    await record_retirement(store, task=task, model=model, action="retire", primary=primary,
                            actor=who, reason=why, at=at)
    return ShadowingChange(task, model, retired=True, changed=True, primary=primary, by=who,
                           since=at, reason=why)


async def resume(
    config: Config, store: Store, task: str, model: str, *, reason: str | None = None,
    by: str | None = None, now: datetime | None = None,
) -> ShadowingChange:
    """Shadow ``model`` on ``task`` again; a pair that is not retired is left as it is
    (``changed=False``)."""
    check_candidate(config, task, model, "resume")
    current = (await retired_models(store)).get(task, {}).get(model)
    if current is None:
        return ShadowingChange(task, model, retired=False, changed=False)
    who = by or actor()
    await record_retirement(store, task=task, model=model, action="resume",
                            primary=current["primary"], actor=who, reason=_reason(reason),
                            at=now or datetime.now(UTC))
    return ShadowingChange(task, model, retired=False, changed=True, primary=current["primary"],
                           by=who, since=datetime.fromisoformat(current["at"]),
                           reason=_reason(reason))
