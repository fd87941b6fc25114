"""Routing: the route map (``routes.yaml``), the :class:`Router` that reads it, and the
promote / demote / routes operations that change and check it.

    router = Router.from_config("shadowroute.toml")
    router.model_for("classify_intent", default="gpt-4o")
"""

from .routemap import TIER_PRIMARY, TIER_PROMOTED, Route, RouteMap, read_routes, write_routes
from .router import Router

__all__ = [
    "TIER_PRIMARY",
    "TIER_PROMOTED",
    "Route",
    "RouteMap",
    "Router",
    "read_routes",
    "write_routes",
]
