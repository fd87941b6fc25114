"""Queries of ``shadowroute import`` (:mod:`shadowroute.offline.importer`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select

from ...records import ExchangeRecord
from ..models import CandidateOutput, Exchange

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["adopt_stored_times", "stored_output_models"]


async def adopt_stored_times(store: Store, records: Sequence[ExchangeRecord]) -> set[str]:
    """The ids of ``records`` that are stored already (one ``IN`` list: pass a batch, not a
    file); each of those records takes the stored exchange's ``created_at``. An exchange's key
    is its id *and* its time (the month it is partitioned by on Postgres), so a record whose id
    is derived from its content (an import, an eval) must carry the stored time to be
    recognised by :meth:`.Store.write` as stored. An error becomes a
    :class:`~shadowroute.errors.StoreError` ("cannot read <url>: ...")."""
    if not records:
        return set()
    async with store.connect() as conn:
        rows = await conn.execute(select(Exchange.id, Exchange.created_at)
                                  .where(Exchange.id.in_(sorted({r.id for r in records}))))
        times = {id_: created_at for id_, created_at in rows}
    for record in records:
        if record.id in times:
            record.created_at = times[record.id]
    return set(times)


async def stored_output_models(store: Store, exchange_ids: Sequence[str]) -> set[tuple[str, str]]:
    """(exchange id, model) of every candidate output stored for those of ``exchange_ids``
    (imported, mirrored or replayed alike: one output per exchange and model). One ``IN``
    list: pass a batch. Errors as :func:`adopt_stored_times`."""
    async with store.connect() as conn:
        rows = await conn.execute(
            select(CandidateOutput.exchange_id, CandidateOutput.model)
            .where(CandidateOutput.exchange_id.in_(exchange_ids)))
        return {(exchange_id, model) for exchange_id, model in rows}
