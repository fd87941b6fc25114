"""OTLP/JSON trace exports for ``shadowroute import --format otel``: the hand-written fixtures of
``tests/fixtures/otel`` (one file per instrumentation's span shape), and spans made by the real
OpenTelemetry SDK written as the collector's file exporter writes them.

The encoding follows the OTLP specification's "JSON Protobuf Encoding": lowerCamelCase keys,
``traceId``/``spanId`` as hex, 64-bit integers (times, ``intValue``) as decimal strings, enums as
integers (the SDK's ``SpanKind`` is one less than OTLP's ``SPAN_KIND_*``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "otel"
"""One JSONL file per span shape (each read by a test of ``tests/offline/test_otel_import.py``)."""


def any_value(value: Any) -> dict[str, Any]:
    """A Python attribute value as an OTLP/JSON ``AnyValue``."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    raise TypeError(f"not an attribute value: {value!r}")


def key_values(attributes: Any) -> list[dict[str, Any]]:
    return [{"key": key, "value": any_value(value)} for key, value in dict(attributes or {}).items()]


def otlp_line(spans: Iterable[Any]) -> dict[str, Any]:
    """Finished SDK spans (``ReadableSpan``) as one ExportTraceServiceRequest, grouped by scope."""
    spans = list(spans)
    scopes: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        context = span.get_span_context()
        scopes.setdefault(span.instrumentation_scope.name, []).append({
            "traceId": f"{context.trace_id:032x}", "spanId": f"{context.span_id:016x}",
            "parentSpanId": f"{span.parent.span_id:016x}" if span.parent else "",
            "name": span.name, "kind": span.kind.value + 1,
            "startTimeUnixNano": str(span.start_time), "endTimeUnixNano": str(span.end_time),
            "attributes": key_values(span.attributes),
            "events": [{"timeUnixNano": str(e.timestamp), "name": e.name,
                        "attributes": key_values(e.attributes)} for e in span.events],
            "status": {"code": span.status.status_code.value,
                       **({"message": span.status.description} if span.status.description
                          else {})},
        })
    resource = spans[0].resource.attributes if spans else {}
    return {"resourceSpans": [{
        "resource": {"attributes": key_values(resource)},
        "scopeSpans": [{"scope": {"name": name}, "spans": items} for name, items in scopes.items()],
    }]}
