"""Running the sidecar under uvicorn (uvloop and httptools when installed)."""

from __future__ import annotations

import importlib.util

import uvicorn

from ..config import Config
from .app import create_app

__all__ = ["serve"]


def serve(config: Config, *, host: str, port: int, log_level: str = "warning") -> None:
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        loop=loop,
        http=http,
        log_level=log_level,
        access_log=False,
        server_header=False,  # the upstream's Server and Date headers are relayed instead
        date_header=False,
        timeout_graceful_shutdown=config.mirror.shutdown_deadline_s + 5,
    )
