"""Helpers the benchmark scripts share: free ports, the fake LLM server, percentiles."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_fake_server() -> tuple[subprocess.Popen[bytes], str]:
    """``shadowroute fake-llm`` in its own process on a free loopback port; (process, base URL)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shadowroute", "fake-llm", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base_url + "/v1/models", timeout=0.2)
            return process, base_url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise SystemExit("the fake LLM server did not start")


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
