"""Queries of ``shadowroute import`` (:mod:`shadowroute.offline.importer`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select

from ..models import CandidateOutput, Exchange

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["stored_exchange_ids", "stored_output_models"]


async def stored_exchange_ids(store: Store, ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` that are stored already (one ``IN`` list: pass a batch, not a file).
    An error becomes a :class:`~shadowroute.errors.StoreError` ("cannot read <url>: ...")."""
    async with store.connect() as conn:
        return set(await conn.scalars(select(Exchange.id).where(Exchange.id.in_(ids))))


async def stored_output_models(store: Store, exchange_ids: Sequence[str]) -> set[tuple[str, str]]:
    """(exchange id, model) of every candidate output stored for those of ``exchange_ids``
    (imported, mirrored or replayed alike: one output per exchange and model). One ``IN``
    list: pass a batch. Errors as :func:`stored_exchange_ids`."""
    async with store.connect() as conn:
        rows = await conn.execute(
            select(CandidateOutput.exchange_id, CandidateOutput.model)
            .where(CandidateOutput.exchange_id.in_(exchange_ids)))
        return {(exchange_id, model) for exchange_id, model in rows}
