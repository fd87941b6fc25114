"""Spans recorded in memory: ``recording()`` sends shadowroute's spans to a fresh SDK tracer
provider (``shadowroute.telemetry.configure``) for the block, and ``attrs()`` reads a span's
attributes. Used by tests/pipeline/test_telemetry.py, tests/scoring/test_judge_spans.py and
tests/offline/test_replay_spans.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shadowroute import telemetry


class Recorder:
    """The provider's ``tracer`` (for the test's own spans) and the finished spans."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def spans(self, role: str | None = None) -> list[ReadableSpan]:
        """shadowroute's finished spans (not the test's own), oldest first; with ``role``, those
        whose ``shadowroute.role`` is ``role``."""
        found = [span for span in self.exporter.get_finished_spans()
                 if span.instrumentation_scope is not None
                 and span.instrumentation_scope.name == telemetry.TRACER_NAME
                 and (role is None or attrs(span).get("shadowroute.role") == role)]
        return sorted(found, key=lambda span: span.start_time or 0)


@contextmanager
def recording() -> Iterator[Recorder]:
    recorder = Recorder()
    telemetry.configure(recorder.provider)
    try:
        yield recorder
    finally:
        telemetry.configure(None)
        recorder.provider.shutdown()


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})
