"""What ``Router.route_and_shadow`` returns: one type whether the task type is promoted or not.

With ``call=``, what the call returned, untouched; without it, a ``ChatCompletion`` read like the
OpenAI SDK's, whichever model served and whichever API it speaks (tracker issue 21)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shadowroute import ChatCompletion, Router, Shadow
from shadowroute.fakellm import FakeLLMServer, default_settings
from shadowroute.routing import Route, write_routes
from support.pipeline import REQUEST

pytestmark = pytest.mark.anyio

ANTHROPIC_REQUEST = {"model": "frontier", "max_tokens": 200,
                     "messages": [{"role": "user", "content": "Where is my parcel?"}]}
RESPONSES_REQUEST = {"model": "frontier", "input": "Where is my parcel?"}
IN_API = {"openai": REQUEST, "anthropic": ANTHROPIC_REQUEST, "responses": RESPONSES_REQUEST}

# One model per API the Router may have to call: the reply's type must not depend on it.
SERVED_BY = {None: "frontier", "small": "small", "claude-small": "claude-small", "tiny": "tiny"}

TOOL_REPLY = {
    "id": "chatcmpl-7", "object": "chat.completion", "created": 1_790_000_000, "model": "small",
    "system_fingerprint": "fp_1",
    "choices": [{
        "index": 0, "finish_reason": "tool_calls", "logprobs": None,
        "message": {"role": "assistant", "content": None, "refusal": None,
                    "reasoning_content": "the user wants a parcel looked up",
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {
                        "name": "track", "arguments": '{"parcel": "A1"}'}}]},
    }],
    "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49,
              "prompt_tokens_details": {"cached_tokens": 32},
              "completion_tokens_details": {"reasoning_tokens": 3}},
}
"""An OpenAI chat completion with a tool call, a server's extra key and token details."""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, make_config: Callable[..., Any], fake: FakeLLMServer) -> Any:
    """frontier (the primary) and small on the OpenAI chat API, claude-small on Anthropic's,
    tiny on the Responses API; a route map re-read on every call; everything shadowed."""
    v1 = fake.base_url + "/v1"
    return make_config(
        f"sqlite+aiosqlite:///{tmp_path / 'shadowroute.db'}",
        models={"frontier": {"base_url": v1}, "small": {"base_url": v1},
                "claude-small": {"base_url": fake.base_url, "api": "anthropic"},
                "tiny": {"base_url": v1, "api": "responses"}},
        tasks={"classify_intent": {"candidates": [], "sample_rate": 1.0,
                                   "noise_floor_rate": 0.0}},
        routes={"file": str(tmp_path / "routes.yaml"), "reload_interval_s": 0,
                "reverse_shadow_rate": 1.0},
        store={"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
    )


def promote(config: Any, model: str | None) -> None:
    routes = {} if model is None else {"classify_intent": Route(
        task="classify_intent", model=model, tier="promoted", primary="frontier",
        since=datetime(2026, 11, 1, tzinfo=UTC), by="alice")}
    write_routes(config.routes_file(), routes)


# --------------------------------------------------------------------------- call=None


@pytest.mark.parametrize("api", ["openai", "anthropic", "responses"])
@pytest.mark.parametrize("promoted", list(SERVED_BY))
async def test_without_call_the_reply_is_a_chat_completion_promoted_or_not(
    config: Any, promoted: str | None, api: str,
) -> None:
    promote(config, promoted)
    async with Router(config) as router:
        reply = await router.route_and_shadow(task="classify_intent", request=IN_API[api],
                                              api=api)
    assert type(reply) is ChatCompletion
    assert reply.model == SERVED_BY[promoted]
    message = reply.choices[0].message
    assert isinstance(message.content, str) and message.content
    assert message.role == "assistant" and message.tool_calls is None
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert isinstance(reply.id, str) and reply.object == "chat.completion"
    dumped = json.loads(reply.model_dump_json())
    assert dumped == reply.model_dump()
    assert dumped["choices"][0]["message"]["content"] == message.content


@pytest.mark.parametrize("promoted", list(SERVED_BY))
async def test_the_reply_validates_as_the_openai_sdks_chat_completion(
    config: Any, promoted: str | None,
) -> None:
    sdk = pytest.importorskip("openai.types.chat")
    promote(config, promoted)
    async with Router(config) as router:
        reply = await router.route_and_shadow(task="classify_intent", request=REQUEST)
    theirs = sdk.ChatCompletion.model_validate(reply.model_dump())
    assert theirs.choices[0].message.content == reply.choices[0].message.content
    assert theirs.model == reply.model and theirs.usage.total_tokens == reply.usage.total_tokens


async def test_a_route_to_an_undeclared_model_still_returns_a_chat_completion(
    config: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    promote(config, "gone")
    with caplog.at_level(logging.WARNING, logger="shadowroute"):
        async with Router(config) as router:
            reply = await router.route_and_shadow(task="classify_intent", request=REQUEST)
    assert type(reply) is ChatCompletion and reply.model == "frontier"
    assert any("'gone', which is not declared" in r.getMessage() for r in caplog.records)


async def test_without_call_the_shadow_still_stores_the_answer_forwards_and_in_reverse(
    config: Any, stored: Callable[[str], Any],
) -> None:
    replies = []
    async with Shadow(config) as sh, Router(config) as router:
        for promoted in (None, "claude-small"):
            promote(config, promoted)
            replies.append(await router.route_and_shadow(task="classify_intent",
                                                         request=REQUEST))
    assert sh.stats.capture_errors == 0 and sh.stats.reverse_shadows == 1
    exchanges, _ = await stored(config.database_url)
    by_route = {x.route: x for x in exchanges}
    assert set(by_route) == {"shadow", "reverse"}
    assert by_route["shadow"].primary_output == replies[0].choices[0].message.content
    assert by_route["reverse"].primary_model == "frontier"


# --------------------------------------------------------------------------- call=


class SDKObject:
    """Stands for whatever the caller's client returns: it must come back as it is."""

    def __init__(self, model: str) -> None:
        self.model = model


@pytest.mark.parametrize("api", ["openai", "anthropic", "responses"])
@pytest.mark.parametrize("promoted", [False, True])
async def test_with_call_its_result_comes_back_untouched_promoted_or_not(
    config: Any, promoted: bool, api: str,
) -> None:
    # Promoted to a model of the call's own provider: call= can be given its id.
    model = {"anthropic": "claude-small"}.get(api, "small") if promoted else None
    promote(config, model)
    returned: list[SDKObject] = []

    async def call(request: dict[str, Any]) -> SDKObject:
        returned.append(SDKObject(request["model"]))
        return returned[-1]

    reply = await Router(config).route_and_shadow(task="classify_intent", request=IN_API[api],
                                                  call=call, api=api)
    assert reply is returned[0]
    assert reply.model == (model or "frontier")


@pytest.mark.parametrize(("api", "promoted"), [("openai", "claude-small"),
                                               ("anthropic", "small"), ("anthropic", "tiny")])
async def test_with_call_a_model_of_the_other_provider_leaves_the_call_on_the_primary(
    config: Any, caplog: pytest.LogCaptureFixture, api: str, promoted: str,
) -> None:
    """Your client speaks ``api``: given the other provider's model id it could not serve the
    call, and production would break on the day of the promotion. It stays on the primary (and
    is shadowed forwards); without call= shadowroute translates and the promoted model answers."""
    promote(config, promoted)
    sent: list[dict[str, Any]] = []

    async def call(request: dict[str, Any]) -> SDKObject:
        sent.append(request)
        return SDKObject(request["model"])

    with caplog.at_level(logging.WARNING, logger="shadowroute"):
        async with Shadow(config) as sh, Router(config) as router:
            for _ in range(2):
                reply = await router.route_and_shadow(
                    task="classify_intent", request=IN_API[api], call=call, api=api)
                assert isinstance(reply, SDKObject) and reply.model == "frontier"
            translated = await router.route_and_shadow(task="classify_intent",
                                                       request=IN_API[api], api=api)
    assert [r["model"] for r in sent] == ["frontier", "frontier"]
    assert sh.stats.reverse_shadows == 1  # only the call=None one went to the promoted model
    assert type(translated) is ChatCompletion and translated.model == promoted
    warned = [r for r in caplog.records if f"promoted to {promoted!r}, whose [models] entry "
              f"speaks the" in r.getMessage()]
    assert len(warned) == 1 and "stay on the primary" in warned[0].getMessage()


async def test_with_call_a_route_to_an_undeclared_model_is_given_to_the_call_as_named(
    config: Any,
) -> None:
    """Unlike call=None (nothing to call it with), your call may know the model: it gets the
    route's model name, and its result still comes back untouched."""
    promote(config, "gone")

    async def call(request: dict[str, Any]) -> SDKObject:
        return SDKObject(request["model"])

    reply = await Router(config).route_and_shadow(task="classify_intent", request=REQUEST,
                                                  call=call)
    assert isinstance(reply, SDKObject) and reply.model == "gone"


async def test_a_responses_follow_up_passed_without_api_stays_on_the_primary(
    config: Any,
) -> None:
    """``client.responses.create`` as ``call`` without ``api="responses"``: the request is read
    as the Responses API it is (as shadow() reads it), so a ``previous_response_id`` follow-up,
    which only the primary's provider can answer, is not routed to the promoted model."""
    promote(config, "small")
    sent: list[str] = []

    async def call(request: dict[str, Any]) -> dict[str, Any]:
        sent.append(request["model"])
        return {"id": "resp_2", "object": "response", "status": "completed",
                "model": request["model"], "output": [], "usage": None}

    router = Router(config)
    follow_up = {**RESPONSES_REQUEST, "previous_response_id": "resp_1"}
    await router.route_and_shadow(task="classify_intent", request=follow_up, call=call)
    await router.route_and_shadow(task="classify_intent", request=RESPONSES_REQUEST, call=call)
    assert sent == ["frontier", "small"]


# --------------------------------------------------------------------------- the type itself


def test_it_reads_like_the_sdk_object_and_keeps_what_the_server_sent() -> None:
    reply = ChatCompletion.from_response(TOOL_REPLY)
    call = reply.choices[0].message.tool_calls[0]
    assert (call.id, call.type, call.function.name) == ("call_1", "function", "track")
    assert json.loads(call.function.arguments) == {"parcel": "A1"}
    assert reply.choices[0].message.content is None
    assert reply.choices[0].message.reasoning_content == "the user wants a parcel looked up"
    assert reply.usage.prompt_tokens_details.cached_tokens == 32
    assert reply.usage.completion_tokens_details.reasoning_tokens == 3
    assert reply.to_dict() == TOOL_REPLY and json.loads(reply.to_json()) == TOOL_REPLY
    assert reply.model_dump()["service_tier"] is None  # like the SDK: declared fields, None


def test_it_round_trips_through_the_openai_sdk_with_tool_calls() -> None:
    sdk = pytest.importorskip("openai.types.chat")
    ours = ChatCompletion.from_response(TOOL_REPLY)
    theirs = sdk.ChatCompletion.model_validate(ours.model_dump())
    assert theirs.choices[0].message.tool_calls[0].function.arguments == '{"parcel": "A1"}'
    assert theirs.usage.prompt_tokens_details.cached_tokens == 32


def test_a_value_of_an_unexpected_type_is_kept_not_refused() -> None:
    """The answer already reached production: a server's odd field never turns it into an
    error. That field keeps its value as sent; every other one is read as declared."""
    message = {"role": "assistant", "content": [{"type": "text", "text": "shipping"}],
               "tool_calls": [{"id": "c", "type": "function",
                               "function": {"name": "track", "arguments": "{}"}}]}
    odd = {"id": 17, "model": "local", "choices": [
        {"index": 0, "finish_reason": "stop", "message": message},
        {"index": 1, "message": "a required field of another type"}]}
    reply = ChatCompletion.from_response(odd)
    assert reply.id == 17 and reply.model == "local"
    assert reply.choices[0].message.content == [{"type": "text", "text": "shipping"}]
    assert reply.choices[0].message.tool_calls[0].function.name == "track"
    assert reply.choices[1].message == "a required field of another type"
    assert reply.to_dict() == odd


def test_reading_it_like_the_old_dict_still_works_but_is_deprecated() -> None:
    reply = ChatCompletion.from_response(TOOL_REPLY)
    with pytest.warns(DeprecationWarning, match=r"like a dict \(\['model'\]\).*reply\.model"):
        assert reply["model"] == "small"
    with pytest.warns(DeprecationWarning):
        assert reply["choices"][0]["message"]["tool_calls"] == \
            TOOL_REPLY["choices"][0]["message"]["tool_calls"]
    with pytest.warns(DeprecationWarning):
        assert reply.get("service_tier", "absent") == "absent"  # as the dict: only sent keys
    with pytest.warns(DeprecationWarning):
        assert "usage" in reply and "service_tier" not in reply
    with pytest.warns(DeprecationWarning), pytest.raises(KeyError):
        reply["nope"]
