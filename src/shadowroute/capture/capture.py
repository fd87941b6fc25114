"""What production did, captured cheaply on the request path and made canonical off it.

A :class:`Capture` is built in microseconds where the primary call returns: it keeps references
(or raw bytes, for the transport) and a shallow snapshot of the request. Parsing, translation
from the Anthropic shape and token/cost extraction happen in a mirror worker via
:meth:`Capture.resolve`, never on the request path.
"""

from __future__ import annotations

import importlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..formats.anthropic import anthropic_request_to_openai, anthropic_response_to_openai
from ..formats.chat import NotShadowable, completion_text, completion_usage, stateful_feature
from ..formats.responses import responses_request_to_openai, responses_response_to_openai
from ..formats.sse import reassemble
from ..records import ExchangeRecord, utcnow

if TYPE_CHECKING:
    from ..config import Config

from .calls import Api

__all__ = ["Capture", "decode_body"]


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Undo a response's Content-Encoding (gzip, deflate; br and zstd when their packages are
    installed), applied in order. The transport sees bodies as sent on the wire."""
    if not content_encoding:
        return body
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip", "deflate"):
            body = _inflate(body, coding)
        elif coding == "br":
            body = _optional("brotli").decompress(body)
        elif coding == "zstd":
            body = _optional("zstandard").ZstdDecompressor().decompressobj().decompress(body)
        else:
            raise ValueError(f"cannot decode a {coding!r} response body")
    return body


def _inflate(body: bytes, coding: str) -> bytes:
    """A gzip or deflate body decompressed; ValueError (not zlib.error) when it is not one."""
    try:
        if coding != "deflate":
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        try:
            return zlib.decompress(body)
        except zlib.error:  # raw deflate, as some servers send it
            return zlib.decompress(body, -zlib.MAX_WBITS)
    except zlib.error as exc:
        raise ValueError(f"response body is not valid {coding} data: {exc}") from exc


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ValueError(f"decoding this response body needs the {name!r} package") from None


@dataclass(slots=True)
class Capture:
    """One sampled production call, as cheap to build as possible.

    Either ``request``/``result`` (from :func:`shadow`) or ``raw_request``/``raw_response``
    (from the transport or the sidecar) are set; :meth:`resolve` turns them into the
    canonical request, output text and usage.
    """

    task: str
    request: dict[str, Any] | None = None
    result: Any = None
    raw_request: bytes | None = None
    raw_response: bytes | None = None
    content_encoding: str | None = None
    api: Api = "openai"
    streamed: bool = False
    latency_ms: float | None = None
    primary_model: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    output: Callable[[Any], str | None] | None = None
    created_at: datetime = field(default_factory=utcnow)
    reverse_of: str | None = None
    """Set when a promoted model served this call: the primary it replaced (a ``[models]``
    key), called in the background for the reverse shadow."""
    source: str | None = None
    """Who captured it (``transport``, ``shadow()``, ``sidecar``, ``remote:<name>``,
    ``import:<file>``), stored with the exchange so one source's evidence can be found and
    removed."""
    # Filled in by resolve():
    response: dict[str, Any] | None = None
    """The primary's answer as a canonical chat completion (``None`` when only text is known)."""
    output_text: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    """``None`` when the response said nothing about usage: unknown, and so is the cost."""
    not_carried: list[str] = field(default_factory=list)
    """Settings of the request the canonical form has no place for (stored with the exchange)."""

    def resolve(self) -> None:
        """Parse and normalise to the canonical OpenAI shape. Raises ValueError on garbage, and
        :class:`~shadowroute.formats.chat.NotShadowable` for a call no other model can be given
        (it depends on state its provider keeps)."""
        if self.raw_request is not None:
            try:
                body = json.loads(self.raw_request)
            except RecursionError:
                raise ValueError("request body is nested too deeply") from None
            if not isinstance(body, dict):
                raise ValueError("request body is not a JSON object")
            self.request = body
        if self.request is None:
            raise ValueError("capture has no request")
        if self.api == "openai" and "messages" not in self.request and "input" in self.request:
            self.api = "responses"  # shadow() of client.responses.create(...)
        feature = stateful_feature(self.api, self.request)
        if feature is not None:
            raise NotShadowable(feature)
        if self.api == "anthropic":
            self.request = anthropic_request_to_openai(self.request, self.not_carried)
        elif self.api == "responses":
            self.request = responses_request_to_openai(self.request, self.not_carried)
        if not self.request.get("messages"):
            raise ValueError(f"the {self.api} request has no messages: nothing to mirror")
        if self.raw_response is not None:
            body = decode_body(self.raw_response, self.content_encoding)
            response: Any = reassemble(body, self.api, self.streamed)
        else:
            response = self._result_as_response()
        if isinstance(response, dict):
            self.response = response
            self.output_text = completion_text(response)
            self.input_tokens, self.output_tokens = completion_usage(response)
            self.primary_model = self.primary_model or str(response.get("model") or "")
        self.primary_model = self.primary_model or str(self.request.get("model") or "")
        self.request.pop("stream", None)
        self.request.pop("stream_options", None)

    def to_record(self, config: Config) -> ExchangeRecord:
        """The exchange to store, once :meth:`resolve` has run (cost from the config's prices)."""
        if self.request is None:
            raise ValueError("capture is not resolved")
        cost = None
        model = config.model_named(self.primary_model)
        if model is not None and self.input_tokens is not None and self.output_tokens is not None:
            cost = model.cost(self.input_tokens, self.output_tokens)
        return ExchangeRecord(
            task_type=self.task,
            primary_model=self.primary_model,
            request=self.request,
            primary_output=self.output_text,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            latency_ms=self.latency_ms,
            cost_usd=cost,
            metadata=self.metadata,
            created_at=self.created_at,
            not_carried=list(self.not_carried) or None,
            source=self.source,
        )

    def _result_as_response(self) -> dict[str, Any] | None:
        result = self.result
        if self.output is not None:
            self.output_text = self.output(result)
            return None
        if isinstance(result, str):
            self.output_text = result
            return None
        if hasattr(result, "model_dump"):  # OpenAI / Anthropic SDK objects
            result = result.model_dump()
        if isinstance(result, dict):
            if result.get("type") == "message" and "content" in result:
                return anthropic_response_to_openai(result)
            if result.get("object") == "response" and "output" in result:
                return responses_response_to_openai(result)
            if "choices" in result:
                return result
        raise ValueError(
            f"cannot read the primary result of type {type(self.result).__name__}; "
            "return an OpenAI (chat or Responses) or Anthropic response or a string, or pass "
            "output=<function>"
        )
