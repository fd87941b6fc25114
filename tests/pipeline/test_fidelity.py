"""What is stored is what production did: Responses API calls through shadow(), costs that are
unknown stay unknown, calls that depend on provider-side state are counted, never mirrored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from shadowroute import Shadow
from shadowroute.formats import parse_answer
from shadowroute.store import Store, TrafficDaily

pytestmark = pytest.mark.anyio

RESPONSES_REQUEST = {
    "model": "frontier", "instructions": "Classify the intent.",
    "input": [{"role": "user", "content": [{"type": "input_text", "text": "Where is my parcel?"}]}],
    "reasoning": {"effort": "low", "summary": "auto"},
}
RESPONSE = {
    "id": "resp_1", "object": "response", "created_at": 1_700_000_000, "status": "completed",
    "model": "frontier",
    "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "shipping", "annotations": []}]}],
    "usage": {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
              "output_tokens": 1, "output_tokens_details": {"reasoning_tokens": 0},
              "total_tokens": 13},
}


class SDKObject:
    """Stands for an SDK response object: what ``client.responses.create`` returns."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def model_dump(self) -> dict[str, Any]:
        return self._data


async def test_a_responses_api_call_is_stored_canonical_and_mirrored_as_chat(
    db_url: str, make_config, shadow_preset, fake_candidate, stored,
) -> None:
    config = make_config(db_url, shadow_preset)
    small = fake_candidate("small")
    async with Shadow(config, providers={"small": small}) as sh:

        async def primary() -> SDKObject:
            return SDKObject(RESPONSE)

        result = await sh.shadow(task="classify_intent", request=RESPONSES_REQUEST, call=primary)
        assert isinstance(result, SDKObject)  # the primary's answer, untouched
    (exchange,), (output,) = await stored(db_url)
    assert exchange.request["messages"] == [
        {"role": "system", "content": "Classify the intent."},
        {"role": "user", "content": [{"type": "text", "text": "Where is my parcel?"}]}]
    assert exchange.request["reasoning_effort"] == "low"
    assert exchange.primary_output == "shipping"
    assert (exchange.input_tokens, exchange.output_tokens) == (12, 1)
    assert exchange.not_carried == ["reasoning.summary"]
    (sent,) = small.requests
    assert "input" not in sent and sent["messages"] == exchange.request["messages"]
    assert output.model == "small" and sh.stats.capture_errors == 0


async def test_a_call_that_depends_on_provider_state_is_counted_not_mirrored(
    db_url: str, make_config, shadow_preset, fake_candidate, stored,
) -> None:
    config = make_config(db_url, shadow_preset)
    small = fake_candidate("small")
    follow_up = {**RESPONSES_REQUEST, "previous_response_id": "resp_0"}
    async with Shadow(config, providers={"small": small}) as sh:
        for _ in range(3):
            await sh.shadow(task="classify_intent", request=follow_up, call=_answer)
        await sh.shadow(task="classify_intent", request=RESPONSES_REQUEST, call=_answer)
    exchanges, _ = await stored(db_url)
    assert len(exchanges) == 1 and len(small.requests) == 1
    assert sh.stats.not_shadowable == {"previous_response_id": 3}
    assert sh.stats.discarded["not_shadowable"] == 3 and sh.stats.capture_errors == 0
    assert sh.stats.ledger()["pending"] == 0
    async with await Store.open(db_url) as store, store.session() as session:
        (traffic,) = (await session.scalars(select(TrafficDaily))).all()
    assert (traffic.requests, traffic.sampled, traffic.not_shadowable) == (4, 4, 3)


async def test_an_answer_without_usage_has_an_unknown_cost_not_a_zero_one(
    db_url: str, make_config, shadow_preset, fake_candidate, stored, completion,
) -> None:
    config = make_config(db_url, shadow_preset)
    no_usage = {k: v for k, v in completion("shipping").items() if k != "usage"}
    async with Shadow(config, providers={"small": fake_candidate("small")}) as sh:

        async def primary() -> dict[str, Any]:
            return no_usage

        await sh.shadow(task="classify_intent", request=_request(), call=primary)
    (exchange,), _ = await stored(db_url)
    assert (exchange.input_tokens, exchange.output_tokens, exchange.cost_usd) == (None, None, None)


async def test_claude_text_and_tool_calls_reach_the_store_together(
    db_url: str, make_config, shadow_preset, fake_candidate, stored,
) -> None:
    config = make_config(db_url, shadow_preset)
    reply = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-big",
             "stop_reason": "tool_use", "usage": {"input_tokens": 30, "output_tokens": 20},
             "content": [{"type": "text", "text": "Let me look that up."},
                         {"type": "tool_use", "id": "t1", "name": "get_order",
                          "input": {"order_id": "A1"}}]}
    request = {"model": "claude-big", "max_tokens": 100,
               "messages": [{"role": "user", "content": "Where is A1?"}],
               "tools": [{"name": "get_order", "input_schema": {"type": "object"}}]}
    async with Shadow(config, providers={"small": fake_candidate("small")}) as sh:

        async def primary() -> dict[str, Any]:
            return reply

        await sh.shadow(task="classify_intent", request=request, call=primary, api="anthropic")
    (exchange,), _ = await stored(db_url)
    answer = parse_answer(exchange.primary_output)
    assert answer.content == "Let me look that up."
    assert answer.tool_calls == ({"name": "get_order", "arguments": {"order_id": "A1"}},)


async def _answer() -> dict[str, Any]:
    return RESPONSE


def _request() -> dict[str, Any]:
    return {"model": "frontier", "messages": [{"role": "user", "content": "Where is my parcel?"}]}
