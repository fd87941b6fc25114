"""``shadowroute retire`` / ``resume``: stop shadowing a candidate of a task type, and bring it
back.

Registered on the main app by :mod:`shadowroute.cli`. Each change is a row of ``retirements``;
running pipelines read them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from ..config import Config
from .common import ByOption, ConfigOption, DatabaseOption, ReasonOption, app, load, say, with_store

T = TypeVar("T")

TaskArgument = Annotated[str, typer.Argument(help="The task type (a \\[tasks] key).")]
ModelArgument = Annotated[str, typer.Argument(help="One of the task type's candidates.")]


def _run(cfg: Config, work: Callable[[Any], Awaitable[T]]) -> T:
    # Retiring needs a report's verdict, so a SQLite path that does not exist is a typo.
    return with_store(cfg, work, "the retirements", create=False)


@app.command("retire")
def retire(
    task: TaskArgument,
    model: ModelArgument,
    reason: ReasonOption = None,
    by: ByOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Stop shadowing MODEL on TASK until TASK's primary changes (or `shadowroute resume`)."""
    from ..routing import retire as ops

    cfg = load(config, database_url)
    ops.check_candidate(cfg, task, model, "retire")  # a typo is named before the database opens
    change = _run(cfg, lambda store: ops.retire(cfg, store, task, model, reason=reason, by=by))
    if not change.changed:
        since = f" since {change.since:%Y-%m-%d %H:%M} UTC" if change.since else ""
        say(f"{model} is already retired from {task} (by {change.by}{since}, while its primary "
            f"is {change.primary}); nothing changed")
        return
    say(("retired", "green"), f" {model} from {task}: no more shadow calls while its primary is "
        f"{change.primary} (resumes by itself when the primary changes; `shadowroute resume "
        f"{task} {model}` to bring it back)")


@app.command("resume")
def resume(
    task: TaskArgument,
    model: ModelArgument,
    reason: ReasonOption = None,
    by: ByOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Shadow MODEL on TASK again after `shadowroute retire`."""
    from ..routing import retire as ops

    cfg = load(config, database_url)
    ops.check_candidate(cfg, task, model, "resume")
    change = _run(cfg, lambda store: ops.resume(cfg, store, task, model, reason=reason, by=by))
    if not change.changed:
        say(f"{model} is not retired from {task}: it is shadowed already; nothing changed")
        return
    since = f" since {change.since:%Y-%m-%d %H:%M} UTC" if change.since else ""
    say(("resumed", "green"), f" {model} on {task}: shadowed again (it was retired{since} "
        f"while its primary was {change.primary})")
