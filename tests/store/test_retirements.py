"""Candidates retired from shadowing: each retire / resume is a row, the latest row of a task
type x candidate is its state, and `retired_models` reads every state in one query (SQLite and
Postgres)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shadowroute.errors import StoreError
from shadowroute.store import Store, make_engine, migrate
from shadowroute.store.queries.retirements import record_retirement, retired_models

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


async def test_no_rows_no_retirements(store: Store) -> None:
    assert await retired_models(store) == {}


async def test_a_retirement_reads_back_with_who_when_why_and_its_primary(store: Store) -> None:
    await record_retirement(store, task="classify", model="small", action="retire",
                            primary="big", actor="alice", reason="HOLD for three weeks", at=T0)
    assert await retired_models(store) == {"classify": {"small": {
        "primary": "big", "by": "alice", "at": T0.isoformat(), "reason": "HOLD for three weeks"}}}


async def test_the_latest_row_wins_and_resume_clears(store: Store) -> None:
    async def retire(task: str, model: str, minutes: int, primary: str = "big") -> None:
        await record_retirement(store, task=task, model=model, action="retire", primary=primary,
                                actor="alice", reason=None, at=T0 + timedelta(minutes=minutes))

    async def resume(task: str, model: str, minutes: int) -> None:
        await record_retirement(store, task=task, model=model, action="resume", primary="big",
                                actor="bob", reason="new prompt", at=T0 + timedelta(minutes=minutes))

    await retire("classify", "small", 0)
    await retire("classify", "tiny", 1)
    await retire("extract", "small", 2)
    await resume("classify", "small", 3)  # other task types and candidates are unaffected
    assert {t: set(m) for t, m in (await retired_models(store)).items()} == {
        "classify": {"tiny"}, "extract": {"small"}}

    await retire("classify", "small", 4, primary="huge")  # retired again: the newest row counts
    retired = await retired_models(store)
    assert retired["classify"]["small"]["primary"] == "huge"
    assert retired["classify"]["small"]["at"] == (T0 + timedelta(minutes=4)).isoformat()

    # Time decides, not the order rows were written in: a resume dated earlier changes nothing.
    await resume("extract", "small", 1)
    assert "small" in (await retired_models(store))["extract"]
    await resume("extract", "small", 5)
    assert set(await retired_models(store)) == {"classify"}


async def test_rows_at_the_same_time_are_ordered_by_id(store: Store) -> None:
    for action in ("retire", "resume", "retire"):
        await record_retirement(store, task="classify", model="small", action=action,
                                primary="big", actor="alice", reason=None, at=T0)
    assert set(await retired_models(store)) == {"classify"}
    await record_retirement(store, task="classify", model="small", action="resume",
                            primary="big", actor="alice", reason=None, at=T0)
    assert await retired_models(store) == {}


async def test_an_unknown_action_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="action must be one of retire, resume"):
        await record_retirement(store, task="classify", model="small", action="pause",
                                primary="big", actor="alice", reason=None)
    assert await retired_models(store) == {}


async def test_database_errors_are_one_store_error(empty_db_url: str) -> None:
    """A database at the revision before the table: one StoreError naming what was done."""
    await migrate(empty_db_url, "0008")
    store = Store(make_engine(empty_db_url))
    try:
        with pytest.raises(StoreError, match="cannot read the retirements in"):
            await retired_models(store)
        with pytest.raises(StoreError, match="cannot record the retirement in"):
            await record_retirement(store, task="classify", model="small", action="retire",
                                    primary="big", actor="alice", reason=None)
    finally:
        await store.close()
