import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import anyio
import httpcore
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream
from httpx_aiohttp import AiohttpTransport

from shadowroute.config import ModelConfig
from shadowroute.errors import (
    BadResponse,
    ClientError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ServerError,
)
from shadowroute.fakellm import FakeLLMServer, default_settings, sample_requests
from shadowroute.mirror.provider import ANTHROPIC_VERSION, Provider, parse_retry_after

KEY = "sk-test-5up3r-s3cret-k3y"
KEY_ENV = "SHADOWROUTE_TEST_PROVIDER_KEY"

REQUEST = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "Classify the intent."},
        {"role": "user", "content": "I want my money back"},
    ],
    "temperature": 0,
    "stop": ["\n"],
    "stream": True,
    "stream_options": {"include_usage": True},
    "response_format": {"type": "json_object"},
}

OPENAI_OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1718000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "refund"},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
}

ANTHROPIC_OK = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-haiku-20241022",
    "content": [{"type": "text", "text": "refund"}],
    "stop_reason": "max_tokens",
    "stop_sequence": None,
    "usage": {"input_tokens": 2000, "output_tokens": 10},
}

Handler = Callable[[httpx.Request], httpx.Response]


def make_model(api: str = "openai", **overrides: object) -> ModelConfig:
    base_url = "https://api.openai.test/v1/" if api == "openai" else "https://api.anthropic.test"
    fields: dict[str, object] = {
        "name": "cheap",
        "model": "upstream-model-id",
        "base_url": base_url,
        "api": api,
        "api_key_env": KEY_ENV,
        "input_price": 0.15,
        "output_price": 0.60,
        "timeout_s": 5.0,
    }
    fields.update(overrides)
    return ModelConfig(**fields)


def make_provider(handler: Handler, api: str = "openai", **overrides: object) -> Provider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Provider(make_model(api, **overrides), client=client)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def json_response(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# -- success paths -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_openai_request_shape_and_completion() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response(200, OPENAI_OK)

    async with make_provider(handler) as provider:
        completion = await provider.complete(REQUEST)

    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://api.openai.test/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in request.headers
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert body["model"] == "upstream-model-id"
    assert "stream" not in body and "stream_options" not in body
    assert body["messages"] == REQUEST["messages"]
    assert body["response_format"] == {"type": "json_object"}
    assert REQUEST["stream"] is True and REQUEST["model"] == "gpt-4o"  # caller's dict untouched

    assert completion.model == "cheap"
    assert completion.text == "refund"
    assert completion.response == OPENAI_OK
    assert (completion.input_tokens, completion.output_tokens) == (1000, 500)
    assert completion.cost_usd == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1_000_000)
    assert completion.finish_reason == "stop"
    assert completion.latency_ms > 0


@pytest.mark.anyio
async def test_anthropic_request_shape_and_completion() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response(200, ANTHROPIC_OK)

    async with make_provider(handler, "anthropic", input_price=0.8, output_price=4.0) as provider:
        completion = await provider.complete(REQUEST)

    (request,) = seen
    assert str(request.url) == "https://api.anthropic.test/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == ANTHROPIC_VERSION
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {
        "model": "upstream-model-id",
        "system": "Classify the intent.",
        "messages": [{"role": "user", "content": "I want my money back"}],
        "max_tokens": 1024,
        "temperature": 0.0,
        "stop_sequences": ["\n"],
    }
    assert completion.text == "refund"
    assert completion.finish_reason == "length"
    assert completion.response["object"] == "chat.completion"
    assert (completion.input_tokens, completion.output_tokens) == (2000, 10)
    assert completion.cost_usd == pytest.approx((2000 * 0.8 + 10 * 4.0) / 1_000_000)


@pytest.mark.anyio
async def test_no_key_means_no_auth_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response(200, OPENAI_OK)

    async with make_provider(handler) as provider:
        await provider.complete(REQUEST)
    assert "authorization" not in seen[0].headers


@pytest.mark.anyio
async def test_missing_usage_is_unknown_not_free() -> None:
    body = {**OPENAI_OK}
    del body["usage"]
    async with make_provider(lambda request: json_response(200, body)) as provider:
        completion = await provider.complete(REQUEST)
    assert (completion.input_tokens, completion.output_tokens, completion.cost_usd) == (
        None, None, None)


# -- errors --------------------------------------------------------------------------------------


async def failure(handler: Handler, api: str = "openai", **overrides: object) -> ProviderError:
    async with make_provider(handler, api, **overrides) as provider:
        with pytest.raises(ProviderError) as info:
            await provider.complete(REQUEST)
    assert KEY not in str(info.value)
    return info.value


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.anyio
async def test_read_timeout_is_provider_timeout() -> None:
    error = await failure(raising(httpx.ReadTimeout("timed out")))
    assert type(error) is ProviderTimeout
    assert error.kind == "timeout" and error.retryable
    assert isinstance(error.__cause__, httpx.ReadTimeout)
    assert str(error).startswith("cheap: no answer within 5s")


@pytest.mark.anyio
async def test_slow_provider_hits_overall_deadline() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(5)
        return json_response(200, OPENAI_OK)

    with anyio.fail_after(2):
        error = await failure(slow, timeout_s=0.05)
    assert type(error) is ProviderTimeout


@pytest.mark.anyio
@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("[Errno 111] Connection refused"), httpx.RemoteProtocolError("peer closed")]
)
async def test_transport_errors_are_provider_unavailable(exc: Exception) -> None:
    error = await failure(raising(exc))
    assert type(error) is ProviderUnavailable
    assert error.kind == "connection" and error.retryable
    assert error.__cause__ is exc
    assert "https://api.openai.test" in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("raised", "cause", "kind"),
    [
        # what httpx-aiohttp raises: a ConnectTimeout for any aiohttp connection error
        (httpx.ConnectTimeout, aiohttp.ServerDisconnectedError(), ProviderUnavailable),
        (httpx.ConnectTimeout, aiohttp.ClientOSError(104, "reset"), ProviderUnavailable),
        (httpx.ConnectTimeout, aiohttp.ConnectionTimeoutError("slow"), ProviderTimeout),
        (httpx.ReadTimeout, aiohttp.SocketTimeoutError("slow"), ProviderTimeout),
        # httpx's own transport (kept when a proxy is configured)
        (httpx.ReadTimeout, httpcore.ReadTimeout("slow"), ProviderTimeout),
        (httpx.ConnectError, httpcore.ConnectError("refused"), ProviderUnavailable),
    ],
    ids=["disconnected", "reset", "connect-timeout", "read-timeout", "httpcore-timeout",
         "httpcore-refused"],
)
async def test_timeout_or_unavailable_by_cause(
    raised: type[httpx.TransportError], cause: Exception, kind: type[ProviderError]
) -> None:
    exc = raised("mapped")
    exc.__cause__ = cause
    error = await failure(raising(exc))
    assert type(error) is kind
    assert error.__cause__ is exc


@pytest.mark.anyio
async def test_429_with_retry_after_seconds() -> None:
    body = {"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests"}}
    error = await failure(lambda request: json_response(429, body, **{"retry-after": "7"}))
    assert type(error) is RateLimited
    assert error.retry_after == 7.0
    assert error.status == 429 and error.retryable
    assert "Rate limit reached" in str(error)


@pytest.mark.anyio
async def test_429_with_retry_after_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    error = await failure(lambda request: json_response(429, {}, **{"retry-after": when}))
    assert isinstance(error, RateLimited)
    assert error.retry_after is not None and 110 <= error.retry_after <= 120


@pytest.mark.anyio
async def test_429_prefers_retry_after_ms_and_tolerates_none() -> None:
    headers = {"retry-after-ms": "1500", "retry-after": "2"}
    error = await failure(lambda request: json_response(429, {}, **headers))
    assert isinstance(error, RateLimited) and error.retry_after == 1.5
    error = await failure(lambda request: httpx.Response(429))
    assert isinstance(error, RateLimited) and error.retry_after is None


@pytest.mark.anyio
async def test_500_is_server_error_with_provider_message() -> None:
    body = {"error": {"message": "The server had an error while processing your request.",
                      "type": "server_error"}}
    error = await failure(lambda request: json_response(500, body))
    assert type(error) is ServerError
    assert error.status == 500 and error.retryable
    assert "server_error: The server had an error" in str(error)


@pytest.mark.anyio
async def test_529_overloaded_is_server_error() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    error = await failure(lambda request: json_response(529, body), "anthropic")
    assert type(error) is ServerError
    assert error.status == 529
    assert "overloaded (HTTP 529): overloaded_error: Overloaded" in str(error)
    assert error.retry_after is None


@pytest.mark.anyio
async def test_retry_after_on_503_and_529_is_kept_for_the_mirror() -> None:
    body = {"error": {"message": "busy", "type": "server_error"}}
    error = await failure(lambda request: httpx.Response(503, json=body, headers={"retry-after": "3"}))
    assert type(error) is ServerError and error.retry_after == 3.0
    error = await failure(lambda request: httpx.Response(529, json=body, headers={"retry-after": "7"}), "anthropic")
    assert error.retry_after == 7.0


@pytest.mark.anyio
async def test_400_is_client_error_with_truncated_provider_message() -> None:
    message = "messages.0.content: Input should be a valid list " + "x" * 1000
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    error = await failure(lambda request: json_response(400, body), "anthropic")
    assert type(error) is ClientError
    assert error.status == 400 and not error.retryable
    assert "invalid_request_error: messages.0.content: Input should be" in str(error)
    assert len(str(error)) < 400


@pytest.mark.anyio
async def test_client_error_with_non_json_body() -> None:
    error = await failure(lambda request: httpx.Response(404, text="<html>\n  Not Found\n</html>"))
    assert isinstance(error, ClientError)
    assert "HTTP 404: <html> Not Found </html>" in str(error)


@pytest.mark.anyio
async def test_401_names_the_missing_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    body = {"error": {"message": "You didn't provide an API key.", "type": "invalid_request_error"}}
    error = await failure(lambda request: json_response(401, body))
    assert isinstance(error, ClientError)
    assert KEY_ENV in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "content", "api"),
    [
        (200, b"this is not json", "openai"),
        (200, b'{"id": "chatcmpl-1", "choices": []}', "openai"),
        (200, b'[1, 2, 3]', "openai"),
        (200, b'{"id": "msg_1", "type": "message"}', "anthropic"),
        (200, b"", "anthropic"),
        # A usage count that is not a number is an unusable answer, not an internal error.
        (200, b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "many"}}',
         "openai"),
    ],
)
async def test_unusable_2xx_is_bad_response(status: int, content: bytes, api: str) -> None:
    error = await failure(lambda request: httpx.Response(status, content=content), api)
    assert type(error) is BadResponse
    assert error.kind == "bad_response" and not error.retryable
    assert isinstance(error.__cause__, ValueError)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "handler",
    [
        lambda request: json_response(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}),
        lambda request: json_response(500, {"error": f"upstream rejected {request.headers['authorization']}"}),
        lambda request: json_response(429, {"error": {"message": f"slow down {KEY}"}}),
        lambda request: httpx.Response(200, text=f"key={KEY} garbage"),
        raising(httpx.ConnectError(f"failed for key {KEY}")),
    ],
)
async def test_api_key_never_appears_in_error_messages(handler: Handler) -> None:
    error = await failure(handler)  # failure() asserts KEY is absent
    assert "***" in str(error)


def test_api_key_never_appears_in_repr() -> None:
    provider = Provider(make_model())
    assert KEY not in repr(provider) and "cheap" in repr(provider)


# -- lifecycle -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_owned_client_is_closed_and_given_client_is_not() -> None:
    owned = Provider(make_model(timeout_s=12.5))
    assert owned.client.timeout.read == 12.5
    async with owned:
        pass
    assert owned.client.is_closed

    given = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: json_response(200, OPENAI_OK)))
    provider = Provider(make_model(), client=given)
    await provider.aclose()
    assert not given.is_closed
    await given.aclose()


# -- the provider's own client, against real servers on loopback ---------------------------------
#
# httpx-aiohttp reports every aiohttp connection error (refused, DNS, reset) as httpx's
# ConnectTimeout: these tests check that only a real timeout is a ProviderTimeout.


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default_settings(latency_scale=0)) as server:
        yield server


def free_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def own_client_failure(base_url: str, **overrides: object) -> ProviderError:
    async with Provider(make_model(base_url=base_url, **overrides)) as provider:
        with pytest.raises(ProviderError) as info:
            await provider.complete(REQUEST)
    assert KEY not in str(info.value)
    return info.value


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_own_client_calls_a_real_server(fake_llm: FakeLLMServer, api: str) -> None:
    base_url = fake_llm.base_url + ("" if api == "anthropic" else "/v1")
    provider = Provider(make_model(api, base_url=base_url, model="small"))
    transport = provider.client._transport
    assert isinstance(transport, AiohttpTransport)
    assert not isinstance(transport.client, aiohttp.ClientSession)  # made on the first call
    async with provider:
        request = sample_requests(1, seed=3)[0].request
        completions = [await provider.complete(request) for _ in range(2)]
        session = transport.client
        assert isinstance(session, aiohttp.ClientSession) and not session.closed
    assert session.closed and provider.client.is_closed
    for completion in completions:
        assert completion.model == "cheap" and completion.text
        assert completion.input_tokens and completion.output_tokens
    assert completions[0].text == completions[1].text


@pytest.mark.anyio
async def test_own_client_sends_no_cookie_a_candidate_set(api_key: str) -> None:
    """A provider acts for every captured call: a cookie one answer set must not go out with
    the next call (its own client keeps none)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from shadowroute.serving import BackgroundServer

    seen: list[dict[str, str]] = []

    async def chat(request: Request) -> JSONResponse:
        seen.append(dict(request.headers))
        return JSONResponse(OPENAI_OK, headers={"set-cookie": f"session={len(seen)}; Path=/"})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    with BackgroundServer(app, lifespan="off") as server:
        async with Provider(make_model(base_url=server.base_url + "/v1")) as provider:
            first = await provider.complete(REQUEST)
            await provider.complete(REQUEST)
    assert first.text == "refund" and len(seen) == 2
    assert "cookie" not in seen[1], seen[1]
    assert seen[1]["authorization"] == f"Bearer {api_key}"


@pytest.mark.anyio
async def test_refused_connection_is_provider_unavailable() -> None:
    port = free_port()
    error = await own_client_failure(f"http://127.0.0.1:{port}/v1")
    assert type(error) is ProviderUnavailable
    assert error.kind == "connection" and error.retryable
    assert str(error).startswith(f"cheap: cannot reach http://127.0.0.1:{port}: ")
    assert "Timeout" not in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize("answer", [b"", b"GARBAGE\r\n\r\n"], ids=["hang-up", "not-http"])
async def test_server_hanging_up_or_not_speaking_http_is_unavailable(answer: bytes) -> None:
    async def serve(stream: SocketStream) -> None:
        async with stream:
            await stream.receive()
            if answer:
                await stream.send(answer)

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(SocketAttribute.local_port)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(listener.serve, serve)
            error = await own_client_failure(f"http://127.0.0.1:{port}/v1")
            tasks.cancel_scope.cancel()
    assert type(error) is ProviderUnavailable
    assert error.kind == "connection"


@pytest.mark.anyio
async def test_server_that_never_answers_is_provider_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody reads
        port = silent.getsockname()[1]
        start = time.perf_counter()
        with anyio.fail_after(5):
            error = await own_client_failure(f"http://127.0.0.1:{port}/v1", timeout_s=0.5)
        elapsed = time.perf_counter() - start
    assert type(error) is ProviderTimeout
    assert error.kind == "timeout" and error.retryable
    assert str(error).startswith("cheap: no answer within 0.5s")
    assert 0.45 <= elapsed < 2.0


@pytest.mark.anyio
async def test_proxy_from_the_environment_still_applies(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # a proxy that is down
    error = await own_client_failure(fake_llm.base_url + "/v1", model="small")
    assert type(error) is ProviderUnavailable

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with Provider(make_model(base_url=fake_llm.base_url + "/v1", model="small")) as provider:
        assert isinstance(provider.client._transport, AiohttpTransport)
        assert (await provider.complete(sample_requests(1, seed=3)[0].request)).text


# -- parse_retry_after ---------------------------------------------------------------------------

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("-4", 0.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("Sat, 01 Jun 2024 12:00:30 GMT", 30.0),
        ("Sat, 01 Jun 2024 11:59:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected
