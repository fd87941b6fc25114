"""What the route map costs per request: ``Router.model_for`` against a plain dict lookup, and
``route_and_shadow`` against ``shadow()`` for the same (instant) call, and what building the
``ChatCompletion`` reply of ``call=None`` costs.

    .venv/bin/python bench/router_overhead.py

No network: the production call returns a canned completion at once, so the figures are
shadowroute's own work on the request path (the reverse shadow's background calls go to a
stub that answers at once too).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from shadowroute import ChatCompletion, Router, Shadow, load_config
from shadowroute.records import Completion
from shadowroute.routing import Route, write_routes

CALLS = 200_000
ASYNC_CALLS = 20_000
REQUEST = {"model": "frontier", "messages": [{"role": "user", "content": "Where is my parcel?"}]}
REPLY = {"id": "x", "object": "chat.completion", "model": "small",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "shipping"},
                      "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}}


class Instant:
    async def complete(self, request: dict[str, Any]) -> Completion:
        return Completion(model="frontier", text="shipping", response=REPLY,
                          input_tokens=12, output_tokens=1)

    async def aclose(self) -> None:
        pass


def per_call_ns(fn: Any, calls: int) -> float:
    began = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - began) / calls


async def async_per_call_us(fn: Any, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        began = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - began) * 1e6)
    return out


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="router-bench-"))
    config = load_config(data={
        "database_url": f"sqlite+aiosqlite:///{folder / 'bench.db'}",
        "models": {"frontier": {"base_url": "http://127.0.0.1:9/v1"},
                   "small": {"base_url": "http://127.0.0.1:9/v1"}},
        "tasks": {"classify_intent": {"candidates": ["small"], "sample_rate": 0.0,
                                      "noise_floor_rate": 0.0}},
        "routes": {"file": str(folder / "routes.yaml"), "reverse_shadow_rate": 0.0},
        "mirror": {"queue_size": 100_000},
    })
    write_routes(config.routes_file(), {"classify_intent": Route(
        task="classify_intent", model="small", tier="promoted", primary="frontier",
        since=datetime.now(UTC), by="bench")})
    router = Router(config)
    plain = {"classify_intent": "small"}
    dict_ns = per_call_ns(lambda: plain.get("classify_intent"), CALLS)
    routed_ns = per_call_ns(lambda: router.model_for("classify_intent", "frontier"), CALLS)
    unrouted_ns = per_call_ns(lambda: router.model_for("sentiment", "frontier"), CALLS)
    print(f"model_for, promoted task: {routed_ns:,.0f} ns/call; not promoted: "
          f"{unrouted_ns:,.0f} ns/call; a plain dict lookup: {dict_ns:,.0f} ns/call "
          f"(x{routed_ns / dict_ns:.1f})")

    async def call(request: dict[str, Any]) -> dict[str, Any]:
        return REPLY

    providers = {"frontier": Instant(), "small": Instant()}
    async with Shadow(config, providers=providers) as sh:
        shadowed = await async_per_call_us(
            lambda: sh.shadow(task="classify_intent", request=REQUEST,
                              call=lambda: call(REQUEST)), ASYNC_CALLS)
        routed = await async_per_call_us(
            lambda: router.route_and_shadow(task="classify_intent", request=REQUEST,
                                            call=call, via=sh), ASYNC_CALLS)
    for label, values in (("shadow() (baseline)", shadowed), ("route_and_shadow()", routed)):
        values.sort()
        print(f"{label}: p50 {statistics.median(values):.1f} us, "
              f"p99 {values[int(len(values) * 0.99)]:.1f} us per call (sampling off)")
    print(f"route_and_shadow / shadow() p50: x{statistics.median(routed) / statistics.median(shadowed):.2f}")
    # Without call= the reply is a ChatCompletion built from the provider's dict: its cost.
    wrap_ns = per_call_ns(lambda: ChatCompletion.from_response(REPLY), CALLS // 10)
    print(f"ChatCompletion.from_response (the reply of call=None): {wrap_ns / 1000:.1f} us/call")


if __name__ == "__main__":
    sys.exit(anyio.run(main))
