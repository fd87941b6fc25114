"""``shadowroute import --format otel``: the GenAI spans of an OTLP/JSON trace export as exchanges.

One ExportTraceServiceRequest per line (the collector's file exporter), in the OTLP/JSON encoding.
Each chat or text-completion span becomes an exchange, its messages read from the first source
that has them: the GenAI conventions' ``gen_ai.input.messages`` / ``gen_ai.output.messages``
attributes, then a ``gen_ai.client.inference.operation.details`` event, the older per-message
events, ``gen_ai.prompt`` / ``gen_ai.completion`` (whole or OpenLLMetry's indexed form),
OpenInference's ``llm.input_messages.N.*``, Langfuse's ``langfuse.observation.input``. Other spans
are counted in ``ImportReport.skipped``; ids come from the trace and span ids; the task from a span
attribute, else ``--task``. The messages are read by :mod:`.otel_messages`; the shapes, and what
is dropped: docs/otel-import.md.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..capture.capture import Capture
from ..config import Config
from ..records import ExchangeRecord, utcnow
from .lines import LineError, LineReader, json_type, loads, task_of
from .otel_messages import Message, array, conversation, indexed, loose, mapping

if TYPE_CHECKING:
    from .importer import ImportReport

__all__ = ["DEFAULT_TASK_ATTRIBUTE", "OtelReader", "looks_like_otlp", "span_exchange_id"]

DEFAULT_TASK_ATTRIBUTE = "shadowroute.task"
"""The span (or resource) attribute naming a span's task type unless ``--task-attribute`` says."""

_HEX = re.compile(r"[0-9a-fA-F]+")
_OPERATIONS = (("gen_ai.operation.name", ("chat", "generate_content"), "text_completion"),
               ("openinference.span.kind", ("LLM",), None),
               ("llm.request.type", ("chat",), "completion"),  # OpenLLMetry
               ("langfuse.observation.type", ("generation",), None))
_PARAMS = {"gen_ai.request.temperature": "temperature", "gen_ai.request.max_tokens": "max_tokens",
           "gen_ai.request.top_p": "top_p", "gen_ai.request.seed": "seed",
           "gen_ai.openai.request.seed": "seed", "gen_ai.request.stop_sequences": "stop",
           "gen_ai.request.frequency_penalty": "frequency_penalty",
           "gen_ai.request.presence_penalty": "presence_penalty", "gen_ai.request.choice.count": "n"}
_KNOWN_PARAMS = {"temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "stop",
                 "frequency_penalty", "presence_penalty", "n", "response_format", "tool_choice"}
_USAGE = (("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"),
          ("gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens"),
          ("llm.token_count.prompt", "llm.token_count.completion"))
_LANGFUSE_USAGE = (("input", "output"), ("input_tokens", "output_tokens"),
                   ("prompt_tokens", "completion_tokens"))
_REQUEST_MODEL = ("gen_ai.request.model", "llm.request.model_name", "llm.model_name",
                  "langfuse.observation.model.name")
_RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model_name")
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
_SCALARS: dict[str, Callable[[Any], Any]] = {"stringValue": str, "boolValue": bool,
                                             "intValue": int, "doubleValue": float,
                                             "bytesValue": str}


def span_exchange_id(trace_id: str, span_id: str) -> str:
    """The id of the exchange a span becomes (32 hex digits), however its ids are cased."""
    key = f"otel:{trace_id.lower()}:{span_id.lower()}"
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def looks_like_otlp(path: Path) -> bool:
    """The first non-blank line of ``path`` is an OTLP/JSON trace export (``--format auto``)."""
    try:
        with path.open("rb") as f:
            for raw in f:
                if raw.strip():
                    return b'"resourceSpans"' in raw and "resourceSpans" in loads(raw)
    except (OSError, LineError):
        pass
    return False


class _Skip(Exception):  # noqa: N818 - not an error: a span that is no chat call, and why
    pass


class OtelReader(LineReader):
    """Turns OTLP/JSON lines into exchange records a batch at a time, like the importer's reader
    of JSONL lines (run in a worker thread); a bad line or span is reported by line number."""

    format = "otel"

    def __init__(self, config: Config, path: Path, file: IO[bytes], *, task: str | None,
                 task_attribute: str | None, report: ImportReport) -> None:
        self.config, self.path, self.file, self.task, self.report = config, path, file, task, report
        names = (task_attribute or DEFAULT_TASK_ATTRIBUTE).split(",")
        self.task_attributes = [name.strip() for name in names if name.strip()]
        report.format = self.format

    def close(self) -> None:
        self.file.close()

    def records(self, raw: bytes) -> list[ExchangeRecord]:
        return self._line(loads(raw))

    def _line(self, line: dict[str, Any]) -> list[ExchangeRecord]:
        batches = line.get("resourceSpans")
        if not isinstance(batches, list):
            raise LineError("resourceSpans: " + ("missing: not an OTLP/JSON trace export (one "
                            "ExportTraceServiceRequest per line)" if batches is None else
                            f"expected an array, got {json_type(batches)}"))
        records: list[ExchangeRecord] = []
        for i, batch in enumerate(batches):
            try:
                batch = mapping(batch, "resourceSpans")
                resource = _attributes(mapping(batch.get("resource") or {}, "resource")
                                       .get("attributes"))
                spans = [span for scope in array(batch.get("scopeSpans") or [], "scopeSpans")
                         for span in array(mapping(scope, "scopeSpans").get("spans") or [],
                                            "spans")]
            except LineError as exc:
                self.report.add_bad(self.number, f"resourceSpans[{i}]: {exc}")
                continue
            for span in spans:
                self.report.spans += 1
                try:
                    records.append(self._span(mapping(span, "span"), resource))
                except _Skip as skip:
                    self.report.skipped[str(skip)] += 1
                except (LineError, RecursionError) as exc:
                    reason = str(exc) if isinstance(exc, LineError) else "nested too deeply"
                    ids = span if isinstance(span, dict) else {}
                    label = ids.get("spanId") or "without spanId"
                    if isinstance(ids.get("name"), str):
                        label += f" ({ids['name']!r})"
                    self.report.add_bad(self.number, f"span {label}: {reason}")
        return records

    def _span(self, span: dict[str, Any], resource: dict[str, Any]) -> ExchangeRecord:
        attrs = _attributes(span.get("attributes"))
        operation = _operation(attrs)
        trace_id = _hex_id(span.get("traceId"), 16, "traceId")
        span_id = _hex_id(span.get("spanId"), 8, "spanId")
        status = span.get("status") if isinstance(span.get("status"), dict) else {}
        if status.get("code") in (2, "2", "STATUS_CODE_ERROR"):
            detail = f": {status['message']}" if status.get("message") else ""
            raise LineError(f"the call failed (span status ERROR{detail})")
        start = _nanos(span.get("startTimeUnixNano"), "startTimeUnixNano")
        end = _nanos(span.get("endTimeUnixNano"), "endTimeUnixNano")
        if start and end and end < start:
            raise LineError("endTimeUnixNano is before startTimeUnixNano")
        events = [(event.get("name"), _attributes(event.get("attributes")))
                  for event in array(span.get("events") or [], "events")
                  if isinstance(event, dict)]
        not_carried: list[str] = []
        messages, (output, finish) = conversation(attrs, events, not_carried)
        model = _first_text(attrs, _REQUEST_MODEL + _RESPONSE_MODEL)
        if model is None:
            raise LineError("no model: the span has no gen_ai.request.model (nor "
                            "gen_ai.response.model, llm.model_name)")
        request: dict[str, Any] = {"model": model, "messages": messages,
                                   **_params(attrs, not_carried)}
        tools = _tools(attrs)
        if tools:
            request["tools"] = tools
        elif output.get("tool_calls") or any(m.get("tool_calls") for m in messages):
            not_carried.append("tools (the span does not record their definitions)")
        if operation == "text_completion":
            not_carried.append("text completion (its prompt is sent as a chat message)")
        response = {"object": "chat.completion", "model": _first_text(attrs, _RESPONSE_MODEL)
                    or model, "choices": [{"index": 0, "message": output,
                                           "finish_reason": finish}]}
        metadata = {key: value for key, value in (
            ("trace_id", trace_id), ("span_id", span_id), ("span_name", span.get("name")),
            ("provider", _first_text(attrs, _PROVIDER)),
            ("response_model", _first_text(attrs, _RESPONSE_MODEL)),
            ("response_id", _first_text(attrs, ("gen_ai.response.id",))),
        ) if isinstance(value, str) and value}
        task = task_of(*(source.get(name) for name in self.task_attributes
                         for source in (attrs, resource)), self.task)
        tokens = _usage(attrs)
        try:
            created = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=start // 1000)
            capture = Capture(task=task, request=request, result=response, primary_model=model,
                              metadata=metadata, source=f"import:{self.path.name}",
                              created_at=created if start else utcnow(),
                              latency_ms=(end - start) / 1e6 if start and end else None)
            capture.resolve()
            capture.input_tokens, capture.output_tokens = tokens  # unknown stays None, never 0
            capture.not_carried.extend(dict.fromkeys(not_carried))
            record = capture.to_record(self.config)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise LineError(f"cannot read the exchange: {exc}") from None
        if not record.primary_output:
            raise LineError("the output has no text and no tool call")
        record.id = span_exchange_id(trace_id, span_id)
        return record


# --------------------------------------------------------------------------- OTLP/JSON values


def _attributes(values: Any) -> dict[str, Any]:
    """``[{"key": k, "value": AnyValue}, ...]`` as a dict of plain values."""
    out: dict[str, Any] = {}
    for kv in array(values or [], "attributes"):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise LineError(f"attributes: expected {{\"key\": ..., \"value\": ...}}, got {kv!r:.60}")
        out[kv["key"]] = _value(kv.get("value"), kv["key"])
    return out


def _value(value: Any, key: str) -> Any:
    """An OTLP ``AnyValue`` as a plain value (``intValue`` is a decimal string in OTLP/JSON)."""
    if value is None or value == {}:
        return None
    for name, convert in _SCALARS.items():
        if isinstance(value, dict) and name in value:
            try:
                return convert(value[name])
            except (TypeError, ValueError):
                raise LineError(f"{key}: {value!r:.80} is not a valid {name}") from None
    if isinstance(value, dict) and "arrayValue" in value:
        items = mapping(value["arrayValue"], key).get("values") or []
        return [_value(item, key) for item in array(items, key)]
    if isinstance(value, dict) and "kvlistValue" in value:
        return _attributes(mapping(value["kvlistValue"], key).get("values"))
    raise LineError(f"{key}: expected an AnyValue, got {value!r:.80}")


def _hex_id(value: Any, size: int, key: str) -> str:
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value) \
            or not value.strip("0"):
        raise LineError(f"{key}: expected {2 * size} hex digits (not all zero), got {value!r:.50}")
    return value.lower()


def _nanos(value: Any, key: str) -> int:
    try:
        if int(value or 0) >= 0:
            return int(value or 0)
    except (TypeError, ValueError):
        pass
    raise LineError(f"{key}: expected nanoseconds since 1970, got {value!r:.40}")


# --------------------------------------------------------------------------- span attributes


def _operation(attrs: dict[str, Any]) -> str:
    """``chat`` or ``text_completion``; :class:`_Skip` (with the reason) for any other span."""
    for key, chat, completion in _OPERATIONS:
        value = attrs.get(key)
        if isinstance(value, str) and value:
            if value in chat or value == completion:
                return "chat" if value in chat else "text_completion"
            raise _Skip("embeddings" if value.lower().startswith("embedding") else
                        f"{key} {value}")
    if _first_text(attrs, _REQUEST_MODEL) and any(key.startswith("gen_ai.") for key in attrs):
        return "chat"
    raise _Skip("not GenAI")


def _first_text(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((attrs[k].strip() for k in keys if isinstance(attrs.get(k), str)
                 and attrs[k].strip()), None)


def _usage(attrs: dict[str, Any]) -> tuple[int | None, int | None]:
    """(input, output) tokens, each ``None`` when the span does not say."""
    pairs = [(attrs, keys) for keys in _USAGE]
    if attrs.get("langfuse.observation.usage_details") is not None:
        details = mapping(attrs["langfuse.observation.usage_details"],
                           "langfuse.observation.usage_details")
        pairs += [(details, keys) for keys in _LANGFUSE_USAGE]
    found: list[int | None] = [None, None]
    for source, keys in pairs:
        for i, key in enumerate(keys):
            value = source.get(key)
            if found[i] is not None or value is None:
                continue
            if isinstance(value, float | str) and str(value).strip().removesuffix(".0").isdigit():
                value = int(str(value).strip().removesuffix(".0"))
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise LineError(f"{key}: {value!r:.40} is not a token count")
            found[i] = value
    return found[0], found[1]


def _params(attrs: dict[str, Any], not_carried: list[str]) -> dict[str, Any]:
    """The request's settings in the canonical (OpenAI chat) form."""
    params: dict[str, Any] = {}
    for key in ("llm.invocation_parameters", "langfuse.observation.model.parameters"):
        given = loose(attrs.get(key))
        if isinstance(given, dict):
            params.update({k: v for k, v in given.items() if k in _KNOWN_PARAMS})
    params.update({name: attrs[key] for key, name in _PARAMS.items() if attrs.get(key) is not None})
    if attrs.get("gen_ai.request.top_k") is not None:
        not_carried.append("top_k")
    response_format = attrs.get("gen_ai.openai.request.response_format")
    if response_format == "json_object":
        params["response_format"] = {"type": "json_object"}
    elif attrs.get("gen_ai.output.type") == "json" or response_format == "json_schema":
        not_carried.append("response_format (a JSON output: the span does not record its schema)")
    return {k: v for k, v in params.items() if v is not None}


def _tools(attrs: dict[str, Any]) -> list[Message]:
    """Tool definitions: ``gen_ai.tool.definitions``, OpenInference's ``llm.tools.N``,
    OpenLLMetry's ``llm.request.functions.N``."""
    definitions = loose(attrs.get("gen_ai.tool.definitions"))
    tools = [tool if "function" in tool else {"type": "function", "function": {
        k: tool[k] for k in ("name", "description", "parameters") if k in tool}}
        for tool in (definitions if isinstance(definitions, list) else ())
        if isinstance(tool, dict) and (tool.get("function") or tool.get("name"))]
    schemas = [loose(item.get("tool.json_schema")) for item in indexed(attrs, "llm.tools.")]
    tools += [schema for schema in schemas if isinstance(schema, dict)]
    for item in indexed(attrs, "llm.request.functions."):  # OpenLLMetry
        if item.get("name"):
            tools.append({"type": "function", "function": {
                k: loose(item[k]) for k in ("name", "description", "parameters") if k in item}})
    return tools
