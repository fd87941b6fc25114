"""The sidecar's mirror process (``[sidecar] mirror_process``, :mod:`shadowroute.pipeline.handoff`):
frames carry every recorded shape unchanged, the counts of both processes add up to one ledger,
and a mirror process that dies is counted and replaced."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from shadowroute.capture.capture import Capture
from shadowroute.pipeline.handoff import capture_frame, capture_of, frame, read_frame
from shadowroute.pipeline.queue import TracedCapture
from shadowroute.sidecar import Sidecar
from shadowroute.stats import Stats
from shadowroute.store import Store

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "shapes"
APIS = {"openai_chat": "openai", "anthropic": "anthropic", "responses": "responses"}
TASK = "X-Shadowroute-Task"


def _recorded() -> list[tuple[str, Path]]:
    found = []
    for folder, api in APIS.items():
        for path in sorted((SHAPES / folder).glob("*")):
            request = path.with_name(path.name.split(".")[0] + ".request.json")
            if path.suffix in (".json", ".sse") and not path.name.endswith(
                    (".expected.json", ".request.json")) and request.exists():
                found.append((api, path))
    return found


async def _frames(data: bytes) -> list[tuple[dict[str, Any], bytes, bytes]]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    out = []
    while (got := await read_frame(reader)) is not None:
        out.append(got)
    return out


def _resolved(capture: Capture) -> dict[str, Any] | str:
    try:
        capture.resolve()
    except Exception as exc:  # the same failure on both sides is the same capture
        return f"{type(exc).__name__}: {exc}"
    return {"request": capture.request, "response": capture.response,
            "text": capture.output_text, "usage": (capture.input_tokens, capture.output_tokens),
            "model": capture.primary_model, "not_carried": capture.not_carried}


@pytest.mark.anyio
@pytest.mark.parametrize(("api", "path"), _recorded(), ids=lambda v: getattr(v, "name", v))
async def test_a_frame_carries_a_recorded_answer_as_it_came(api: str, path: Path) -> None:
    """Every recorded request/answer pair of tests/fixtures/shapes (JSON and SSE, three APIs)
    reads the same in the mirror process as in the sidecar: the bytes cross unchanged."""
    request = path.with_name(path.name.split(".")[0] + ".request.json").read_bytes()
    at = datetime(2026, 12, 6, 1, 2, 3, 456000, tzinfo=UTC)
    sent = Capture(task="classify_intent", raw_request=request, raw_response=path.read_bytes(),
                   api=api, streamed=path.suffix == ".sse", latency_ms=12.5,  # type: ignore[arg-type]
                   primary_model="m", metadata={"feature": "é"}, created_at=at,
                   reverse_of=None, source="sidecar")
    ((head, first, second),) = await _frames(capture_frame(sent))
    got = capture_of(head, first, second)
    assert (got.raw_request, got.raw_response) == (sent.raw_request, sent.raw_response)
    assert (got.task, got.api, got.streamed, got.latency_ms, got.metadata, got.created_at,
            got.source) == ("classify_intent", api, path.suffix == ".sse", 12.5,
                            {"feature": "é"}, at, "sidecar")
    assert _resolved(got) == _resolved(sent)


@pytest.mark.anyio
async def test_a_parsed_capture_and_the_counts_cross_in_one_stream(completion) -> None:
    """A ``POST /v1/captures`` capture (request and answer already parsed, with the span
    context of the call), gzip-encoded raw bodies, and the traffic counts, written back to
    back, come out in order."""
    import gzip

    from opentelemetry.trace import SpanContext, TraceFlags

    span = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=False,
                       trace_flags=TraceFlags(1))
    parsed = TracedCapture(task="t", request={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                           result=completion("shipping"), reverse_of="frontier",
                           not_carried=["reasoning.summary"], source="remote:app", origin=span)
    raw = Capture(task="t", raw_request=b'{"model":"m","messages":[]}',
                  raw_response=gzip.compress(b'{"choices":[]}'), content_encoding="gzip")
    counts = frame({"k": "counts", "traffic": [["t", "m", 3, 2, 0]], "routed": []})
    frames = await _frames(capture_frame(parsed) + capture_frame(raw) + counts)
    assert [h["k"] for h, _, _ in frames] == ["parsed", "raw", "counts"]
    back = capture_of(*frames[0])
    assert (back.request, back.result, back.reverse_of, back.not_carried, back.source) == (
        parsed.request, parsed.result, "frontier", ["reasoning.summary"], "remote:app")
    # the sidecar's request span crosses too: the candidates' spans link to it
    assert (back.origin.trace_id, back.origin.span_id, back.origin.trace_flags) == (
        span.trace_id, span.span_id, 1) and back.origin.is_remote
    again = capture_of(*frames[1])
    assert again.raw_response == raw.raw_response and again.content_encoding == "gzip"
    assert frames[2][0]["traffic"] == [["t", "m", 3, 2, 0]]


@pytest.mark.anyio
async def test_a_stream_cut_inside_a_frame_is_an_error_not_an_end() -> None:
    whole = capture_frame(Capture(task="t", raw_request=b"{}", raw_response=b"{}"))
    assert len(await _frames(whole)) == 1
    with pytest.raises(asyncio.IncompleteReadError):
        await _frames(whole[:-1])


def test_stats_survive_their_json_snapshot_and_add_up() -> None:
    stats = Stats(offered=5, enqueued=4, queue_depth=2)
    stats.discarded["shutdown"] += 1
    stats.routed[("t", "small", "kept")] += 3
    stats.model_result("small", "timeout", 0.3, 0.01)
    again = Stats.restore(json.loads(json.dumps(stats.snapshot())))
    assert again == stats
    total = stats.plus(again)
    assert (total.offered, total.queue_depth, total.discarded["shutdown"]) == (10, 4, 2)
    assert total.routed[("t", "small", "kept")] == 6
    small = total.models["small"]
    assert (small.calls, small.errors["timeout"], small.spend_usd) == (2, 2, pytest.approx(0.02))
    assert stats.offered == 5 and stats.models["small"].calls == 1  # neither side changed


# --------------------------------------------------------------------------- the sidecar


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


async def _settled(client: httpx.AsyncClient, name: str, want: float) -> str:
    with anyio.fail_after(30):
        while True:
            text = (await client.get("/metrics")).text
            if _metric(text, name) >= want:
                return text
            await anyio.sleep(0.1)


def _calls(n: int, request_for: Any, start: int = 0) -> list[dict[str, Any]]:
    return [{"model": "frontier", **request_for("classify_intent", start + i)} for i in range(n)]


async def _send(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> None:
    for body in bodies:
        answer = await client.post("/v1/chat/completions", json=body,
                                   headers={TASK: "classify_intent"})
        assert answer.status_code == 200, answer.text


def _mirrored(db_url: str, upstream: Any, make_config: Any, sidecar_preset: Any,
              sidecar_server: Any) -> Any:
    """A sidecar in front of ``upstream`` handing its captures to a mirror process (at normal
    priority: the test run's other processes must not starve it)."""
    config = make_config(db_url, sidecar_preset(upstream.base_url),
                         sidecar={"mirror_process": "normal"})
    return sidecar_server(config)


@pytest.mark.anyio
async def test_the_mirror_process_stores_what_the_sidecar_captured_and_one_ledger_covers_both(
    db_url: str, make_config, sidecar_preset, sidecar_server, twin_fakes, request_for, stored,
) -> None:
    """With ``mirror_process = "normal"``: calls relayed, exchanges and candidate answers stored
    by the child, the traffic counts handed over, ``/metrics`` and ``/healthz`` showing the
    child's side, SIGINT ignored by the child (a Ctrl-C reaches the whole group), and the
    shutdown ledger accounting for every capture across both processes."""
    with twin_fakes() as (_, upstream):
        server = _mirrored(db_url, upstream, make_config, sidecar_preset, sidecar_server)
        async with server as sc, httpx.AsyncClient(base_url=sc.base_url, timeout=30) as client:
            sidecar: Sidecar = server.app.state.sidecar
            await _send(client, _calls(6, request_for))
            answer = await client.post("/v1/chat/completions", headers={TASK: "classify_intent"},
                                       json={**_calls(1, request_for, 6)[0], "stream": True})
            assert answer.status_code == 200 and b"data: [DONE]" in answer.content
            text = await _settled(client, "shadowroute_stored_exchanges_total", 7)
            assert _metric(text, "shadowroute_captured_total") == 7
            assert _metric(text, "shadowroute_accepted_total") == 7
            assert _metric(text, "shadowroute_model_calls_total") == 14  # small + claude-small
            assert _metric(text, "shadowroute_forwarded_total") == 0  # not a remote hand-off
            health = (await client.get("/healthz")).json()
            assert health["database"] == "ok" and health["queue_depth"] == 0
            child = sidecar.shadow._handoff._process  # type: ignore[union-attr]
            assert child is not None
            os.kill(child.pid, signal.SIGINT)
            await anyio.sleep(0.3)
            assert child.returncode is None
    report = sidecar.shadow.shutdown_report
    assert report is not None and report.lost == 0
    totals = sidecar.shadow.totals()
    assert totals.ledger() == {"accepted": 7, "stored": 7, "spooled": 0, "forwarded": 0,
                               "discarded": 0, "lost": 0, "pending": 0}
    assert totals.mirror_process_exits == 0
    exchanges, outputs = await stored(db_url)
    assert len(exchanges) == 7 and len(outputs) == 14
    assert all(o.output and o.error_kind is None for o in outputs)
    assert {e.source for e in exchanges} == {"sidecar"}
    async with await Store.open(db_url) as store:
        counts = await store.counts()
    assert counts["traffic"]["classify_intent"]["requests"] == 7


@pytest.mark.anyio
async def test_a_mirror_process_that_dies_is_counted_and_replaced(
    db_url: str, make_config, sidecar_preset, sidecar_server, twin_fakes, request_for, stored,
) -> None:
    """SIGKILL to the mirror process: the relay goes on, the death is counted
    (``shadowroute_mirror_process_exits_total``), another process takes the next captures."""
    with twin_fakes() as (_, upstream):
        server = _mirrored(db_url, upstream, make_config, sidecar_preset, sidecar_server)
        async with server as sc, httpx.AsyncClient(base_url=sc.base_url, timeout=30) as client:
            sidecar: Sidecar = server.app.state.sidecar
            handoff = sidecar.shadow._handoff
            assert handoff is not None
            await _send(client, _calls(2, request_for))
            await _settled(client, "shadowroute_stored_exchanges_total", 2)
            first = handoff._process
            assert first is not None
            first.kill()
            # Once its end is seen (not in the instant it dies: a capture written then is
            # lost with it, and the ledger says so).
            await _settled(client, "shadowroute_mirror_process_exits_total", 1)
            await _send(client, _calls(3, request_for, 2))
            text = await _settled(client, "shadowroute_stored_exchanges_total", 5)
            assert _metric(text, "shadowroute_mirror_process_exits_total") == 1
            assert handoff._process is not None and handoff._process.pid != first.pid
    totals = sidecar.shadow.totals()
    assert totals.mirror_process_exits == 1 and totals.stored_exchanges == 5
    assert totals.ledger()["pending"] == 0 and sidecar.shadow.shutdown_report.lost == 0
    exchanges, _ = await stored(db_url)
    assert len(exchanges) == 5
