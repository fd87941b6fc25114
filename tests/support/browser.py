"""Render an HTML file in headless Chromium, for tests of HTML output.

Not a test module: tests import it (``from support.browser import render``) and take the
``chromium`` fixture from conftest.py, which skips -- or fails under CI=true -- when no browser
is installed. ``scripts/ensure-chromium`` (run by ``make test``) installs one.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_ENV = "SHADOWROUTE_CHROMIUM"
_NAMES = ("chromium", "chromium-browser", "google-chrome")

# Harmless stderr chatter in containers (no D-Bus; Debian's launcher script mis-parsing a stacked
# /dev/shm mount); left out of error messages so the real cause is visible.
_NOISE = ("dbus/", "unexpected operator", "bytes written to file")


def find_chromium() -> str | None:
    """The browser binary: $SHADOWROUTE_CHROMIUM, then chromium, chromium-browser, google-chrome.

    Same order as scripts/ensure-chromium. Each may be a name on PATH or a path.
    """
    for candidate in (os.environ.get(CHROMIUM_ENV, ""), *_NAMES):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@dataclass
class Rendered:
    dom: str
    """The serialized DOM after scripts ran (``--dump-dom``), not the file's source."""
    screenshot: bytes
    """PNG of the viewport (``width`` x ``height``)."""


def render(
    html_path: Path,
    *,
    width: int = 1280,
    height: int = 2000,
    timeout: float = 60,
    chromium: str | None = None,
) -> Rendered:
    """Load ``html_path`` in headless Chromium; return its DOM and a screenshot.

    One browser run does both: the headless command handler dumps the DOM and then takes the
    screenshot once the page has loaded and ``--virtual-time-budget`` (2 s of virtual time, so
    timers fire without waiting for them) has run out. A fresh profile directory is used per call.
    """
    html_path = Path(html_path)
    if not html_path.is_file():
        raise FileNotFoundError(html_path)
    binary = chromium or find_chromium()
    if binary is None:
        raise RuntimeError("chromium not found: run scripts/ensure-chromium")

    with tempfile.TemporaryDirectory(prefix="sr-chromium-", ignore_cleanup_errors=True) as tmp:
        shot = Path(tmp) / "screenshot.png"
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--window-size={width},{height}",
            "--virtual-time-budget=2000",
            f"--screenshot={shot}",
            "--dump-dom",
            html_path.resolve().as_uri(),
        ]
        returncode, stdout, stderr = _run(cmd, timeout)
        problem = None
        if returncode != 0:
            problem = f"exited with status {returncode}"
        elif not shot.is_file() or shot.stat().st_size == 0:
            problem = "wrote no screenshot"
        elif "<html" not in stdout.lower():
            problem = "dumped no DOM"
        if problem:
            raise RuntimeError(
                f"chromium {problem} rendering {html_path}\n"
                f"command: {' '.join(cmd)}\nstderr (tail):\n{_stderr_tail(stderr)}"
            )
        return Rendered(dom=stdout, screenshot=shot.read_bytes())


def _run(cmd: list[str], timeout: float) -> tuple[int, str, str]:
    """Run ``cmd``; on timeout kill its whole process group (renderer, zygote, ...), then raise."""
    with subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
            raise RuntimeError(
                f"chromium timed out after {timeout}s\ncommand: {' '.join(cmd)}\n"
                f"stderr (tail):\n{_stderr_tail(stderr)}"
            ) from None
    return proc.returncode, stdout, stderr


def _stderr_tail(stderr: str, lines: int = 20) -> str:
    kept = [line for line in stderr.splitlines() if not any(n in line for n in _NOISE)]
    return "\n".join(kept[-lines:]) or "(empty)"


def is_blank(png: bytes) -> bool:
    """True when the image is a single colour (an empty page, or text drawn without fonts)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        extrema = image.convert("RGB").getextrema()
    return all(low == high for low, high in extrema)
