"""One line of an import file: its schema (pydantic, every line validated on its own), the
reason a bad line is reported with, and the id an imported exchange gets (a digest of the
line without its ``candidates``, so importing the same file twice stores nothing twice, and a
line that gains a candidate later is still the same exchange)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..capture.calls import Api
from ..errors import ConfigError
from ..records import ExchangeRecord, utcnow

__all__ = [
    "CANDIDATES_KEY", "DEFAULT_TASK", "AnthropicResponse", "BatchInputLine", "BatchOutputLine",
    "ChatLine", "LineError", "LineReader", "OpenAIResponse", "aware", "error_text", "exchange_id", "has_usage",
    "json_type", "loads", "response_api", "task_of", "validate",
]

DEFAULT_TASK = "default"
"""Task type of a line when neither ``--task`` nor the line names one."""
CANDIDATES_KEY = "candidates"
"""The key of a chat line holding candidate answers (:mod:`.candidates`); not part of the id."""


class Edge(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatRequest(Edge):
    model: str = Field(min_length=1)
    messages: list[Any] = Field(min_length=1)


class Choice(Edge):
    message: dict[str, Any]


class OpenAIResponse(Edge):
    choices: list[Choice] = Field(min_length=1)
    usage: dict[str, Any] | None = None


class AnthropicResponse(Edge):
    type: Literal["message"]
    content: list[Any]
    usage: dict[str, Any] | None = None


class ChatLine(Edge):
    request: ChatRequest
    response: Any
    """A chat completion, an Anthropic message, or the answer's text (checked on its own)."""
    candidates: Any = None
    """``{"MODEL": RESPONSE}``, read by :func:`.candidates.candidate_outputs`."""
    task: str | None = Field(None, min_length=1)
    metadata: dict[str, Any] | None = None
    latency_ms: float | None = Field(None, ge=0)
    created_at: datetime | None = None


class BatchResponse(Edge):
    status_code: int
    request_id: str | None = None
    body: Any = None


class BatchOutputLine(Edge):
    id: str | None = None
    custom_id: str = Field(min_length=1)
    response: BatchResponse | None = None
    error: Any = None


class BatchInputLine(Edge):
    custom_id: str = Field(min_length=1)
    method: str = "POST"
    url: str
    body: ChatRequest


class LineError(Exception):
    """One line cannot be imported; the message is the reason."""


def reason(exc: ValidationError, prefix: str = "") -> str:
    """``response.choices: Field required`` (the first problem, and how many more)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"])
    loc = f"{prefix}.{loc}" if prefix and loc else prefix or loc
    message = first["msg"].removeprefix("Value error, ")
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return f"{loc}: {message}" if loc else message


def validate(model: type[BaseModel], value: Any, prefix: str = "") -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise LineError(reason(exc, prefix)) from None


def response_api(response: Any, prefix: str) -> Api:
    """Which API's response this is (validated); an error response is a bad line. The text of
    an answer (a string) is an OpenAI chat answer without usage."""
    if isinstance(response, str):
        return "openai"
    if not isinstance(response, dict):
        raise LineError(f"{prefix}: expected a response object or the answer's text, got "
                        f"{json_type(response)}")
    if "error" in response and "choices" not in response:
        raise LineError(f"{prefix} is an error response: {error_text(response['error'])}")
    if response.get("type") == "message":
        validate(AnthropicResponse, response, prefix)
        return "anthropic"
    validate(OpenAIResponse, response, prefix)
    return "openai"


def has_usage(response: Any) -> bool:
    """The response reports its token usage (a non-empty ``usage`` object). Without it tokens
    and cost stay unknown (``None``), never 0, whatever a translation fills in."""
    return isinstance(response, dict) and isinstance(response.get("usage"), dict) \
        and bool(response["usage"])


def error_text(error: Any) -> str:
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        message = error.get("message") or "no message"
        text = f"{code}: {message}" if code else str(message)
    else:
        text = str(error)
    return " ".join(text.split())[:300]


def exchange_id(line: dict[str, Any]) -> str:
    """The id of the exchange a line becomes: a digest of its content (32 hex digits), the same
    however the line's JSON is spaced or its keys are ordered. Its ``candidates`` are left out:
    they are answers *to* the exchange, so a line imported again with more candidates is the
    same exchange and only gains the new outputs."""
    content = {key: value for key, value in line.items() if key != CANDIDATES_KEY}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def aware(value: datetime | None) -> datetime:
    if value is None:
        return utcnow()
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-12:00 is in year 10000 in UTC
        raise LineError(f"created_at: {value.isoformat()} is out of range in UTC") from None


def task_of(*candidates: Any) -> str:
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return DEFAULT_TASK


def loads(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise LineError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise LineError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise LineError("invalid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise LineError(f"expected a JSON object, got {json_type(value)}")
    return value


def json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)



class LineReader:
    """A JSONL file read a batch of exchange records at a time (in a worker thread): blank
    lines skipped, every other line counted in ``report.lines`` and turned into records by
    :meth:`records` (the format's own), a :class:`LineError` reported by line number."""

    path: Path
    file: IO[bytes]
    report: Any  # an ImportReport: lines, add_bad
    number: int = 0
    done: bool = False

    def records(self, raw: bytes) -> list[ExchangeRecord]:
        """The records of one non-blank line; :class:`LineError` when it is bad."""
        raise NotImplementedError

    def next_batch(self, size: int) -> list[ExchangeRecord]:
        records: list[ExchangeRecord] = []
        try:
            while len(records) < size:
                raw = self.file.readline()
                if not raw:
                    self.done = True
                    break
                self.number += 1
                if not raw.strip():
                    continue
                self.report.lines += 1
                try:
                    records.extend(self.records(raw))
                except LineError as exc:
                    self.report.add_bad(self.number, str(exc))
        except OSError as exc:
            raise ConfigError(f"cannot read line {self.number + 1}: {exc.strerror or exc}",
                              path=str(self.path)) from exc
        return records
