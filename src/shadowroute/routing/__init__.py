"""Routing: the route map (``routes.yaml``), the :class:`Router` that reads it, the
promote / demote / routes operations that change and check it, and retire / resume of a
candidate's shadowing (:mod:`.retire`).

    router = Router.from_config("shadowroute.toml")
    router.model_for("classify_intent", default="gpt-4o")

:class:`ChatCompletion` is what ``Router.route_and_shadow`` returns when shadowroute made the
call itself (``call=None``): an OpenAI chat completion read like the OpenAI SDK's.
"""

from .completion import ChatCompletion
from .routemap import TIER_PRIMARY, TIER_PROMOTED, Route, RouteMap, read_routes, write_routes
from .router import Router

__all__ = [
    "TIER_PRIMARY",
    "TIER_PROMOTED",
    "ChatCompletion",
    "Route",
    "RouteMap",
    "Router",
    "read_routes",
    "write_routes",
]
