"""Resident memory of a Shadow offered many captures while its only candidate never answers.

Run by ``tests/test_faults.py`` in a fresh process (so the figure is this workload's alone):

    python tests/support/memory_probe.py DIR --captures 100000 --queue-size 1000

Prints one JSON object: resident set size (RSS) after a warm-up and after the offers, and the
pipeline's counters.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import string
from pathlib import Path
from typing import Any

import anyio

from shadowroute import Shadow, load_config
from shadowroute.records import Completion

WARM_UP = 200
"""Offers before the first reading: the code paths and the database are warm, the queue is
still nearly empty."""


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Stalled:
    """A candidate that never answers."""

    async def complete(self, request: dict[str, Any]) -> Completion:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        pass


def request(filler: str, i: int) -> dict[str, Any]:
    """A ~1 KB chat request, a new string every time (nothing shared between captures)."""
    return {"model": "frontier", "messages": [
        {"role": "system", "content": "Classify the customer's message."},
        {"role": "user", "content": f"#{i} {filler}"},
    ]}


def answer(i: int) -> dict[str, Any]:
    return {"id": f"c{i}", "object": "chat.completion", "model": "frontier",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "shipping"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 250, "completion_tokens": 1}}


async def main(directory: Path, captures: int, queue_size: int) -> dict[str, Any]:
    config = load_config(data={
        "database_url": f"sqlite+aiosqlite:///{directory / 'probe.db'}",
        "models": {"stalled": {"base_url": "http://127.0.0.1:9/v1"}},
        "tasks": {"classify_intent": {"candidates": ["stalled"], "sample_rate": 1.0,
                                      "noise_floor_rate": 0.0}},
        "mirror": {"queue_size": queue_size, "workers": 4},
        "store": {"spool_dir": str(directory / "spool")},
    })
    rng = random.Random(1)
    filler = " ".join("".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(125))
    shadow = Shadow(config, providers={"stalled": Stalled()})
    await shadow.start()
    for i in range(WARM_UP):
        shadow.offer("classify_intent", request(filler, i), answer(i), 1.0)
    gc.collect()
    before = rss_bytes()
    peak = before
    for i in range(WARM_UP, WARM_UP + captures):
        shadow.offer("classify_intent", request(filler, i), answer(i), 1.0)
        if i % 1000 == 0:
            await anyio.sleep(0)  # let the workers run, as a live event loop would
            peak = max(peak, rss_bytes())
    gc.collect()
    after = rss_bytes()
    peak = max(peak, after)
    await shadow.aclose(deadline_s=0.2)
    stats = shadow.stats
    return {"captures": captures + WARM_UP, "queue_size": queue_size, "rss_before": before,
            "rss_after": after, "rss_peak": peak, "growth": peak - before,
            "enqueued": stats.enqueued, "dropped_queue_full": stats.dropped_queue_full,
            "ledger": stats.ledger(), "offered": stats.offered}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("--captures", type=int, default=100_000)
    parser.add_argument("--queue-size", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(anyio.run(main, args.directory, args.captures, args.queue_size)))
