"""The fault suite's production traffic and its accounting (tests/test_faults.py and
tests/test_faults_process.py; the fixtures ``fault_llm``, ``fault_traffic`` and ``fault_table`` are
in conftest.py).

Each scenario sends CALLS production calls (OpenAI and Anthropic, half of them streamed,
CONCURRENCY at a time) and checks that none takes longer than DELAY_BOUND_S and that every
accepted capture is accounted for; each adds a :class:`Row` to the table printed at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from sqlalchemy import func, select

from shadowroute.store import CandidateOutput, Exchange, Store
from support.sidecar import answer_text, anthropic_kwargs

CALLS = 48
CONCURRENCY = 8
CANDIDATE_TIMEOUT_S = 2.0
RETRY_AFTER_S = 1.0
DELAY_BOUND_S = CANDIDATE_TIMEOUT_S
"""A call slower than this waited on the fault: a hanging or dripping candidate is cut at the
timeout, a rate-limited one waits Retry-After then fails again. Calls themselves take ~50 ms."""
KINDS = ("openai", "openai-stream", "anthropic", "anthropic-stream")
TASK_HEADER = {"x-shadowroute-task": "classify_intent"}


@dataclass
class Row:
    """One scenario's line of the fault-injection table."""

    fault: str
    calls: int
    failed: int
    delayed: int
    p50_ms: float
    max_ms: float
    accepted: int
    stored: int
    spooled: int
    discarded: int
    lost: int
    note: str


def request_body(kind: str, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(path, JSON body) of one call of ``kind`` (openai or anthropic, maybe -stream)."""
    stream = kind.endswith("stream")
    if kind.startswith("openai"):
        return "/v1/chat/completions", {"model": "frontier", **request, "stream": stream}
    return "/v1/messages", {**anthropic_kwargs(request), "stream": stream}


async def drive(base_url: str, traffic: list[tuple[str, dict[str, Any], str]],
                expect: Callable[[str, str], Callable[[httpx.Response], bool]] | None = None,
                on_call: Callable[[int], Any] | None = None) -> tuple[list[str], list[float]]:
    """Send the calls; (failures, latencies in seconds). ``expect(kind, text)`` builds the check
    of one response (default: status 200 and the upstream's answer text)."""
    failures: list[str] = []
    latencies: list[float] = []
    limiter = anyio.Semaphore(CONCURRENCY)

    def same_answer(kind: str, text: str) -> Callable[[httpx.Response], bool]:
        return lambda response: response.status_code == 200 and answer_text(kind, response) == text

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one(i: int) -> None:
            kind, request, text = traffic[i]
            path, body = request_body(kind, request)
            async with limiter:
                began = time.perf_counter()
                response = await client.post(path, json=body, headers=TASK_HEADER)
                latencies.append(time.perf_counter() - began)
            if not (expect or same_answer)(kind, text)(response):
                failures.append(f"call {i} ({kind}): {response.status_code} {response.text[:200]}")
            if on_call is not None:
                await on_call(len(latencies))

        async with anyio.create_task_group() as tg:
            for i in range(len(traffic)):
                tg.start_soon(one, i)
    return failures, latencies


async def stored_rows(db_url: str) -> tuple[int, list[tuple[Any, ...]]]:
    """(exchanges, every candidate output as (exchange, model, output, error kind))."""
    async with await Store.open(db_url) as store, store.session() as session:
        exchanges = await session.scalar(select(func.count()).select_from(Exchange))
        outputs = sorted((await session.execute(select(
            CandidateOutput.exchange_id, CandidateOutput.model, CandidateOutput.output,
            CandidateOutput.error_kind))).all())
    return int(exchanges or 0), outputs
