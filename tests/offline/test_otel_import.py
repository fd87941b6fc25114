"""`shadowroute import --format otel`: GenAI spans of OTLP/JSON trace exports as exchanges.

One fixture per span shape (tests/fixtures/otel), written from each convention's documented span
shape; the end-to-end test makes its spans with the real OpenTelemetry SDK.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shadowroute.errors import ConfigError
from shadowroute.fakellm import FakeLLMServer, default_settings
from shadowroute.offline import span_exchange_id
from shadowroute.offline.importer import import_file
from shadowroute.store import Store
from support.otlp import FIXTURES, otlp_line

pytestmark = pytest.mark.anyio

MODELS = {name: {"base_url": "http://127.0.0.1:9/v1", "input_price": 1, "output_price": 2}
          for name in ("gpt-4", "gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo-0613",
                       "claude-3-5-haiku-20241022")}
NOON = datetime(2024, 5, 1, 12, tzinfo=UTC)  # the fixtures' spans start at noon + start_ms


@pytest.fixture
def do_import(make_config: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """``import_file`` of a fixture (by name) or a path into the database at a URL."""

    async def do_import(db_url: str, path: str | Path, **kwargs: Any) -> Any:
        path = FIXTURES / path if isinstance(path, str) else path
        async with await Store.open(db_url) as store:
            return await import_file(make_config(db_url, models=MODELS), store, path, **kwargs)

    return do_import


async def by_span(stored: Callable[[str], Any], db_url: str) -> dict[str, Any]:
    exchanges, _ = await stored(db_url)
    return {x.meta["span_id"]: x for x in exchanges}


def expect(x: Any, *, task: str, model: str, messages: list[dict[str, Any]], output: str,
           tokens: tuple[int | None, int | None], latency_ms: float, start_ms: int = 0) -> None:
    assert x.task_type == task and x.primary_model == model
    assert x.request["messages"] == messages
    assert x.primary_output == output
    assert (x.input_tokens, x.output_tokens) == tokens
    assert x.latency_ms == pytest.approx(latency_ms)
    assert x.created_at == NOON.replace(microsecond=start_ms % 1000 * 1000,
                                        second=start_ms // 1000)
    assert x.id == span_exchange_id(x.meta["trace_id"], x.meta["span_id"])
    assert x.source.startswith("import:") and x.route == "shadow"


JOKE = "Why did the developer bring OpenTelemetry to the party? Because it always knows how to " \
       "trace the fun!"


async def test_current_conventions_on_span_attributes(db_url: str, do_import, stored) -> None:
    report = await do_import(db_url, "semconv_attributes.jsonl")
    assert (report.format, report.lines, report.spans, report.imported, report.bad) == \
        ("otel", 1, 5, 2, 0)
    assert report.skipped == {"not GenAI": 1, "embeddings": 1,
                              "gen_ai.operation.name execute_tool": 1}
    spans = await by_span(stored, db_url)
    joke = spans["00f067aa0ba902b7"]
    expect(joke, task="jokes", model="gpt-4", output=JOKE, tokens=(52, 47), latency_ms=812,
           messages=[{"role": "system", "content": "You are a helpful bot"},
                     {"role": "user", "content": "Tell me a joke about OpenTelemetry"}])
    assert {k: joke.request[k] for k in ("temperature", "max_tokens", "top_p")} == \
        {"temperature": 0.2, "max_tokens": 200, "top_p": 1.0}
    assert joke.meta["response_model"] == "gpt-4-0613" and joke.meta["provider"] == "openai"
    assert joke.cost_usd == pytest.approx((52 * 1 + 47 * 2) / 1e6)
    weather = spans["00f067aa0ba902b8"]
    call = {"id": "call_VSPygqKTWdrhaFErNvMV18Yl", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'}}
    expect(weather, task="default", model="gpt-4", tokens=(97, 52), latency_ms=640, start_ms=1000,
           output="The weather in Paris is currently rainy with a temperature of 57°F.",
           messages=[{"role": "system", "content": "Answer in one sentence."},
                     {"role": "user", "content": "Weather in Paris?"},
                     {"role": "assistant", "content": None, "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": call["id"], "content": "rainy, 57°F"}])
    assert weather.request["tools"][0]["function"]["name"] == "get_weather"
    assert weather.not_carried is None


async def test_current_conventions_on_the_details_event(db_url: str, do_import, stored) -> None:
    report = await do_import(db_url, "semconv_event.jsonl")
    assert (report.imported, report.bad, report.spans) == (1, 0, 1)
    (x,) = (await by_span(stored, db_url)).values()
    answer = {"content": None, "tool_calls": [{"name": "get_weather",
                                               "arguments": {"location": "Paris"}}]}
    expect(x, task="default", model="gpt-4", tokens=(47, 17), latency_ms=1500,
           messages=[{"role": "user", "content": "Weather in Paris?"}],
           output=json.dumps(answer, separators=(",", ":")))
    assert x.request["seed"] == 100
    assert x.not_carried == ["tools (the span does not record their definitions)"]


async def test_older_events_and_the_1_26_prompt_events(db_url: str, do_import, stored) -> None:
    report = await do_import(db_url, "legacy_events.jsonl")
    assert (report.imported, report.bad, report.lines) == (2, 0, 2)
    spans = await by_span(stored, db_url)
    expect(spans["b7ad6b7169203331"], task="default", model="gpt-4", output=JOKE,  # choice 0
           tokens=(52, 47), latency_ms=812,
           messages=[{"role": "system", "content": "You're a helpful bot"},
                     {"role": "user", "content": "Tell me a joke about OpenTelemetry"}])
    old = spans["b7ad6b7169203332"]
    expect(old, task="default", model="gpt-4", output="The capital of France is Paris.",
           tokens=(None, None), latency_ms=300, start_ms=5000,
           messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert old.cost_usd is None  # unknown usage: unknown cost, never 0


async def test_openllmetry_indexed_attributes(db_url: str, do_import, stored) -> None:
    report = await do_import(db_url, "openllmetry.jsonl")
    assert (report.imported, report.bad, dict(report.skipped)) == (2, 0, {"not GenAI": 1})
    spans = await by_span(stored, db_url)
    expect(spans["1a2b3c4d5e6f7081"], task="classify_intent", model="gpt-4o-mini",
           output="refund", tokens=(31, 1), latency_ms=420,
           messages=[{"role": "system", "content": "Classify the intent: refund, shipping or other."},
                     {"role": "user", "content": "I want my money back for order 1234"}])
    assert spans["1a2b3c4d5e6f7081"].request["temperature"] == 0.0
    tool = spans["1a2b3c4d5e6f7082"]
    expect(tool, task="default", model="gpt-4o-mini", tokens=(40, 12), latency_ms=380,
           start_ms=600, messages=[{"role": "user", "content": "Where is parcel 7?"}],
           output='{"content":null,"tool_calls":[{"name":"track_parcel","arguments":{"parcel":7}}]}')
    assert tool.request["tools"] == [{"type": "function", "function": {"name": "track_parcel"}}]


async def test_openinference_flattened_messages(db_url: str, do_import, stored) -> None:
    report = await do_import(db_url, "openinference.jsonl")
    assert (report.imported, report.bad) == (1, 0)
    assert report.skipped == {"embeddings": 1, "openinference.span.kind CHAIN": 1}
    (x,) = (await by_span(stored, db_url)).values()
    call = {"id": None, "type": "function", "function": {
        "name": "multiply", "arguments": '{\n  "a": 23,\n  "b": 87\n}'}}
    expect(x, task="math",  # from the resource's shadowroute.task
           model="gpt-3.5-turbo-0613", output="The product of 23 times 87 is 2001.",
           tokens=(259, 14), latency_ms=640,
           messages=[{"role": "system", "content": "You are a Shakespearean writing assistant."},
                     {"role": "user", "content": "what is 23 times 87"},
                     {"role": "assistant", "content": None, "tool_calls": [call]},
                     {"role": "tool", "content": "2001"}])
    assert x.request["temperature"] == 0.1 and "max_tokens" not in x.request  # null: not set
    assert x.request["tools"][0]["function"]["name"] == "multiply"


async def test_langfuse_generations_and_the_task_attribute(db_url: str, do_import,
                                                          stored) -> None:
    report = await do_import(db_url, "langfuse.jsonl", task="fallback",
                             task_attribute="shadowroute.task, langfuse.observation.metadata.task")
    assert (report.imported, report.bad) == (1, 0)
    assert report.skipped == {"langfuse.observation.type span": 1}
    (x,) = (await by_span(stored, db_url)).values()
    expect(x, task="summarize", model="claude-3-5-haiku-20241022", tokens=(25, 8), latency_ms=950,
           output="Meeting moved to Thursday 3pm.",
           messages=[{"role": "system", "content": "Summarize in one line."},
                     {"role": "user",
                      "content": "The meeting moved from Tuesday to Thursday at 3pm."}])
    assert (x.request["temperature"], x.request["max_tokens"]) == (0.3, 300)


async def test_task_falls_back_to_the_option_then_default(db_url: str, do_import,
                                                          stored) -> None:
    await do_import(db_url, "openllmetry.jsonl", task="support")
    tasks = {x.meta["span_id"]: x.task_type for x in (await stored(db_url))[0]}
    # the span's shadowroute.task wins over --task; --task names the spans without one
    assert tasks == {"1a2b3c4d5e6f7081": "classify_intent", "1a2b3c4d5e6f7082": "support"}


async def test_reimport_stores_nothing_twice(tmp_path: Path, db_url: str, do_import,
                                             stored_counts) -> None:
    first = await do_import(db_url, "semconv_attributes.jsonl")
    # the same spans again, ids in upper case, under another task: the same exchanges
    text = (FIXTURES / "semconv_attributes.jsonl").read_text()
    again = tmp_path / "again.jsonl"
    again.write_text(text.replace("4bf92f3577b34da6a3ce929d0e0e4736",
                                  "4BF92F3577B34DA6A3CE929D0E0E4736") * 2)
    second = await do_import(db_url, again, task="other")
    assert (first.imported, second.imported, second.already_stored) == (2, 0, 4)
    assert "4 spans were already stored" in "\n".join(second.summary())
    async with await Store.open(db_url) as store:
        assert await stored_counts(store) == (2, 0)


async def test_bad_lines_and_spans_are_counted_not_fatal(db_url: str, do_import, stored) -> None:
    report = await do_import(db_url, "malformed.jsonl")
    assert (report.lines, report.spans, report.imported, report.bad) == (4, 6, 1, 6)
    assert report.skipped == {"not GenAI": 1}
    assert [str(bad) for bad in report.bad_lines] == [
        "line 2: invalid JSON: Expecting value (column 1)",
        "line 3: resourceSpans: missing: not an OTLP/JSON trace export (one "
        "ExportTraceServiceRequest per line)",
        "line 5: span bbbbbbbbbbbbbbbb ('chat gpt-4o'): no input messages on the span (was "
        "capturing message content off? e.g. OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)",
        "line 5: span xyz ('chat broken'): spanId: expected 16 hex digits (not all zero), "
        "got 'xyz'",
        "line 5: span cccccccccccccccc ('chat gpt-4o'): the call failed (span status ERROR: 429 "
        "Too Many Requests)",
        "line 5: span dddddddddddddddd ('chat gpt-4o'): gen_ai.usage.input_tokens: 'many' is "
        "not a token count",
    ]
    (x,) = (await stored(db_url))[0]
    assert x.primary_output == "hello" and (x.input_tokens, x.output_tokens) == (None, None)
    summary = report.summary()
    assert summary[0].startswith("imported 1 exchanges (default: 1), 6 bad lines")
    assert summary[1] == "6 spans read; left out (no chat call): not GenAI: 1"


async def test_auto_detects_otlp_and_options_that_do_not_fit(
    tmp_path: Path, db_url: str, do_import, chat_line, write_jsonl,
) -> None:
    report = await do_import(db_url, "semconv_event.jsonl")  # --format auto
    assert report.format == "otel" and report.imported == 1
    chat = write_jsonl(tmp_path / "chat.jsonl", [chat_line(1)])
    with pytest.raises(ConfigError, match="--task-attribute: only goes with --format otel"):
        await do_import(db_url, chat, task_attribute="shadowroute.task")
    with pytest.raises(ConfigError, match="--requests: semconv_event.jsonl is an OTLP trace"):
        await do_import(db_url, "semconv_event.jsonl", requests=chat)
    # --format otel on a chat log: every line is bad, with the reason
    report = await do_import(db_url, chat, fmt="otel")
    assert report.imported == 0 and str(report.bad_lines[0]).startswith(
        "line 1: resourceSpans: missing")


def test_sdk_spans_imported_then_replayed_scored_and_reported(tmp_path: Path, cli,
                                                              request_for) -> None:
    """Spans made by the OpenTelemetry SDK, exported as OTLP/JSON, imported with the CLI, then
    `replay` (against the fake LLM server), `score` and `report` work on the exchanges."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    with FakeLLMServer(default_settings(latency_scale=0.0)) as server:
        base = server.base_url + "/v1"
        for seed in range(6):
            req = request_for("classify_intent", seed)
            answer = httpx.post(f"{base}/chat/completions", json={**req, "model": "frontier"},
                                timeout=10).json()
            text = answer["choices"][0]["message"]["content"]
            with tracer.start_as_current_span("chat frontier") as span:
                span.set_attributes({
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "frontier", "gen_ai.request.temperature": 0.0,
                    "gen_ai.usage.input_tokens": answer["usage"]["prompt_tokens"],
                    "gen_ai.usage.output_tokens": answer["usage"]["completion_tokens"],
                    "gen_ai.input.messages": json.dumps([
                        {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
                        for m in req["messages"]]),
                    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                        {"type": "text", "content": text}], "finish_reason": "stop"}]),
                    "shadowroute.task": "classify_intent"})
        with tracer.start_as_current_span("GET /health"):
            pass
        (tmp_path / "traces.jsonl").write_text(
            json.dumps(otlp_line(exporter.get_finished_spans())) + "\n")
        (tmp_path / "shadowroute.toml").write_text(
            f'database_url = "{url}"\n'
            f'[models.frontier]\nbase_url = "{base}"\ninput_price = 2.5\noutput_price = 10\n'
            f'[models.small]\nbase_url = "{base}"\ninput_price = 0.15\noutput_price = 0.6\n'
            '[tasks.classify_intent]\nnoise_floor_rate = 0\n')
        imported = cli("import", "traces.jsonl", "--format", "otel", cwd=tmp_path)
        assert imported.returncode == 0, imported.stderr
        assert imported.stdout.startswith("imported 6 exchanges (classify_intent: 6), 0 bad")
        assert "7 spans read; left out (no chat call): not GenAI: 1" in imported.stdout
        again = cli("import", "traces.jsonl", cwd=tmp_path)  # --format auto
        assert again.returncode == 0 and "6 spans were already stored" in again.stdout
        replayed = cli("replay", "--task", "classify_intent", "--candidates", "small",
                       cwd=tmp_path)
        assert replayed.returncode == 0, replayed.stderr
        assert "stored 6 outputs (small: 6)" in replayed.stdout
        assert server.calls("small") == 6
    scored = cli("score", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    reported = cli("report", "--out", "r.html", "--json", "r.json", cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    (task,) = [t for t in report["tasks"] if t["task"] == "classify_intent"]
    (small,) = [c for c in task["candidates"] if c["model"] == "small"]
    assert small["outputs"] == 6 and small["verdict"]
