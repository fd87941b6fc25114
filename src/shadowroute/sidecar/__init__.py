"""``shadowroute serve``: the shadowing gateway for apps that can only change a base URL."""

from .answers import api_error
from .app import ROUTE_HEADER, Sidecar, create_app
from .server import serve

__all__ = ["ROUTE_HEADER", "Sidecar", "api_error", "create_app", "serve"]
