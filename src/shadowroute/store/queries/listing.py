"""Every stored exchange with its candidate outputs, for small stores: the pytest plugin's
``shadow_stored`` (:mod:`shadowroute.testing`) reads a test's database with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..models import Exchange

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["exchanges_with_outputs"]


async def exchanges_with_outputs(store: Store) -> list[Exchange]:
    """Every exchange, oldest first, its ``outputs`` loaded (no paging: a test's store)."""
    query = (select(Exchange).options(selectinload(Exchange.outputs))
             .order_by(Exchange.created_at, Exchange.id))
    async with store.session() as session:
        return list((await session.scalars(query)).all())
