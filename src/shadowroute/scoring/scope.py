"""What a ``shadowroute score`` run works on: the task types with queued outputs (or, with
``--rescan``, every task type with stored outputs), each task's plan recorded with its rollup
(:func:`~shadowroute.store.queries.plans.sync_plan`: a task whose scorers changed has its
outputs queued again), and the check that the judge is not the primary of what it judges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..records import utcnow
from ..store import Store
from ..store.queries.plans import sync_plan
from ..store.queries.scores import (
    output_task_types,
    queued_primaries,
    queued_task_types,
    requeue,
)
from ..store.queries.stale import mark_all
from .judge import Judge
from .options import ScoreOptions
from .plan import TaskPlan, plan_for

__all__ = ["DB", "Scope", "check_judge_is_not_primary", "plan_scope"]

DB: dict[str, Any] = {"what": "read or write", "prefix": "scoring stopped: "}
"""How a database error reads (``Store.connect(**DB)``): "scoring stopped: cannot read or
write <url>: ..."; scores already committed stay, the next run continues from them."""


@dataclass
class Scope:
    plans: dict[str, TaskPlan]
    requeued: dict[str, int] = field(default_factory=dict)
    """Task type -> outputs queued again because its scorers changed."""
    rescanned: int = 0
    """Outputs queued again by ``rescan``."""


async def plan_scope(config: Config, store: Store, options: ScoreOptions) -> Scope:
    """The run's task types with their plans recorded (and rollups built), in one
    transaction per task type."""
    since = options.since
    async with store.connect(**DB) as conn:
        if options.task:
            tasks = [options.task]
        elif options.rescan:
            tasks = await output_task_types(conn, since)
        else:
            tasks = await queued_task_types(conn)
    scope = Scope({task: plan_for(config, task) for task in tasks})
    for plan in scope.plans.values():
        async with store.begin(**DB) as conn:
            requeued = await sync_plan(conn, plan.task, plan.keys(), utcnow())
            if requeued:
                scope.requeued[plan.task] = requeued
            if options.rescan:
                scope.rescanned += await requeue(conn, plan.task, since)
    if options.rescan:  # scores deleted by hand: the report's days are counted again too
        async with store.begin(**DB) as conn:
            await mark_all(conn)
    return scope


async def check_judge_is_not_primary(
    store: Store, judge: Judge, tasks: list[str], config: Config
) -> None:
    """The judge may not be the primary of an exchange whose outputs it is about to judge
    (those in the queue)."""
    async with store.connect(**DB) as conn:
        primaries = await queued_primaries(conn, tasks)
    names = judge.names()
    for task, models in sorted(primaries.items()):
        clash = sorted(models & names)
        if clash:
            raise ConfigError(
                f"judge.model {judge.model.name!r} is the primary of task {task!r} (exchanges "
                f"answered by {clash[0]!r}): a model cannot judge its own answers; choose "
                "another judge",
                path=config.source,
            )
