"""Storage: the database schema and :class:`Store`, the disk :class:`Spool`, the
:class:`BatchWriter` between the mirror workers and both.

    store = await Store.open("sqlite+aiosqlite:///shadowroute.db")   # migrates SQLite
    await store.write(exchanges, traffic)                             # one transaction
    async with store.connect() as conn: ...                           # readers: store.queries
    await migrate("postgresql+psycopg://...")                         # `shadowroute db upgrade`
"""

from . import scoring_tables  # noqa: F401  (its tables join Base.metadata)
from .engine import make_engine
from .migrations import migrate, migrations_dir
from .models import Base, CandidateOutput, Exchange, TrafficDaily
from .spool import Spool
from .store import Store
from .writer import BatchWriter

__all__ = [
    "Base",
    "BatchWriter",
    "CandidateOutput",
    "Exchange",
    "Spool",
    "Store",
    "TrafficDaily",
    "make_engine",
    "migrate",
    "migrations_dir",
]
