"""What the route map costs per request: ``Router.model_for`` against a plain dict lookup, and
``route_and_shadow`` against ``shadow()`` for the same (instant) call, and what building the
``ChatCompletion`` reply of ``call=None`` costs. Then what a cascade adds on the request path
with no model time: its checks run on a ready answer (alone, and inside ``route_and_shadow``
with an instant call whose answer passes them), against a plain routed call in the same run.

    .venv/bin/python bench/router_overhead.py

No network: the production call returns a canned completion at once, so the figures are
shadowroute's own work on the request path (the reverse shadow's background calls go to a
stub that answers at once too).
"""

from __future__ import annotations

import json
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
    await cascade_rows(config, folder)


ORDER_SCHEMA = {"type": "object", "required": ["order_id", "quantity"],
                "properties": {"order_id": {"type": "string"}, "quantity": {"type": "integer"}}}
ORDER = {"model": "frontier", "messages": [
    {"role": "system", "content": "Extract the order as JSON."},
    {"role": "user", "content": "Please send 3 more to order AB-12345, thanks."}]}
ORDER_REPLY = {**REPLY, "choices": [{"index": 0, "finish_reason": "stop", "message": {
    "role": "assistant", "content": '{"order_id": "AB-12345", "quantity": 3}'}}]}


async def cascade_rows(config: Any, folder: Path) -> None:
    """The cascade's added cost on the request path, with no model time (see the docstring)."""
    from shadowroute.formats.chat import completion_text
    from shadowroute.scoring.checks import Checks

    schema = folder / "order.schema.json"
    schema.write_text(json.dumps(ORDER_SCHEMA))
    cascade_config = load_config(data={
        "database_url": config.database_url,
        "models": {"frontier": {"base_url": "http://127.0.0.1:9/v1"},
                   "small": {"base_url": "http://127.0.0.1:9/v1"}},
        "tasks": {name: {"candidates": ["small"], "sample_rate": 0.0, "noise_floor_rate": 0.0,
                         "json_schema": str(schema)} for name in ("plain", "cascade")},
        "routes": {"file": str(folder / "cascade-routes.yaml"), "reverse_shadow_rate": 0.0},
        "mirror": {"queue_size": 100_000},
    })
    checks = ("empty", "truncated", "refusal", "schema")
    since = datetime.now(UTC)
    write_routes(cascade_config.routes_file(), {
        "plain": Route(task="plain", model="small", tier="promoted", primary="frontier",
                       since=since, by="bench"),
        "cascade": Route(task="cascade", model="small", tier="promoted", primary="frontier",
                         since=since, by="bench", mode="cascade", checks=checks)})
    router = Router(cascade_config)
    ready = Checks.for_task(cascade_config, "cascade", checks)
    text = completion_text(ORDER_REPLY)
    assert ready.failed(text, "stop", ORDER) is None  # the answer passes: it is kept
    checks_ns = per_call_ns(lambda: ready.failed(text, "stop", ORDER), CALLS // 10)

    async def call(request: dict[str, Any]) -> dict[str, Any]:
        return ORDER_REPLY

    providers = {"frontier": Instant(), "small": Instant()}
    async with Shadow(cascade_config, providers=providers) as sh:
        for _ in range(2):  # warm up both paths (the checks are built on first use)
            await router.route_and_shadow(task="cascade", request=ORDER, call=call, via=sh)
        plain = await async_per_call_us(
            lambda: router.route_and_shadow(task="plain", request=ORDER, call=call, via=sh),
            ASYNC_CALLS)
        cascaded = await async_per_call_us(
            lambda: router.route_and_shadow(task="cascade", request=ORDER, call=call, via=sh),
            ASYNC_CALLS)
    assert router.routed[("cascade", "small", "kept")] == ASYNC_CALLS + 2
    for values in (plain, cascaded):
        values.sort()
    plain_p50, cascade_p50 = statistics.median(plain), statistics.median(cascaded)
    print(f"cascade checks alone ({', '.join(checks)}) on a ready answer: "
          f"{checks_ns / 1000:.1f} us/call = x{checks_ns / 1000 / plain_p50:.2f} of a plain "
          f"routed call's p50 ({plain_p50:.1f} us)")
    print(f"route_and_shadow, cascade kept: p50 {cascade_p50:.1f} us, p99 "
          f"{cascaded[int(len(cascaded) * 0.99)]:.1f} us; plain routed: p50 {plain_p50:.1f} us, "
          f"p99 {plain[int(len(plain) * 0.99)]:.1f} us; cascade / plain p50: "
          f"x{cascade_p50 / plain_p50:.2f} (no model time: an escalation adds the primary's "
          "whole call on top)")


if __name__ == "__main__":
    sys.exit(anyio.run(main))
