"""OpenTelemetry spans for shadowroute's model calls, when ``opentelemetry-api`` is installed.

Every call the :class:`~shadowroute.mirror.policy.Mirror` makes becomes one span following the
GenAI semantic conventions (an inference client span: name ``chat {gen_ai.request.model}``,
kind CLIENT, ``gen_ai.*`` and ``server.*`` attributes, ``error.type`` and status ERROR on
failure), plus ``shadowroute.task``, ``shadowroute.role`` (:data:`ROLES`) and
``shadowroute.cost_usd`` when the cost is known. Spans go to the tracer ``shadowroute`` of the
application's tracer provider (the global one, or the one given to :func:`configure`).

**Linked, not parented.** On the request path :func:`span_context` reads the span active when
the primary call returned (a context-variable read, ~0.3-0.7 µs; ~25 ns without
OpenTelemetry) and the capture carries it to the worker. There the calls of the pipeline
(roles ``candidate``, ``replay``, ``reverse``) start a new trace (a root span, from an empty
context) with a :class:`~opentelemetry.trace.Link` to that primary span, rather than becoming
its children:

* they run after the primary answered, often much later (queue wait, retries with backoff, a
  circuit opening); as children they would stretch the production trace past its response
  and count in its duration, critical path and tail-sampling decision. The request's trace
  stays a picture of what production did; nothing of the shadow shows up in its latency.
* OpenTelemetry uses links for causally related work that is not part of the caller's
  operation (asynchronous and batch processing; the messaging conventions link a consumer's
  processing span to the message's creation context and make the parent optional).
* sampling stays the application's choice for each: a parent-based sampler would drop every
  shadow call of an unsampled request; as roots, shadow calls are sampled on their own (the
  link is handed to the sampler).
* the worker tasks inherit the context of whoever started the :class:`Shadow`; an explicit
  empty context keeps candidate spans from landing under an unrelated span (app start-up).

The link keeps the way between the two traces in both directions in backends that show links
(Jaeger, Tempo, Honeycomb, ...). Calls outside the pipeline (``offline_replay``, ``judge``)
are ordinary children of whatever span is current (e.g. the command's own), without link.

Production traffic is sacred: nothing here raises. A failure inside span handling is
swallowed and counted in ``Stats.telemetry_errors`` (logged once per process); the model call
goes on. Without the SDK (the API's no-op tracer) a span costs one start/end of a
non-recording span in the background and nothing on the request path but :func:`span_context`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .config import ModelConfig
from .records import Completion
from .stats import Stats

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext, TracerProvider

try:
    from opentelemetry import context as _otel_context
    from opentelemetry import trace as _otel_trace
except ImportError:  # the optional ``otel`` extra is not installed
    _otel_trace = None  # type: ignore[assignment]
    _otel_context = None  # type: ignore[assignment]

__all__ = [
    "BACKGROUND_ROLES",
    "ROLES",
    "ROLE_CANDIDATE",
    "ROLE_JUDGE",
    "ROLE_OFFLINE_REPLAY",
    "ROLE_REPLAY",
    "ROLE_REVERSE",
    "TRACER_NAME",
    "ModelSpan",
    "Target",
    "available",
    "configure",
    "model_span",
    "span_context",
    "target",
]

log = logging.getLogger("shadowroute")

TRACER_NAME = "shadowroute"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"
"""The semantic conventions version whose GenAI attributes are emitted (``gen_ai.provider.name``
appeared in 1.37; the older ``gen_ai.system`` is set too, for backends still keyed on it)."""

ROLE_CANDIDATE = "candidate"
"""A candidate model mirrored from a production call."""
ROLE_REPLAY = "replay"
"""The primary called once more for the noise floor (stored as ``primary@replay``)."""
ROLE_REVERSE = "reverse"
"""The replaced primary called for the reverse shadow of a promoted task."""
ROLE_OFFLINE_REPLAY = "offline_replay"
"""``shadowroute replay``: a candidate (or ``primary@replay``) over stored exchanges."""
ROLE_JUDGE = "judge"
"""The LLM judge during scoring."""
ROLES = (ROLE_CANDIDATE, ROLE_REPLAY, ROLE_REVERSE, ROLE_OFFLINE_REPLAY, ROLE_JUDGE)
BACKGROUND_ROLES = frozenset({ROLE_CANDIDATE, ROLE_REPLAY, ROLE_REVERSE})
"""Roles of the pipeline's background calls: new traces linked to the primary call's span."""

_PROVIDERS = {"openai": "openai", "responses": "openai", "anthropic": "anthropic"}
"""``gen_ai.provider.name`` by the API a model is called in (OpenAI-compatible servers are
``openai``, as the conventions ask: the instrumentation's best knowledge; ``server.address``
and the model names tell them apart)."""
_REQUEST_SETTINGS = (
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("seed", "gen_ai.request.seed"),
)

_provider: TracerProvider | None = None
_tracer: Any = None
_warned = False


def available() -> bool:
    """Whether ``opentelemetry-api`` is installed (spans are made; the app's SDK exports them)."""
    return _otel_trace is not None


def configure(tracer_provider: TracerProvider | None = None) -> None:
    """Send shadowroute's spans to ``tracer_provider`` rather than the global one (``None``:
    back to the global provider), as OpenTelemetry instrumentations take ``tracer_provider=``."""
    global _provider, _tracer
    _provider, _tracer = tracer_provider, None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shadowroute")
    except PackageNotFoundError:
        return "0+unknown"


def _get_tracer() -> Any:
    global _tracer
    if _tracer is None:
        _tracer = _otel_trace.get_tracer(TRACER_NAME, _version(), tracer_provider=_provider,
                                         schema_url=SCHEMA_URL)
    return _tracer


def _failed(stats: Stats, exc: BaseException) -> None:
    """A failure inside span handling: counted, logged the first time; never raised."""
    global _warned
    try:
        stats.telemetry_errors += 1
        if not _warned:
            _warned = True
            log.warning("shadowroute: OpenTelemetry span failed (counted in "
                        "telemetry_errors, the call goes on): %s: %s", type(exc).__name__, exc)
    except Exception:  # noqa: S110 - nothing may escape from here
        pass


# ---------------------------------------------------------------------- the request path


def _no_span_context(stats: Stats) -> None:
    return None


if _otel_trace is not None:
    _get_current_span = _otel_trace.get_current_span

    def _span_context(stats: Stats) -> SpanContext | None:
        try:
            found = _get_current_span().get_span_context()
            return found if found.is_valid else None
        except Exception as exc:
            _failed(stats, exc)
            return None

else:
    _span_context = _no_span_context  # type: ignore[assignment]

span_context = _span_context
"""``span_context(stats)``: the context of the span active now (the primary call's), or
``None`` (no valid span, or OpenTelemetry not installed; decided once at import). The request
path's only OpenTelemetry work; never raises (a failure is counted in ``stats``)."""


def context_ids(origin: SpanContext | None) -> list[int] | None:
    """A span context as ``[trace_id, span_id, trace_flags]`` (to cross to another process)."""
    if origin is None:
        return None
    return [origin.trace_id, origin.span_id, int(origin.trace_flags)]


def context_of(ids: list[int] | None) -> SpanContext | None:
    """The span context :func:`context_ids` gave, as a remote one (``None`` without
    OpenTelemetry)."""
    if not ids or _otel_trace is None:
        return None
    trace_id, span_id, flags = ids
    return _otel_trace.SpanContext(trace_id, span_id, is_remote=True,
                                   trace_flags=_otel_trace.TraceFlags(flags))


# ---------------------------------------------------------------------- the background


@dataclass(frozen=True, slots=True)
class Target:
    """Who a model call goes to, as the span names it."""

    request_model: str
    provider: str = "openai"
    server_address: str | None = None
    server_port: int | None = None


def target(name: str, model: ModelConfig | None) -> Target:
    """The span's view of the model ``name`` (a ``[models]`` entry when declared; a bare name
    for a provider no entry declares, e.g. a test fake)."""
    if model is None:
        return Target(name)
    address = port = None
    try:
        url = urlsplit(model.base_url)
        address = url.hostname
        port = url.port or {"https": 443, "http": 80}.get(url.scheme)
    except ValueError:
        pass
    return Target(model.model or model.name or name, _PROVIDERS.get(model.api, model.api),
                  address, port)


class ModelSpan:
    """One model call as a span (or nothing: the shared no-op instance). A context manager
    that makes the span current while the call runs (so HTTP client spans nest under it) and
    ends it; the outcome is set with :meth:`succeeded`, :meth:`failed` or :meth:`skipped`.
    No method raises; exceptions of the call itself pass through untouched."""

    __slots__ = ("_span", "_stats", "_token")

    def __init__(self, span: Any = None, stats: Stats | None = None) -> None:
        self._span = span
        self._stats = stats
        self._token: Any = None

    @property
    def recording(self) -> bool:
        return self._span is not None

    def __enter__(self) -> ModelSpan:
        if self._span is not None:
            try:
                self._token = _otel_context.attach(_otel_trace.set_span_in_context(self._span))
            except Exception as exc:
                self._error(exc)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        span = self._span
        if span is None:
            return
        self._span = None
        try:
            if self._token is not None:
                _otel_context.detach(self._token)
            if exc is not None:  # cancelled (shutdown deadline, Ctrl-C) or a bug escaping
                kind = "cancelled" if not isinstance(exc, Exception) else type(exc).__qualname__
                _set_error(span, kind, f"{type(exc).__name__}: {exc}" if str(exc) else kind)
            span.end()
        except Exception as caught:
            self._error(caught)

    def succeeded(self, completion: Completion, attempts: int, cost_usd: float | None) -> None:
        span = self._span
        if span is None:
            return
        try:
            response = completion.response if isinstance(completion.response, Mapping) else {}
            attributes: dict[str, Any] = {"shadowroute.attempts": attempts}
            if response.get("model"):
                attributes["gen_ai.response.model"] = str(response["model"])
            if response.get("id"):
                attributes["gen_ai.response.id"] = str(response["id"])
            reasons = [str(c.get("finish_reason")) for c in response.get("choices") or ()
                       if isinstance(c, Mapping) and c.get("finish_reason")]
            if not reasons and completion.finish_reason:
                reasons = [completion.finish_reason]
            if reasons:
                attributes["gen_ai.response.finish_reasons"] = reasons
            if completion.input_tokens is not None:
                attributes["gen_ai.usage.input_tokens"] = completion.input_tokens
            if completion.output_tokens is not None:
                attributes["gen_ai.usage.output_tokens"] = completion.output_tokens
            if cost_usd is not None:
                attributes["shadowroute.cost_usd"] = float(cost_usd)
            span.set_attributes(attributes)
        except Exception as exc:
            self._error(exc)

    def failed(self, kind: str, message: str, attempts: int) -> None:
        """The call failed: ``kind`` is the :class:`~shadowroute.errors.ProviderError` kind
        (``timeout``, ``connection``, ``rate_limited``, ``server_error``, ``client_error``,
        ``bad_response``) or ``internal`` (a bug), set as ``error.type``."""
        span = self._span
        if span is None:
            return
        try:
            span.set_attribute("shadowroute.attempts", attempts)
            _set_error(span, kind, message)
        except Exception as exc:
            self._error(exc)

    def skipped(self, reason: str) -> None:
        """No request went out after all (the circuit opened while the call waited)."""
        span = self._span
        if span is None:
            return
        try:
            span.set_attribute("shadowroute.skipped", reason)
        except Exception as exc:
            self._error(exc)

    def _error(self, exc: BaseException) -> None:
        if self._stats is not None:
            _failed(self._stats, exc)


_NO_SPAN = ModelSpan()


def _set_error(span: Any, kind: str, message: str) -> None:
    span.set_attribute("error.type", kind)
    span.set_status(_otel_trace.Status(_otel_trace.StatusCode.ERROR, message[:500]))


def model_span(
    to: Target,
    request: Mapping[str, Any],
    *,
    task: str | None,
    role: str,
    stats: Stats,
    name: str | None = None,
    exchange_id: str | None = None,
    origin: SpanContext | None = None,
) -> ModelSpan:
    """Start the span of one call to ``to`` with ``request`` (not yet current: enter it).

    ``role`` is one of :data:`ROLES`; ``name`` the name the answer is stored under (the
    ``[models]`` key, or ``primary@replay``). The pipeline's roles (:data:`BACKGROUND_ROLES`)
    start a new trace linked to ``origin`` (the primary call's span, see the module
    docstring); the others are children of the current span. Never raises: on a failure (or
    without OpenTelemetry, or when the span is not recorded) the no-op span is returned."""
    if _otel_trace is None:
        return _NO_SPAN
    try:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": to.provider,
            "gen_ai.system": to.provider,
            "gen_ai.request.model": to.request_model,
            "shadowroute.role": role,
        }
        if to.server_address:
            attributes["server.address"] = to.server_address
            if to.server_port is not None:
                attributes["server.port"] = to.server_port
        for key, attribute in _REQUEST_SETTINGS:
            value = request.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[attribute] = value
        if task:
            attributes["shadowroute.task"] = task
        if name:
            attributes["shadowroute.model"] = name
        if exchange_id:
            attributes["shadowroute.exchange_id"] = exchange_id
        background = role in BACKGROUND_ROLES
        span = _get_tracer().start_span(
            f"chat {to.request_model}",
            context=_otel_context.Context() if background else None,
            kind=_otel_trace.SpanKind.CLIENT,
            attributes=attributes,
            links=[_otel_trace.Link(origin)] if background and origin is not None else None,
            record_exception=False,
            set_status_on_exception=False,
        )
        if not span.is_recording():
            span.end()
            return _NO_SPAN
        return ModelSpan(span, stats)
    except Exception as exc:
        _failed(stats, exc)
        return _NO_SPAN
