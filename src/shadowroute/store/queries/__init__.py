"""Every SQL statement outside the write path: one module per reader.

Each function takes the :class:`~shadowroute.store.Store` (and opens its own connection) or an
open :data:`Connection` from :meth:`Store.connect <shadowroute.store.Store.connect>` /
:meth:`Store.begin <shadowroute.store.Store.begin>`, and says in its name what it returns.
"""

from sqlalchemy.ext.asyncio import AsyncConnection as Connection

__all__ = ["Connection"]
