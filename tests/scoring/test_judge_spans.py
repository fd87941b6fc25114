"""The judge's calls as OpenTelemetry spans: one GenAI client span per call (role ``judge``), a
child of the span current in the scoring run, over real HTTP to the fake LLM server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from shadowroute.config import load_config
from shadowroute.fakellm import FakeLLMServer, default_settings
from shadowroute.scoring import score
from shadowroute.scoring.judge import Judge
from shadowroute.scoring.plan import JudgeSpec
from shadowroute.store import Store
from support.otel import attrs, recording

pytestmark = pytest.mark.anyio


async def test_a_scoring_run_makes_one_judge_span_per_call(
    tmp_path: Path, sqlite_url: str, scoring_exchange: Callable[..., Any],
) -> None:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as srv:
        port = urlsplit(srv.base_url).port
        config = load_config(data={
            "database_url": sqlite_url,
            "models": {"big": {"base_url": "http://127.0.0.1:9/v1"},
                       "mini": {"base_url": "http://127.0.0.1:9/v1"},
                       "judge": {"base_url": srv.base_url + "/v1", "input_price": 1.0,
                                 "output_price": 4.0}},
            "judge": {"model": "judge", "concurrency": 2, "max_tokens": 200},
            "tasks": {"classify": {"candidates": ["mini"], "scorers": ["judge"]}},
        })
        async with await Store.open(sqlite_url) as store:
            await store.write([scoring_exchange("classify", f"refund {i}", {"mini": f"refund {i}"})
                               for i in range(3)])
            with recording() as rec:
                with rec.tracer.start_as_current_span("nightly scoring") as nightly:
                    report = await score(config, store)
                judged = rec.spans(role="judge")
                everything = rec.spans()
    assert report.judge_calls == 6 and len(judged) == 6 == len(everything)
    for span in judged:
        a = attrs(span)
        assert span.name == "chat judge" and span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET and "error.type" not in a
        assert (a["gen_ai.operation.name"], a["gen_ai.provider.name"]) == ("chat", "openai")
        assert a["gen_ai.request.model"] == "judge" and a["gen_ai.response.model"] == "judge"
        assert (a["server.address"], a["server.port"]) == ("127.0.0.1", port)
        assert (a["gen_ai.request.max_tokens"], a["gen_ai.request.temperature"]) == (200, 0)
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        expected = (a["gen_ai.usage.input_tokens"] * 1.0 + a["gen_ai.usage.output_tokens"] * 4.0) / 1e6
        assert a["shadowroute.cost_usd"] == pytest.approx(expected)
        assert a["gen_ai.response.finish_reasons"] == ("stop",)
        # Scoring is not background work of a request: the judge's spans sit under the run's.
        assert span.parent is not None and span.parent.span_id == nightly.get_span_context().span_id
        assert span.links == ()
    assert sum(attrs(s)["shadowroute.cost_usd"] for s in judged) == pytest.approx(report.judge_cost_usd)


async def test_compare_names_the_judged_task_and_a_failure_is_an_error_span(
    tmp_path: Path, make_config, scoring_preset, scripted_judge, verdict,
) -> None:
    config = make_config(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", scoring_preset)
    spec = JudgeSpec(version="v1", rubric="", threshold=0.5)
    messages = [{"role": "user", "content": "Where is my parcel?"}]
    with recording() as rec:
        judge = Judge(config, provider=scripted_judge(lambda a, b: verdict("same")))
        await judge.compare(spec, messages, "shipping", "delivery", task="classify")
        failing = Judge(config, provider=scripted_judge(lambda a, b: 1 / 0))  # type: ignore[arg-type, return-value]
        with pytest.raises(Exception, match="judge call failed"):
            await failing.compare(spec, messages, "shipping", "delivery", task="classify")
        spans = rec.spans(role="judge")
    ok, broken = spans[:2], spans[2:]
    assert [attrs(s)["shadowroute.task"] for s in spans] == ["classify"] * 3
    assert all(s.status.status_code is StatusCode.UNSET for s in ok)
    (span,) = broken
    assert span.status.status_code is StatusCode.ERROR and attrs(span)["error.type"] == "internal"
    assert "ZeroDivisionError" in (span.status.description or "")
