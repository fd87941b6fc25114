"""Judge calibrations in the database: ``shadowroute calibrate-judge`` writes, the report reads.

    await save_calibration(store, row)                 # one calibration run
    await latest_calibration(store, "judge")           # the newest run of that judge model
    await calibrations(store)                          # every run, newest first

Rows go in and come out as plain dicts keyed by column name (see
:class:`~shadowroute.store.models.JudgeCalibration`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..models import JudgeCalibration

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["calibrations", "latest_calibration", "save_calibration"]

_T = JudgeCalibration.__table__


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
