"""OpenTelemetry spans of the pipeline's background calls: candidates, noise-floor replays and
reverse shadows become GenAI client spans in their own traces, linked to the primary call's
span; failures inside span handling are counted and never reach production."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanKind, StatusCode

import shadowroute
from shadowroute import Shadow, telemetry
from shadowroute.pipeline.sync import SyncShadow
from shadowroute.records import NOISE_FLOOR_MODEL
from shadowroute.stats import Stats
from support.otel import Recorder, attrs, recording
from support.pipeline import REQUEST

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
TASK = "classify_intent"


@pytest.fixture
def spans() -> Iterator[Recorder]:
    with recording() as recorder:
        yield recorder


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str, make_config: Callable[..., Any],
           shadow_preset: dict[str, Any]) -> Any:
    """classify_intent mirrored to small and tiny, no noise floor, no retry wait."""
    return make_config(sqlite_url, shadow_preset, tasks={TASK: {
        "candidates": ["small", "tiny"], "sample_rate": 1.0, "noise_floor_rate": 0.0}})


def question(i: int) -> dict[str, Any]:
    return {**REQUEST, "messages": [{"role": "user", "content": f"parcel {i}"}]}


async def test_candidate_calls_are_genai_spans_linked_to_the_primary_span(
    spans: Recorder, config: Any, fake_candidate, completion, stored,
) -> None:
    async def primary() -> dict[str, Any]:
        return completion("shipping")

    providers = {"small": fake_candidate("small", cost_usd=0.002), "tiny": fake_candidate("tiny")}
    async with Shadow(config, providers=providers) as sh:
        with spans.tracer.start_as_current_span("POST /support") as production:
            await sh.shadow(task=TASK, request=question(1), call=primary)
        origin = production.get_span_context()

    small, tiny = spans.spans(role="candidate")
    assert (small.name, tiny.name) == ("chat small", "chat tiny")
    assert small.kind is SpanKind.CLIENT and small.status.status_code is StatusCode.UNSET
    assert attrs(small) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "small",
        "gen_ai.response.model": "small",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 1,
        "server.address": "127.0.0.1",
        "server.port": 9,
        "shadowroute.task": TASK,
        "shadowroute.role": "candidate",
        "shadowroute.model": "small",
        "shadowroute.exchange_id": attrs(small)["shadowroute.exchange_id"],
        "shadowroute.cost_usd": 0.002,
        "shadowroute.attempts": 1,
    }
    assert attrs(tiny)["shadowroute.cost_usd"] == 0.001
    exchanges, _ = await stored(config.database_url)
    assert attrs(small)["shadowroute.exchange_id"] == exchanges[0].id
    for span in (small, tiny):
        # Linked, not parented: a trace of its own that points at the production call.
        assert span.parent is None and span.context.trace_id != origin.trace_id
        (link,) = span.links
        assert (link.context.trace_id, link.context.span_id) == (origin.trace_id, origin.span_id)
    scope = small.instrumentation_scope
    assert scope is not None and (scope.name, scope.version) == ("shadowroute", shadowroute.__version__)
    assert sh.stats.telemetry_errors == 0


async def test_a_failing_candidate_gives_error_type_and_status_error(
    spans: Recorder, config: Any, fake_candidate, completion,
) -> None:
    async def primary() -> dict[str, Any]:
        return completion("shipping")

    tiny = fake_candidate("tiny", mode="error")
    async with Shadow(config, providers={"small": fake_candidate("small"), "tiny": tiny}) as sh:
        with spans.tracer.start_as_current_span("production"):
            await sh.shadow(task=TASK, request=question(1), call=primary)
        sh.offer(TASK, question(2), completion("x"))
    failed = [s for s in spans.spans() if s.name == "chat tiny"]
    assert len(failed) == 2
    for span in failed:
        assert span.status.status_code is StatusCode.ERROR
        assert "upstream exploded" in (span.status.description or "")
        assert attrs(span)["error.type"] == "server_error"
        assert "gen_ai.usage.input_tokens" not in attrs(span)
    # A 500 is retried (max_retries 2): one span covers the logical call and its retries.
    assert sum(attrs(s)["shadowroute.attempts"] for s in failed) == len(tiny.requests) == 6
    ok = [s for s in spans.spans() if s.name == "chat small"]
    assert len(ok) == 2 and all("error.type" not in attrs(s) for s in ok)
    # Without an active span at capture time there is nothing to link to.
    assert sorted(len(s.links) for s in failed) == [0, 1]


async def test_noise_floor_replays_have_role_replay(
    spans: Recorder, tmp_path: Path, sqlite_url: str, make_config, shadow_preset, fake_candidate,
    completion,
) -> None:
    config = make_config(sqlite_url, shadow_preset, tasks={TASK: {
        "candidates": ["small"], "sample_rate": 1.0, "noise_floor_rate": 1.0}})

    async def primary() -> dict[str, Any]:
        return completion("shipping")

    providers = {"small": fake_candidate("small"), "frontier": fake_candidate("frontier")}
    async with Shadow(config, providers=providers) as sh:
        with spans.tracer.start_as_current_span("production") as production:
            await sh.shadow(task=TASK, request=question(1), call=primary)
    assert sh.stats.primary_replays == 1
    (replay,) = spans.spans(role="replay")
    assert replay.name == "chat frontier"
    assert attrs(replay)["shadowroute.model"] == NOISE_FLOOR_MODEL
    assert attrs(replay)["gen_ai.request.model"] == "frontier"
    assert replay.links[0].context.span_id == production.get_span_context().span_id
    assert [s.name for s in spans.spans(role="candidate")] == ["chat small"]


async def test_reverse_shadow_calls_have_role_reverse(
    spans: Recorder, tmp_path: Path, sqlite_url: str, make_config, shadow_preset, fake_candidate,
    completion,
) -> None:
    """A promoted ``small`` served the call; the old primary is asked for the reference."""
    config = make_config(sqlite_url, shadow_preset, tasks={TASK: {
        "candidates": [], "sample_rate": 1.0, "noise_floor_rate": 0.0,
        "reverse_shadow_rate": 1.0}})
    frontier = fake_candidate("frontier", text="refund")
    async with Shadow(config, providers={"frontier": frontier, "small": fake_candidate("small")}) as sh:
        with spans.tracer.start_as_current_span("production") as production:
            assert sh.offer(TASK, {**question(1), "model": "small"}, completion("x", "small"),
                            reverse_of="frontier")
    assert sh.stats.reverse_shadows == 1 and len(frontier.requests) == 1
    (reverse,) = spans.spans()
    assert attrs(reverse)["shadowroute.role"] == "reverse"
    assert attrs(reverse)["gen_ai.request.model"] == "frontier"
    assert reverse.links[0].context.trace_id == production.get_span_context().trace_id


async def test_the_worker_context_never_becomes_the_parent(
    spans: Recorder, config: Any, fake_candidate, completion,
) -> None:
    """Workers inherit the context of whoever started the Shadow (here an app start-up span):
    candidate spans are still roots, linked only to the primary call."""
    providers = {"small": fake_candidate("small"), "tiny": fake_candidate("tiny")}
    with spans.tracer.start_as_current_span("startup") as startup:
        async with Shadow(config, providers=providers) as sh:
            with spans.tracer.start_as_current_span("request") as request:
                sh.offer(TASK, question(1), completion("x"))
    startup_trace = startup.get_span_context().trace_id
    for span in spans.spans():
        assert span.parent is None and span.context.trace_id != startup_trace
        assert [link.context.span_id for link in span.links] == [request.get_span_context().span_id]


def test_sync_shadow_links_to_the_callers_span(
    spans: Recorder, config: Any, fake_candidate, completion,
) -> None:
    """SyncShadow hands the capture to its loop thread: the caller's span still arrives."""
    providers = {"small": fake_candidate("small"), "tiny": fake_candidate("tiny")}
    with SyncShadow(config, providers=providers) as sh:
        with spans.tracer.start_as_current_span("sync request") as request:
            sh.shadow(task=TASK, request=question(1), call=lambda: completion("x"))
    assert threading.current_thread() is threading.main_thread()
    found = spans.spans()
    assert len(found) == 2
    assert all(s.links[0].context.span_id == request.get_span_context().span_id for s in found)


# --------------------------------------------------------------------------- never into production


class _BrokenContextSpan(NonRecordingSpan):
    def get_span_context(self) -> Any:
        raise RuntimeError("broken span")


class _BrokenTracer(trace.NoOpTracer):
    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broken tracer")


class _BrokenProvider(trace.NoOpTracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        return _BrokenTracer()


async def test_span_failures_are_counted_and_the_calls_go_on(
    config: Any, fake_candidate, completion, stored,
) -> None:
    telemetry.configure(_BrokenProvider())  # type: ignore[arg-type]
    try:
        async with Shadow(config, providers={"small": fake_candidate("small"),
                                             "tiny": fake_candidate("tiny")}) as sh:
            token = otel_context.attach(trace.set_span_in_context(_BrokenContextSpan(
                trace.INVALID_SPAN_CONTEXT)))
            try:
                answer = await sh.shadow(task=TASK, request=question(1),
                                         call=lambda: _answer(completion))
            finally:
                otel_context.detach(token)
    finally:
        telemetry.configure(None)
    assert answer["choices"][0]["message"]["content"] == "shipping"
    # One on the request path (the capture is still queued), one per candidate call.
    assert sh.stats.telemetry_errors == 3 and sh.stats.capture_errors == 0
    assert sh.stats.enqueued == 1 and sh.stats.mirrored == 1
    _, outputs = await stored(config.database_url)
    assert sorted(o.model for o in outputs) == ["small", "tiny"]


async def _answer(completion: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return completion("shipping")


async def test_without_a_configured_sdk_nothing_is_recorded(
    config: Any, fake_candidate, completion, stored,
) -> None:
    """The API alone (no SDK provider, here the no-op one): no span, no link, no error."""
    telemetry.configure(trace.NoOpTracerProvider())
    try:
        stats = Stats()
        assert telemetry.span_context(stats) is None  # no span is active
        span = telemetry.model_span(telemetry.Target("small"), {}, task=TASK, role="candidate",
                                    stats=stats)
        assert span.recording is False
        async with Shadow(config, providers={"small": fake_candidate("small"),
                                             "tiny": fake_candidate("tiny")}) as sh:
            await sh.shadow(task=TASK, request=question(1), call=lambda: _answer(completion))
    finally:
        telemetry.configure(None)
    assert stats.telemetry_errors == 0 and sh.stats.telemetry_errors == 0
    _, outputs = await stored(config.database_url)
    assert len(outputs) == 2


def test_without_opentelemetry_installed_the_pipeline_runs(tmp_path: Path) -> None:
    """In a process where ``import opentelemetry`` fails: no span context, no-op spans, and a
    shadowed call mirrored and stored as usual."""
    script = f"""
import json
import sys
sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
sys.path.insert(0, {str(ROOT / "tests")!r})
import anyio
from shadowroute import Shadow, telemetry
from shadowroute.stats import Stats
from support.config import make_config, shadow_preset
from support.pipeline import FakeCandidate, REQUEST, completion

assert not telemetry.available()
assert telemetry.span_context(Stats()) is None
from pathlib import Path
tmp = Path({str(tmp_path)!r})
config = make_config(f"sqlite+aiosqlite:///{{tmp / 'db.sqlite'}}", shadow_preset(tmp))

async def main():
    async def primary():
        return completion("shipping")
    async with Shadow(config, providers={{"small": FakeCandidate("small")}}) as sh:
        await sh.shadow(task="classify_intent", request=REQUEST, call=primary)
    return sh.stats

stats = anyio.run(main)
print(json.dumps([stats.mirrored, stats.stored_outputs, stats.telemetry_errors,
                                "opentelemetry.trace" in sys.modules]))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [1, 1, 0, False]
