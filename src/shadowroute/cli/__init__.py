"""The ``shadowroute`` command line. Bad input gives one clear line and a non-zero exit code.

One module per command group, registered on the shared :data:`~.common.app` when imported here:
:mod:`.init` (init), :mod:`.nightly` (summary, score, report, prune), :mod:`.serve` (serve, fake-llm, demo),
:mod:`.evals` (calibrate-judge, eval), :mod:`.data` (import, replay), :mod:`.routes` (promote,
demote, routes), :mod:`.shadowing` (retire, resume), :mod:`.store` (db, spool, config).
:mod:`.tables` renders the terminal tables.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

from ..errors import ShadowrouteError

# The order the modules register in is the order `--help` lists the commands.
# isort: off
from . import init, nightly, serve, calibrate, data, evals, routes, shadowing, store  # noqa: F401
# isort: on
from .common import app

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except ShadowrouteError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", highlight=False,
                                   soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)

