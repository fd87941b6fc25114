"""Running the sidecar in the foreground (``shadowroute serve``)."""

from __future__ import annotations

from ..config import Config
from ..serving import run_app
from .app import create_app

__all__ = ["serve"]


def serve(config: Config, *, host: str, port: int, log_level: str = "warning") -> None:
    run_app(
        create_app(config),
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,  # the upstream's Server and Date headers are relayed instead
        date_header=False,
        timeout_graceful_shutdown=config.mirror.shutdown_deadline_s + 5,
    )
