"""Calibrations in the database: ``calibrate-judge`` and ``calibrate`` write, the report reads.

    await save_calibration(store, row)                 # one judge calibration run
    await latest_calibration(store, "judge")           # the newest run of that judge model
    await calibrations(store)                          # every run, newest first

    await save_scorer_calibrations(store, rows)        # one ``calibrate`` run: a row per scorer
    await latest_scorer_calibrations(store, {"classify": [("exact", "2-ab12...")]})
    await scorer_calibrations(store, "classify")       # every row of a task type, newest first

Rows go in and come out as plain dicts keyed by column name (see
:class:`~shadowroute.store.models.JudgeCalibration` and
:class:`~shadowroute.store.models.ScorerCalibration`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..models import JudgeCalibration, ScorerCalibration
from .scores import Keys

if TYPE_CHECKING:
    from ..store import Store

__all__ = [
    "calibrations",
    "latest_calibration",
    "latest_scorer_calibrations",
    "save_calibration",
    "save_scorer_calibrations",
    "scorer_calibrations",
]

_T = JudgeCalibration.__table__
_SC = ScorerCalibration.__table__


async def save_calibration(store: Store, row: Mapping[str, Any]) -> None:
    """Store one calibration run."""
    async with store.begin("store the calibration in") as conn:
        await conn.execute(_T.insert(), [dict(row)])


async def latest_calibration(store: Store, judge_model: str) -> dict[str, Any] | None:
    """The newest calibration of ``judge_model`` (by ``created_at``), or ``None``."""
    query = (
        select(_T)
        .where(_T.c.judge_model == judge_model)
        .order_by(_T.c.created_at.desc(), _T.c.id.desc())
        .limit(1)
    )
    async with store.connect("read the judge calibrations in") as conn:
        row = (await conn.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def calibrations(store: Store, judge_model: str | None = None) -> list[dict[str, Any]]:
    """Every calibration (of ``judge_model``, or of all judges), newest first."""
    query = select(_T).order_by(_T.c.created_at.desc(), _T.c.id.desc())
    if judge_model is not None:
        query = query.where(_T.c.judge_model == judge_model)
    async with store.connect("read the judge calibrations in") as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings().all()]


async def save_scorer_calibrations(store: Store, rows: list[Mapping[str, Any]]) -> None:
    """Store one ``shadowroute calibrate`` run (a row per scorer), all or nothing."""
    if not rows:
        return
    async with store.begin("store the scorer calibration in") as conn:
        await conn.execute(_SC.insert(), [dict(row) for row in rows])


async def latest_scorer_calibrations(
    store: Store, keys_by_task: Mapping[str, Keys]
) -> dict[tuple[str, str], dict[str, Any]]:
    """(task, scorer) -> its newest calibration (any version): the report compares the row's
    ``scorer_version`` with the current one. Only scorers named in ``keys_by_task``."""
    tasks = sorted(task for task, keys in keys_by_task.items() if keys)
    if not tasks:
        return {}
    wanted = {(task, name) for task in tasks for name, _ in keys_by_task[task]}
    current = {(task, name, version) for task in tasks for name, version in keys_by_task[task]}
    query = (select(_SC).where(_SC.c.task_type.in_(tasks))
             .order_by(_SC.c.created_at.desc(), _SC.c.scorer))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    newest_current: dict[tuple[str, str], dict[str, Any]] = {}
    async with store.connect("read the scorer calibrations in") as conn:
        for row in (await conn.execute(query)).mappings():
            key = (row["task_type"], row["scorer"])
            if key not in wanted:
                continue
            out.setdefault(key, dict(row))
            if (*key, row["scorer_version"]) in current:
                newest_current.setdefault(key, dict(row))
    for key, row in newest_current.items():  # a calibration of the current version wins
        out[key] = row
    return out


async def scorer_calibrations(store: Store, task: str | None = None) -> list[dict[str, Any]]:
    """Every scorer calibration (of ``task``, or of all task types), newest first."""
    query = select(_SC).order_by(_SC.c.created_at.desc(), _SC.c.task_type, _SC.c.scorer)
    if task is not None:
        query = query.where(_SC.c.task_type == task)
    async with store.connect("read the scorer calibrations in") as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings().all()]
