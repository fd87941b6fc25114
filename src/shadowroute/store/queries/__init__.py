"""Every SQL statement outside the write path: one module per reader.

Each function takes an open connection from :meth:`shadowroute.store.Store.connect` (or the
:class:`~shadowroute.store.Store` itself) and says in its name what it returns.
"""
