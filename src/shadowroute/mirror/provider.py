"""Calling one model over HTTP: one pooled client per provider, one attempt per call.

The pool is an aiohttp session behind the httpx client (``httpx-aiohttp``'s transport) rather
than httpx's own httpcore stack, whose pool, anyio timeouts and h11 parsing were a fifth of the
sidecar's CPU, and calls go straight to that transport, past the client's layers (whose cookie
jar would send a cookie one answer set with every later call): about 0.33 ms of CPU a call
against 0.68-0.77 ms through httpcore (2,000 calls to the fake server on loopback). The session
is made on the first call, inside the running event loop, and keeps no cookies. httpx-aiohttp
reports every aiohttp connection error as ``httpx.ConnectTimeout``; :func:`_timed_out` tells
the real timeouts apart. When the environment names a proxy for the model's URL
(``HTTPS_PROXY`` and the like, which only httpx's own transport reads), the provider keeps
httpx's own client instead, so proxies apply as they always did.

:class:`Provider` sends a canonical chat request to an OpenAI-compatible or Anthropic endpoint
(translating at the edge with :mod:`shadowroute.formats`) and returns a :class:`Completion` with
tokens, cost and measured latency. It never retries: every failure becomes one
:class:`~shadowroute.errors.ProviderError` subclass whose ``kind``, ``retryable``, ``status`` and,
for 429s, ``retry_after`` are what the mirror needs for retries, backoff and circuit breaking.
Error messages never contain the API key.
"""

from __future__ import annotations

import functools
import json
import math
import ssl
import time
import urllib.request
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self

import aiohttp
import anyio
import httpx
from httpx_aiohttp import AiohttpTransport

from ..config import ModelConfig
from ..errors import (
    BadResponse,
    ClientError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ServerError,
)
from ..formats.anthropic import openai_request_to_anthropic
from ..formats.chat import chat_request, completion_text, completion_usage
from ..formats.responses import openai_request_to_responses
from ..formats.sse import reassemble
from ..records import Completion

__all__ = ["ANTHROPIC_VERSION", "Provider", "parse_retry_after"]

ANTHROPIC_VERSION = "2023-06-01"
_MESSAGE_LIMIT = 300
_NOT_SENT = frozenset({"stream", "stream_options"})
_PATHS = {"openai": "/chat/completions", "anthropic": "/v1/messages", "responses": "/responses"}
"""Appended to a model's ``base_url`` (``.../v1`` for the OpenAI APIs, the host for
Anthropic's, as their SDKs take it)."""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date.

    Returns ``None`` when absent or unparseable; never negative (a date in the past gives 0).
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _retry_after(headers: httpx.Headers) -> float | None:
    """``retry-after-ms`` (OpenAI, more precise) when valid, else ``Retry-After``."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    return parse_retry_after(headers.get("retry-after"))


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context (certifi's CAs, as httpx makes it) shared by every provider's client:
    httpx builds a new one per client otherwise, ~35 ms each, paid by every Shadow start for
    each declared model. A context is safe to share between connections."""
    return httpx.create_ssl_context()


def _pooled_client(model: ModelConfig,
                   timeout: httpx.Timeout) -> tuple[httpx.AsyncClient, AiohttpTransport | None]:
    """The client a provider makes for itself (see the module docstring): a pool of at most
    ``max_concurrency`` connections, idle ones kept as long as httpx would (5 s), no cookies;
    and its aiohttp transport (``None``: httpx's own, for a proxy)."""
    if _env_proxy(model.base_url):
        limits = httpx.Limits(max_connections=model.max_concurrency,
                              max_keepalive_connections=model.max_concurrency)
        return httpx.AsyncClient(timeout=timeout, limits=limits, verify=_tls()), None

    def session() -> aiohttp.ClientSession:  # called by the transport on the first call
        connector = aiohttp.TCPConnector(
            limit=model.max_concurrency or 0,  # aiohttp: 0 is no limit
            limit_per_host=0,
            keepalive_timeout=httpx.Limits().keepalive_expiry,
            ssl=_tls(),
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    # verify=_tls(): the transport makes an SSL context of its own otherwise (unused here).
    transport = AiohttpTransport(client=session, verify=_tls())
    return httpx.AsyncClient(transport=transport, timeout=timeout), transport


def _env_proxy(url: str) -> bool:
    """Whether the environment names a proxy for ``url`` (``HTTP(S)_PROXY``, ``ALL_PROXY``, not
    bypassed by ``NO_PROXY``). httpx reads these only for a client without a transport."""
    proxies = urllib.request.getproxies()
    parsed = httpx.URL(url)
    if not (proxies.get(parsed.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass_environment(parsed.host, proxies)


def _timed_out(exc: BaseException) -> bool:
    """Whether a timeout exception is a timeout. httpx-aiohttp raises ``httpx.ConnectTimeout``
    for every aiohttp connection error, a refused connection or a failed DNS lookup too; its
    ``__cause__`` is then an aiohttp error that is no ``TimeoutError``. A real timeout has a
    ``TimeoutError`` cause (aiohttp's ``ServerTimeoutError`` family) or another one (httpcore's,
    through httpx's own transport), or none (the call's deadline)."""
    cause = exc.__cause__
    return isinstance(cause, TimeoutError) or not isinstance(cause, aiohttp.ClientError)


class Provider:
    """One model endpoint. Safe to share between tasks; bound concurrency outside (the mirror).

    ``client`` lets callers supply the httpx client (a ``MockTransport`` in tests, a shared
    pool, another transport); a client passed in is not closed by :meth:`aclose`. Without one,
    the provider makes its own (see the module docstring) and closes it in :meth:`aclose`.
    The model's ``timeout_s`` is applied to every call as a deadline for the whole exchange.
    """

    def __init__(self, model: ModelConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.model = model
        self.name = model.name or model.model
        self._timeout = httpx.Timeout(model.timeout_s)
        self._owns_client = client is None
        self._direct: AiohttpTransport | None = None
        """Its own transport, sent to straight: past the client's layers (cookies, auth,
        redirects, URL merging), a third of a call's CPU, none of which a provider call uses."""
        if client is None:
            client, self._direct = _pooled_client(model, self._timeout)
        self.client = client
        self.url = model.base_url + _PATHS[model.api]
        url = httpx.URL(model.base_url)
        # Where, for messages: scheme, host and port only (no credentials, no query string).
        self.origin = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")

    def __repr__(self) -> str:
        return f"Provider(name={self.name!r}, api={self.model.api!r}, url={self.url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool if this provider created it."""
        if self._owns_client:
            await self.client.aclose()

    def build_body(
        self, request: dict[str, Any], dropped: list[str] | None = None
    ) -> dict[str, Any]:
        """The JSON body sent upstream for a canonical request (non-streaming, this model, in
        its own API); settings the API has no place for are named in ``dropped``."""
        body = {key: value for key, value in request.items() if key not in _NOT_SENT}
        body["model"] = self.model.model or self.name
        if self.model.api == "anthropic":
            return openai_request_to_anthropic(body, dropped=dropped)
        if self.model.api == "responses":
            return openai_request_to_responses(body, dropped)
        return chat_request(body, dropped)

    async def _post(self, content: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST ``content`` to the model and read the whole answer."""
        if self._direct is None:
            return await self.client.post(self.url, content=content, headers=headers,
                                          timeout=self._timeout)
        request = httpx.Request("POST", self.url, headers=headers, content=content,
                                extensions={"timeout": self._timeout.as_dict()})
        response = await self._direct.handle_async_request(request)  # request attached
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def build_headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.model.api == "anthropic":
            headers["anthropic-version"] = ANTHROPIC_VERSION
            if api_key:
                headers["x-api-key"] = api_key
        elif api_key:
            headers["authorization"] = f"Bearer {api_key}"
        return headers

    async def complete(self, request: dict[str, Any]) -> Completion:
        """Send a canonical chat request once; raise a ProviderError subclass on failure."""
        api_key = self.model.api_key()
        dropped: list[str] = []
        try:
            content = json.dumps(self.build_body(request, dropped), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise self._error(ClientError, f"request is not valid JSON: {exc}", api_key) from exc
        headers = self.build_headers(api_key)
        start = time.perf_counter()
        try:
            with anyio.fail_after(self.model.timeout_s):
                response = await self._post(content, headers)
        except (httpx.TimeoutException, TimeoutError) as exc:
            if not _timed_out(exc):  # a connection error httpx-aiohttp calls ConnectTimeout
                cause = exc.__cause__
                message = f"cannot reach {self.origin}: {type(cause).__name__}: {cause}"
                raise self._error(ProviderUnavailable, message, api_key) from exc
            message = f"no answer within {self.model.timeout_s:g}s from {self.origin}"
            message += f" ({type(exc).__name__})"
            raise self._error(ProviderTimeout, message, api_key) from exc
        except httpx.DecodingError as exc:
            message = f"undecodable response body from {self.origin}: {exc}"
            raise self._error(BadResponse, message, api_key) from exc
        except (httpx.RequestError, aiohttp.ClientError) as exc:
            # connection refused/reset, DNS, TLS, protocol errors (an unreadable status line or
            # header is an aiohttp ClientResponseError, which httpx-aiohttp lets through)
            message = f"cannot reach {self.origin}: {type(exc).__name__}: {exc}"
            raise self._error(ProviderUnavailable, message, api_key) from exc
        latency_ms = (time.perf_counter() - start) * 1000.0
        if not response.is_success:
            raise self._status_error(response, api_key)
        try:
            canonical = reassemble(response.content, self.model.api, streamed=False)
            input_tokens, output_tokens = completion_usage(canonical)
        except ValueError as exc:
            message = f"unusable HTTP {response.status_code} response from {self.origin}: {exc}"
            raise self._error(BadResponse, message, api_key, response.status_code) from exc
        return Completion(
            model=self.name,
            text=completion_text(canonical),
            response=canonical,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_ms=latency_ms,
            cost_usd=(None if input_tokens is None or output_tokens is None
                      else self.model.cost(input_tokens, output_tokens)),
            finish_reason=canonical["choices"][0].get("finish_reason"),
            not_carried=dropped or None,
        )

    def _status_error(self, response: httpx.Response, api_key: str | None) -> ProviderError:
        status = response.status_code
        detail = _provider_message(response)
        suffix = f": {detail}" if detail else ""
        if status == 429:
            retry_after = _retry_after(response.headers)
            wait = f", retry after {retry_after:g}s" if retry_after is not None else ""
            message = _redact(f"rate limited (HTTP 429){wait}{suffix}", api_key)
            return RateLimited(message, model=self.name, status=status, retry_after=retry_after)
        if status >= 500:
            what = "overloaded (HTTP 529)" if status == 529 else f"HTTP {status} server error"
            error = self._error(ServerError, f"{what}{suffix}", api_key, status)
            error.retry_after = _retry_after(response.headers)  # 503 and 529 may say when
            return error
        if status >= 400:
            if status in (401, 403) and self.model.api_key_env and not api_key:
                suffix += f" (environment variable {self.model.api_key_env} is not set)"
            return self._error(ClientError, f"HTTP {status}{suffix}", api_key, status)
        message = f"unexpected HTTP {status} from {self.origin} (a redirect? check base_url)"
        return self._error(ClientError, message, api_key, status)

    def _error(
        self,
        cls: type[ProviderError],
        message: str,
        api_key: str | None,
        status: int | None = None,
    ) -> ProviderError:
        return cls(_redact(message, api_key), model=self.name, status=status)


def _provider_message(response: httpx.Response) -> str:
    """The provider's own error message from the body, whitespace-collapsed and truncated."""
    detail: Any = None
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            kind, text = error.get("type"), error.get("message") or error.get("code")
            detail = f"{kind}: {text}" if kind and text else text or kind
        else:
            detail = error or body.get("message") or body.get("detail")
    text = " ".join(str(detail or response.text).split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _redact(message: str, api_key: str | None) -> str:
    if api_key and len(api_key) >= 4:  # shorter "keys" are placeholders; replacing them mangles
        return message.replace(api_key, "***")
    return message
