"""The Portkey OSS gateway (Node) as a peer row of ``proxy_overhead.py``.

Installed on first use with npm into ``.bench-portkey`` next to this repo's ``.venv`` (outside
the project environment, like LiteLLM's ``.venv-litellm``), and started with
``node .../build/start-server.js --port=N --headless``. It is pointed at the same fake
upstream by the headers its README documents for a custom OpenAI-compatible host:
``x-portkey-provider: openai`` and ``x-portkey-custom-host: <upstream>/v1``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

PACKAGE = "@portkey-ai/gateway"
ENTRY = Path("node_modules") / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def portkey_entry(folder: Path, install: bool) -> tuple[Path | None, str]:
    """The gateway's start script under ``folder``, installing it there on first use;
    (None, why) when node/npm are missing or the install fails."""
    entry = folder / ENTRY
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None, "node and npm are not on PATH (the Portkey gateway is a Node program)"
    if entry.exists():
        return entry, ""
    how = f"npm install --prefix {folder} --no-audit --no-fund {PACKAGE}"
    if not install:
        return None, f"no Portkey gateway at {folder}; install it with: {how}"
    print(f"the Portkey gateway is not installed at {folder}; installing it (first use only):\n"
          f"  {how}", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "bench-install.log"
    try:
        with log.open("wb") as out:
            subprocess.run([npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund",
                            PACKAGE], check=True, stdout=out, stderr=out, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:]) if log.exists() else ""
        return None, f"installing the Portkey gateway failed ({exc}); by hand: {how}\n{tail}"
    if not entry.exists():
        return None, f"npm finished but {entry} is missing; see {log}"
    return entry, ""


def portkey_version(folder: Path) -> str:
    try:
        meta = json.loads((folder / ENTRY.parent.parent / "package.json").read_text())
        return str(meta.get("version", "?"))
    except (OSError, ValueError):
        return "?"


def portkey_argv(entry: Path, port: int) -> list[str]:
    return [shutil.which("node") or "node", str(entry), f"--port={port}", "--headless"]


def portkey_headers(upstream: str) -> dict[str, str]:
    """What routes a call through the gateway to ``upstream`` (an OpenAI-compatible host)."""
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": f"{upstream}/v1"}
