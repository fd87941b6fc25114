"""A candidate is called in its own API, with the settings that API can carry and a list of
the ones it cannot; a Responses API model gets a Responses body."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from shadowroute.config import ModelConfig
from shadowroute.formats import parse_answer
from shadowroute.mirror.provider import Provider

pytestmark = pytest.mark.anyio

KEY_ENV = "SHADOWROUTE_TEST_PROVIDER_KEY"
CANONICAL = {
    "model": "gpt-5",
    "messages": [{"role": "system", "content": "Help with orders."},
                 {"role": "user", "content": "Where is A1?"}],
    "tools": [{"type": "function", "function": {"name": "get_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}}}}],
    "n": 2, "reasoning_effort": "low", "thinking": {"type": "enabled", "budget_tokens": 1024},
}
RESPONSES_OK = {
    "id": "resp_1", "object": "response", "created_at": 1_700_000_000, "status": "completed",
    "model": "gpt-5-mini", "output": [
        {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "get_order",
         "arguments": '{"order_id": "A1"}', "status": "completed"}],
    "usage": {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0},
              "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 12},
              "total_tokens": 120},
}


def provider(api: str, handler: Any) -> Provider:
    model = ModelConfig(name="cheap", model="gpt-5-mini", api=api, api_key_env=KEY_ENV,
                        base_url="https://api.openai.test/v1", input_price=0.25,
                        output_price=2.0)
    return Provider(model, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-key-0000")


async def test_a_responses_api_candidate_gets_a_responses_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=RESPONSES_OK)

    async with provider("responses", handler) as p:
        completion = await p.complete(CANONICAL)
    (request,) = seen
    assert str(request.url) == "https://api.openai.test/v1/responses"
    assert request.headers["authorization"] == "Bearer sk-test-key-0000"
    body = json.loads(request.content)
    assert "messages" not in body and body["store"] is False
    assert body["instructions"] == "Help with orders."
    assert body["input"] == [{"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": "Where is A1?"}]}]
    assert body["tools"][0] == {"type": "function", "name": "get_order",
                                "parameters": CANONICAL["tools"][0]["function"]["parameters"]}
    assert body["reasoning"] == {"effort": "low"} and "n" not in body
    assert sorted(completion.not_carried or []) == ["n", "thinking"]
    assert parse_answer(completion.text).tool_calls == (
        {"name": "get_order", "arguments": {"order_id": "A1"}},)
    assert (completion.input_tokens, completion.output_tokens) == (100, 20)
    assert completion.cost_usd == pytest.approx((100 * 0.25 + 20 * 2.0) / 1e6)


async def test_a_chat_candidate_answers_once_without_anthropic_settings() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={
            "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-5-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "A1 shipped."}}]})

    async with provider("openai", handler) as p:
        completion = await p.complete(CANONICAL)
    (body,) = bodies
    assert "n" not in body and "thinking" not in body
    assert body["reasoning_effort"] == "low"
    assert sorted(completion.not_carried or []) == ["n", "thinking"]
    assert (completion.input_tokens, completion.cost_usd) == (None, None)  # no usage: unknown
