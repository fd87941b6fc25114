"""Queries of ``shadowroute import`` (:mod:`shadowroute.offline.importer`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select

from ..models import Exchange

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["stored_exchange_ids"]


async def stored_exchange_ids(store: Store, ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` that are stored already (one ``IN`` list: pass a batch, not a file).
    An error becomes a :class:`~shadowroute.errors.StoreError` ("cannot read <url>: ...")."""
    async with store.connect() as conn:
        return set(await conn.scalars(select(Exchange.id).where(Exchange.id.in_(ids))))
