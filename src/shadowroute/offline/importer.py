"""``shadowroute import``: logged production traffic stored as exchanges, ready for ``replay``.

Two line formats (JSONL, one object per line), told apart by the first readable line:

* **chat**: ``{"request": {...}, "response": {...}, "task": "...", "metadata": {...},
  "latency_ms": 812, "created_at": "2024-05-01T12:00:00Z", "candidates": {"MODEL": ...}}`` --
  an OpenAI chat-completion request and its response (an Anthropic Messages request and
  response are translated to the canonical shape; the response may also be the answer's plain
  text, whose usage is unknown); only ``request`` and ``response`` are required.
  ``candidates`` holds answers other models gave to the same request, stored as the
  exchange's candidate outputs (:mod:`.candidates`: the response shapes, ids, pricing).
* **batch**: the OpenAI Batch API *output* file (``{"custom_id": ..., "response": {"status_code":
  200, "body": {...}}, "error": null}``). It does not contain the requests: they come from the
  batch *input* file (``requests``), joined on ``custom_id`` through an index of byte offsets,
  so neither file is held in memory.
* **otel**: an OTLP/JSON trace export, whose GenAI chat spans become exchanges (:mod:`.otel`).

Every line is validated on its own (pydantic); a bad line is reported by number with the reason
and skipped, the good ones are stored (a line is stored whole or not at all: one bad candidate
entry makes it a bad line). An exchange's id is a digest of its line's content without its
candidates, a candidate output's id a digest of the exchange's id and its model, so importing
a file again stores nothing twice, and a stored exchange whose line gained a candidate gets
that output. Exchanges imported without candidates get them from ``shadowroute replay``.
Imported exchanges count nothing into ``traffic_daily``. Tokens a response does not report
stay unknown (``None``), never 0; so does the cost.

``[redaction]`` applies before anything is written (request, metadata, the primary's answer
and every candidate output), as for captured traffic; a line whose redaction fails (a hook
raised) is counted in ``redaction_errors`` and not stored.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import anyio

from ..capture.capture import Capture
from ..config import Config
from ..errors import ConfigError
from ..records import ExchangeRecord
from ..store import Store
from ..store.queries.imports import adopt_stored_times, stored_output_models
from ..store.redaction import Redactor, redact_or_drop
from .candidates import candidate_outputs, declared
from .lines import (
    CANDIDATES_KEY,
    DEFAULT_TASK,
    BatchInputLine,
    BatchOutputLine,
    ChatLine,
    LineError,
    LineReader,
    OpenAIResponse,
    aware,
    error_text,
    exchange_id,
    has_usage,
    json_type,
    loads,
    response_api,
    task_of,
    validate,
)
from .otel import OtelReader, looks_like_otlp

__all__ = ["BATCH_ROWS", "DEFAULT_TASK", "MAX_LISTED", "BadLine", "Format", "ImportReport",
           "exchange_id", "import_file"]

log = logging.getLogger("shadowroute")

Format = Literal["auto", "chat", "batch", "otel"]
BATCH_ROWS = 500
"""Exchanges per ``Store.write``."""
MAX_LISTED = 20
"""Bad lines kept (and printed) with their reason; the rest are only counted."""


# --------------------------------------------------------------------------- the batch requests


class _Requests:
    """The Batch API input file, indexed by ``custom_id`` -> (byte offset, line number)."""

    def __init__(self, path: Path) -> None:
        self.name = path.name
        self._file = _open(path, "--requests")
        self._index: dict[str, tuple[int, int]] = {}
        self._duplicates: dict[str, int] = {}
        offset, number = 0, 0
        try:
            for raw in self._file:
                number += 1
                start, offset = offset, offset + len(raw)
                try:
                    line = loads(raw)
                except LineError:
                    continue  # no custom_id to join on: an output line naming it is reported
                custom_id = line.get("custom_id")
                if not isinstance(custom_id, str):
                    continue
                if custom_id in self._index:
                    self._duplicates.setdefault(custom_id, number)
                else:
                    self._index[custom_id] = (start, number)
        except OSError as exc:
            self.close()
            raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(path),
                              key="--requests") from exc

    def request(self, custom_id: str) -> dict[str, Any]:
        """The canonical request body for ``custom_id``; a bad line when it has none."""
        found = self._index.get(custom_id)
        if found is None:
            raise LineError(f"custom_id {custom_id!r} is not in the requests file {self.name}")
        if custom_id in self._duplicates:
            raise LineError(f"custom_id {custom_id!r} appears twice in {self.name} (lines "
                           f"{found[1]} and {self._duplicates[custom_id]}): which request?")
        offset, number = found
        self._file.seek(offset)
        try:
            raw = loads(self._file.readline())
            line = validate(BatchInputLine, raw)
        except LineError as exc:
            raise LineError(f"its request (line {number} of {self.name}) is invalid: {exc}") from None
        if not line.url.rstrip("/").endswith("/chat/completions"):
            raise LineError(f"its request (line {number} of {self.name}) is a {line.url} call; "
                           "only /v1/chat/completions calls can be imported")
        return dict(raw["body"])

    def close(self) -> None:
        self._file.close()


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did. ``imported`` counts new exchanges; ``already_stored`` lines whose
    exchange was stored before (an earlier import of the same line, or a repeat in the file);
    ``outputs`` the candidate outputs stored (those of new exchanges, and those new to a stored
    one)."""

    path: str
    format: str = "chat"
    lines: int = 0
    """Non-blank lines read."""
    imported: int = 0
    already_stored: int = 0
    bad: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    """The first :data:`MAX_LISTED` bad lines."""
    tasks: Counter[str] = field(default_factory=Counter)
    """New exchanges per task type."""
    redactions: Counter[str] = field(default_factory=Counter)
    """Strings replaced before storage, by redactor name."""
    redaction_errors: int = 0
    """Lines not stored because their redaction failed (never stored unredacted)."""
    outputs: int = 0
    """New candidate outputs (a line's ``candidates``)."""
    outputs_already_stored: int = 0
    """Candidate outputs not stored because their (exchange, model) had one already."""
    models: Counter[str] = field(default_factory=Counter)
    """New candidate outputs per model."""
    undeclared: Counter[str] = field(default_factory=Counter)
    """New candidate outputs per model not declared under ``[models]`` (stored without cost)."""
    unknown_usage: int = 0
    """New candidate outputs whose response reported no usage (tokens and cost unknown)."""
    spans: int = 0
    """Spans read (``otel`` format); bad spans count in ``bad``, with their line."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Spans that are no chat call (``otel`` format), by reason: not GenAI, embeddings, ..."""
    seconds: float = 0.0

    def _candidate_lines(self) -> list[str]:
        if not (self.outputs or self.outputs_already_stored):
            return []
        per_model = ", ".join(f"{model}: {n:,}" for model, n in sorted(self.models.items()))
        head = f"stored {self.outputs:,} candidate outputs" + (f" ({per_model})" if per_model
                                                               else "")
        if self.outputs_already_stored:
            head += f"; {self.outputs_already_stored:,} were stored already"
        out = [head]
        if self.unknown_usage:
            out.append(f"{self.unknown_usage:,} candidate outputs report no usage: their tokens "
                       "and cost are unknown (left empty, not 0)")
        if self.undeclared:
            names = ", ".join(f"{model} ({n:,})" for model, n in sorted(self.undeclared.items()))
            out.append(f"not declared under [models]: {names}; stored without cost (the report "
                       "prices candidates by [models], and promote needs a [models] key)")
        return out

    def add_bad(self, line: int, reason: str) -> None:
        self.bad += 1
        if len(self.bad_lines) < MAX_LISTED:
            self.bad_lines.append(BadLine(line, reason))

    def summary(self) -> list[str]:
        """The import in a few plain lines: the counts, then the first bad lines."""
        per_task = ", ".join(f"{task}: {n:,}" for task, n in sorted(self.tasks.items()))
        head = (f"imported {self.imported:,} exchanges" + (f" ({per_task})" if per_task else "")
                + f", {self.bad:,} bad lines from {self.path} ({self.format} format, "
                f"{self.lines:,} lines, {self.seconds:.1f}s)")
        out = [head]
        if self.format == "otel":
            skipped = ", ".join(f"{why}: {n:,}" for why, n in sorted(self.skipped.items()))
            out.append(f"{self.spans:,} spans read" + (f"; left out (no chat call): {skipped}"
                                                       if skipped else ""))
        out.extend(self._candidate_lines())
        if self.already_stored and self.format == "otel":
            out.append(f"{self.already_stored:,} spans were already stored (an exchange's id "
                       "comes from its trace and span ids: importing a span again stores nothing)")
        elif self.already_stored:
            out.append(f"{self.already_stored:,} lines were already stored (ids come from the "
                       "line's content: importing a line again, even with another --task, "
                       "stores nothing; a candidate new to a stored exchange is added)")
        if self.redaction_errors:
            out.append(f"{self.redaction_errors:,} lines not stored: redaction failed (see the "
                       "log; fix the [redaction] hook and import again)")
        out.extend(str(bad) for bad in self.bad_lines)
        if self.bad > len(self.bad_lines):
            out.append(f"... and {self.bad - len(self.bad_lines):,} more")
        return out


def _open(path: Path, key: str | None = None) -> IO[bytes]:
    try:
        return path.open("rb")
    except FileNotFoundError:
        message = "file not found"
    except IsADirectoryError:
        message = "is a directory, not a JSONL file"
    except OSError as exc:
        message = f"cannot read: {exc.strerror or exc}"
    raise ConfigError(message, path=str(path), key=key)


class _Reader(LineReader):
    """Turns lines into exchange records, a batch at a time (run in a worker thread)."""

    def __init__(self, config: Config, path: Path, fmt: Format, task: str | None,
                 requests: Path | None, report: ImportReport) -> None:
        self.config = config
        self.path = path
        self.task = task
        self.report = report
        self.file = _open(path)
        self.requests: _Requests | None = None
        try:
            self.format = self._detect() if fmt == "auto" else fmt
            report.format = self.format
            if self.format == "batch":
                if requests is None:
                    raise ConfigError(
                        f"{path.name} is OpenAI Batch API output, which does not contain the "
                        "requests: pass the batch input file too, with --requests INPUT.jsonl",
                        key="--requests")
                self.requests = _Requests(requests)
            elif requests is not None:
                raise ConfigError(f"{path.name} is not Batch API output (it has chat lines with "
                                  "their requests): leave --requests out, or pass --format batch",
                                  key="--requests")
        except BaseException:
            self.close()
            raise

    def _detect(self) -> str:
        """``batch`` when the first line that is a JSON object has a ``custom_id``."""
        try:
            for raw in self.file:
                if not raw.strip():
                    continue
                try:
                    line = loads(raw)
                except LineError:
                    continue
                return "batch" if "custom_id" in line and "request" not in line else "chat"
            return "chat"
        finally:
            self.file.seek(0)

    def close(self) -> None:
        self.file.close()
        if self.requests is not None:
            self.requests.close()

    def records(self, raw: bytes) -> list[ExchangeRecord]:
        return [self._record(raw)]

    def _record(self, raw: bytes) -> ExchangeRecord:
        line = loads(raw)
        id_ = exchange_id(line)
        if self.format == "batch":
            capture = self._batch_capture(line)
        else:
            capture = self._chat_capture(line)
        try:
            capture.resolve()
            if self.format == "chat" and not has_usage(line["response"]):
                # An Anthropic translation reads absent usage as 0 tokens: unknown, rather.
                capture.input_tokens = capture.output_tokens = None
            record = capture.to_record(self.config)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise LineError(f"cannot read the exchange: {exc}") from None
        record.id = id_
        record.source = f"import:{self.path.name}"
        if self.format == "chat":
            record.outputs = candidate_outputs(
                self.config, line.get(CANDIDATES_KEY), exchange_id=id_,
                primary_model=record.primary_model, created_at=record.created_at)
        return record

    def _chat_capture(self, raw: dict[str, Any]) -> Capture:
        line: ChatLine = validate(ChatLine, raw)
        api = response_api(line.response, "response")  # a text answer: "openai"
        metadata = dict(line.metadata or {})
        request = raw["request"]
        return Capture(
            task=task_of(self.task, line.task, metadata.get("task")),
            request=dict(request), result=line.response, api=api,
            latency_ms=line.latency_ms, primary_model=line.request.model, metadata=metadata,
            created_at=aware(line.created_at),
        )

    def _batch_capture(self, raw: dict[str, Any]) -> Capture:
        line: BatchOutputLine = validate(BatchOutputLine, raw)
        if line.error is not None:
            raise LineError(f"custom_id {line.custom_id!r}: the request failed: "
                           f"{error_text(line.error)}")
        response = line.response
        if response is None:
            raise LineError(f"custom_id {line.custom_id!r}: no response and no error")
        if not 200 <= response.status_code < 300:
            error = response.body.get("error") if isinstance(response.body, dict) else None
            detail = f": {error_text(error)}" if error else ""
            raise LineError(f"custom_id {line.custom_id!r}: HTTP {response.status_code}{detail}")
        if not isinstance(response.body, dict):
            raise LineError(f"response.body: expected a JSON object, got "
                           f"{json_type(response.body)}")
        validate(OpenAIResponse, response.body, "response.body")
        assert self.requests is not None
        try:
            request = self.requests.request(line.custom_id)
        except LineError as exc:
            message = str(exc)
            if not message.startswith("custom_id"):
                message = f"custom_id {line.custom_id!r}: {message}"
            raise LineError(message) from None
        metadata: dict[str, Any] = {"custom_id": line.custom_id}
        if response.request_id:
            metadata["request_id"] = response.request_id
        request_meta = request.get("metadata")
        task_hint = request_meta.get("task") if isinstance(request_meta, dict) else None
        return Capture(
            task=task_of(self.task, task_hint), request=request, result=response.body,
            api="openai", primary_model=str(request["model"]), metadata=metadata,
        )


# --------------------------------------------------------------------------- importing


async def import_file(
    config: Config,
    store: Store,
    path: str | Path,
    *,
    task: str | None = None,
    fmt: Format = "auto",
    requests: str | Path | None = None,
    batch_rows: int = BATCH_ROWS,
    task_attribute: str | None = None,
) -> ImportReport:
    """Import the JSONL file at ``path`` into ``store``; bad lines are reported, not fatal.

    ``task`` overrides the task type of every line (else the line's ``task``, its metadata's
    ``task``, else :data:`DEFAULT_TASK`). ``requests`` is the Batch API input file, needed for
    batch output. An OTLP trace export (``fmt="otel"``, or ``auto`` on one) takes a span's task
    from its ``task_attribute`` (comma-separated names; :data:`.otel.DEFAULT_TASK_ATTRIBUTE`),
    ``task`` only when a span has none. Raises :class:`ConfigError` when a file cannot be read (or the options do
    not fit it) and :class:`StoreError` when the database cannot be written; what was written
    before stays, and importing again continues without duplicates.
    """
    started = time.monotonic()
    path = Path(path)
    report = ImportReport(path=str(path))
    redactor = Redactor.from_config(config.redaction)
    reader = await anyio.to_thread.run_sync(
        lambda: _reader(config, path, fmt, task, task_attribute,
                        None if requests is None else Path(requests), report))
    try:
        while not reader.done:
            records = await anyio.to_thread.run_sync(
                lambda: _redacted(redactor, reader.next_batch(batch_rows), report))
            if records:
                await _write_new(config, store, records, report)
    finally:
        await anyio.to_thread.run_sync(reader.close)
        report.seconds = time.monotonic() - started
    return report


def _reader(config: Config, path: Path, fmt: Format, task: str | None, task_attribute: str | None,
            requests: Path | None, report: ImportReport) -> _Reader | OtelReader:
    if fmt == "otel" or (fmt == "auto" and looks_like_otlp(path)):
        if requests is not None:
            raise ConfigError(f"{path.name} is an OTLP trace export, not Batch API output: leave "
                              "--requests out", key="--requests")
        return OtelReader(config, path, _open(path), task=task, task_attribute=task_attribute,
                          report=report)
    if task_attribute is not None:
        raise ConfigError("only goes with --format otel (a trace span's attribute)",
                          key="--task-attribute")
    return _Reader(config, path, fmt, task, requests, report)


def _redacted(redactor: Redactor, records: list[ExchangeRecord],
              report: ImportReport) -> list[ExchangeRecord]:
    """The records redacted for storage; one whose redaction fails is left out and counted."""
    return [record for record in records
            if redact_or_drop(redactor, record, report, _log_redaction_error)]


def _log_redaction_error(exc: BaseException) -> None:
    log.warning("shadowroute import: %s", exc)


async def _write_new(config: Config, store: Store, records: list[ExchangeRecord],
                     report: ImportReport) -> None:
    """Write the exchanges not stored yet and the candidate outputs not stored yet (checked by
    exchange id and by (exchange id, model), so the summary can tell them apart)."""
    unique: dict[str, ExchangeRecord] = {}
    for record in records:  # a line repeated in the batch: one exchange, the first answers win
        kept = unique.setdefault(record.id, record)
        if kept is not record:
            models = {output.model for output in kept.outputs}
            kept.outputs.extend(o for o in record.outputs if o.model not in models)
    stored = await adopt_stored_times(store, list(unique.values()))
    answered = [id_ for id_ in stored if unique[id_].outputs]
    have = await stored_output_models(store, answered) if answered else set()
    writes: list[ExchangeRecord] = []
    for id_, record in unique.items():
        if id_ in stored:
            new = [o for o in record.outputs if (id_, o.model) not in have]
            report.outputs_already_stored += len(record.outputs) - len(new)
            if not new:
                continue
            record.outputs = new
        writes.append(record)
    new_exchanges = [record for record in writes if record.id not in stored]
    report.already_stored += len(records) - len(new_exchanges)
    if writes:
        await store.write(writes)
    report.imported += len(new_exchanges)
    report.tasks.update(record.task_type for record in new_exchanges)
    for record in writes:
        for output in record.outputs:
            report.outputs += 1
            report.models[output.model] += 1
            if output.output_tokens is None:
                report.unknown_usage += 1
            if not declared(config, output.model, record.primary_model):
                report.undeclared[output.model] += 1
