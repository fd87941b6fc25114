"""Running the sidecar in the foreground (``shadowroute serve``)."""

from __future__ import annotations

import sys

from ..config import Config
from ..pipeline.core import Shadow
from ..serving import run_app
from .app import create_app

__all__ = ["serve"]


def _last_words(shadow: Shadow) -> None:
    """One line on stderr accounting for every capture of this run."""
    print(f"{shadow.shutdown_report}; {shadow.totals().ledger_line()}", file=sys.stderr,
          flush=True)


def serve(config: Config, *, host: str, port: int, log_level: str = "warning") -> None:
    """Serve until SIGINT/SIGTERM: calls in flight finish, the queue drains within
    ``[mirror] shutdown_deadline_s``, and the last line on stderr accounts for every capture
    (uvicorn then re-raises the signal, so the exit status says which one stopped it)."""
    run_app(
        create_app(config, on_stop=_last_words),
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,  # the upstream's Server and Date headers are relayed instead
        date_header=False,
        timeout_graceful_shutdown=config.mirror.shutdown_deadline_s + 5,
    )
