"""The command line run in this process, the way the installed ``shadowroute`` runs it.

:func:`run_cli` calls :func:`shadowroute.cli.main` -- the entry point, so a
:class:`~shadowroute.errors.ShadowrouteError` becomes its one ``error:`` line and exit code 2 --
inside click's ``CliRunner`` isolation (stdin, stdout, stderr and the environment swapped for the
call), in ``cwd``. What a subprocess would have shown is kept: warnings logged with no handler
configured reach stderr, an uncaught exception prints its traceback and exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import traceback
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner


@dataclass(frozen=True)
class CliResult:
    """What ``shadowroute ARGS`` did: like :class:`subprocess.CompletedProcess`."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None,
            env: Mapping[str, str | None] | None = None) -> CliResult:
    """``shadowroute ARGS`` in ``cwd`` with ``env`` over the environment (``None`` unsets a
    variable; ``COLUMNS`` is 200 unless given). Called from a running event loop (an async
    test), the command runs on a worker thread -- commands start their own loop -- and the
    caller blocks until it is done, as it would on a subprocess."""
    environment: dict[str, str | None] = {"COLUMNS": "200", **(env or {})}
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run(args, cwd, environment)
    with ThreadPoolExecutor(1, thread_name_prefix="shadowroute-cli") as pool:
        return pool.submit(_run, args, cwd, environment).result()


def _run(args: tuple[str, ...], cwd: Path | None, env: Mapping[str, str | None]) -> CliResult:
    from shadowroute.cli import main

    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        out, err, _ = stack.enter_context(CliRunner().isolation(env=env))
        # Python's last-resort handler would print these in a process of its own.
        logged = logging.StreamHandler(sys.stderr)
        logged.setLevel(logging.WARNING)
        root = logging.getLogger()
        root.addHandler(logged)
        argv, sys.argv = sys.argv, ["shadowroute", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except Exception:  # noqa: BLE001 - what the interpreter does at top level
            traceback.print_exc()
            code = 1
        finally:
            sys.argv = argv
            root.removeHandler(logged)
            sys.stdout.flush()
            sys.stderr.flush()
        return CliResult(args, code, out.getvalue().decode(), err.getvalue().decode())


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"): the message, status 1
    return 1
