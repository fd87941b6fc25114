"""The OpenAI Responses API on the fake server, through the official SDK client over loopback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from shadowroute.fakellm import (
    EXTRACT_ORDER_SCHEMA,
    FakeLLMServer,
    FakeLLMSettings,
    FakeModel,
    FakeState,
    sample_requests,
)

EVENT = TypeAdapter(ResponseStreamEvent)
QUESTION = "How should I plan a weekend trip to Lyon?"


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_text_answer_is_the_chat_answer_with_the_settings_echoed(oai: openai.OpenAI) -> None:
    demo = sample_requests(1, seed=4, tasks=["classify_intent"])[0]
    system, user = demo.request["messages"]
    chat = oai.chat.completions.create(model="small", messages=demo.request["messages"])
    resp = oai.responses.create(model="small", instructions=system["content"],
                                input=user["content"], max_output_tokens=64, temperature=0,
                                metadata={"team": "support"})
    assert resp.object == "response" and resp.id.startswith("resp_")
    assert resp.status == "completed" and resp.incomplete_details is None
    assert resp.output_text == chat.choices[0].message.content
    message = resp.output[0]
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "output_text"
    assert resp.instructions == system["content"] and resp.max_output_tokens == 64
    assert resp.temperature == 0 and resp.metadata == {"team": "support"}
    assert resp.usage and chat.usage
    assert resp.usage.input_tokens == chat.usage.prompt_tokens
    assert resp.usage.output_tokens == chat.usage.completion_tokens
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    assert resp.usage.output_tokens_details.reasoning_tokens == 0
    items = oai.responses.create(model="small", input=[
        {"role": "system", "content": system["content"]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": user["content"]},
                     {"type": "input_image", "image_url": "https://example.com/a.png",
                      "detail": "auto"}]}])
    assert items.output_text == resp.output_text


def test_stream_event_sequence(srv: FakeLLMServer, oai: openai.OpenAI) -> None:
    r = httpx.post(srv.base_url + "/v1/responses",
                   json={"model": "small", "input": QUESTION, "stream": True})
    events = sse(r.text)
    names = [name for name, _ in events]
    assert names[:5] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added",
                         "response.output_text.delta"]
    assert names[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert "data: [DONE]" not in r.text
    for (name, data), number in zip(events, range(len(events)), strict=True):
        assert EVENT.validate_python(data).type == name and data["sequence_number"] == number
    created = Response.model_validate(events[0][1]["response"])
    assert created.status == "in_progress" and created.output == [] and created.usage is None
    final = Response.model_validate(events[-1][1]["response"])
    deltas = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
    assert final.output_text == deltas and final.usage and final.usage.output_tokens > 0
    with oai.responses.stream(model="small", input=QUESTION) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        assert stream.get_final_response().output_text == text
    whole = oai.responses.create(model="small", input=QUESTION)
    assert whole.output_text == text


def test_incomplete_when_cut_by_max_output_tokens(oai: openai.OpenAI) -> None:
    resp = oai.responses.create(model="small", input=QUESTION, max_output_tokens=16)
    assert resp.status == "incomplete"
    assert resp.incomplete_details and resp.incomplete_details.reason == "max_output_tokens"
    assert resp.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert resp.usage and resp.usage.output_tokens <= 16
    stream = oai.responses.create(model="small", input=QUESTION, max_output_tokens=16,
                                  stream=True)
    last = list(stream)[-1]
    assert last.type == "response.incomplete" and last.response.status == "incomplete"


def test_previous_response_id_prepends_the_stored_conversation(oai: openai.OpenAI) -> None:
    first = oai.responses.create(model="small", input="My name is Aiko and I live in Osaka.")
    follow = oai.responses.create(model="small", previous_response_id=first.id,
                                  input="What should I cook tonight?")
    alone = oai.responses.create(model="small", input="What should I cook tonight?")
    assert follow.previous_response_id == first.id
    assert follow.usage and alone.usage and follow.usage.input_tokens > alone.usage.input_tokens
    with pytest.raises(openai.NotFoundError) as exc:
        oai.responses.create(model="small", previous_response_id="resp_nope", input="hi")
    assert exc.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
    assert exc.value.body["param"] == "previous_response_id"  # type: ignore[index]
    unstored = oai.responses.create(model="small", input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="small", previous_response_id=unstored.id, input="again")


def test_the_response_store_is_bounded() -> None:
    state = FakeState(FakeLLMSettings())
    state.RESPONSE_MEMORY = 3
    for n in range(5):
        state.store_response(f"resp_{n}", ([], {}))
    assert state.stored_response("resp_1") is None and state.stored_response("resp_4") is not None


def test_reasoning_items_and_tokens(oai: openai.OpenAI) -> None:
    plain = oai.responses.create(model="frontier", input=QUESTION)
    assert [i.type for i in plain.output] == ["message"]
    low = oai.responses.create(model="frontier", input=QUESTION, reasoning={"effort": "low"})
    high = oai.responses.create(model="frontier", input=QUESTION,
                                reasoning={"effort": "high", "summary": "auto"},
                                include=["reasoning.encrypted_content"])
    assert [i.type for i in low.output] == ["reasoning", "message"]
    assert low.output[0].summary == [] and low.output_text == plain.output_text  # type: ignore[union-attr]
    assert high.output[0].summary and high.output[0].encrypted_content  # type: ignore[union-attr]
    assert low.reasoning and low.reasoning.effort == "low"
    lo = low.usage.output_tokens_details.reasoning_tokens  # type: ignore[union-attr]
    hi = high.usage.output_tokens_details.reasoning_tokens  # type: ignore[union-attr]
    assert 0 < lo < hi
    assert low.usage.output_tokens == plain.usage.output_tokens + lo  # type: ignore[union-attr]
    no_effort = oai.responses.create(model="frontier", input=QUESTION,
                                     reasoning={"effort": "none"})
    assert [i.type for i in no_effort.output] == ["message"]
    not_a_reasoner = oai.responses.create(model="small", input=QUESTION,
                                          reasoning={"effort": "high"})
    assert not_a_reasoner.usage.output_tokens_details.reasoning_tokens == 0  # type: ignore[union-attr]
    starved = oai.responses.create(model="frontier", input=QUESTION, max_output_tokens=16,
                                   reasoning={"effort": "high"})
    assert starved.status == "incomplete" and [i.type for i in starved.output] == ["reasoning"]
    with oai.responses.stream(model="frontier", input=QUESTION,
                              reasoning={"effort": "low", "summary": "concise"}) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.reasoning_summary_text.delta" in kinds
    assert final.output[0].summary[0].text  # type: ignore[union-attr]


def test_structured_output_fits_the_schema(oai: openai.OpenAI) -> None:
    import jsonschema

    for demo in sample_requests(30, seed=6, tasks=["extract_order"]):
        system, user = demo.request["messages"]
        resp = oai.responses.create(
            model="tiny", instructions=system["content"], input=user["content"],
            text={"format": {"type": "json_schema", "name": "order", "strict": True,
                             "schema": EXTRACT_ORDER_SCHEMA}})
        jsonschema.validate(json.loads(resp.output_text), EXTRACT_ORDER_SCHEMA)
        assert resp.text and resp.text.format.type == "json_schema"  # type: ignore[union-attr]


@pytest.mark.parametrize("body", [
    {"model": "small"},
    {"model": "small", "input": 3},
    {"model": "small", "input": "hi", "max_output_tokens": 5},
    {"model": "small", "input": "hi", "reasoning": {"effort": "extreme"}},
    {"model": "small", "input": "hi", "reasoning": "high"},
    {"model": "small", "input": [{"type": "function_call_output", "call_id": [1], "output": 2}]},
    {"model": "small", "input": [{"type": "function_call", "call_id": {}, "name": 3,
                                  "arguments": None}]},
    {"model": "small", "input": "hi", "tools": [{"type": "function"}], "tool_choice": {}},
    {"model": "small", "input": "hi", "text": {"format": {"type": "json_schema", "schema": 1}}},
])
def test_bad_input_is_4xx_never_500(srv: FakeLLMServer, body: dict[str, Any]) -> None:
    r = httpx.post(srv.base_url + "/v1/responses", json=body)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    else:
        Response.model_validate(r.json())


def test_faults_and_stats(srv: FakeLLMServer, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="nope", input="hi")
    srv.update_model("limited-r", error_rate=1.0, error_status=429, retry_after=1)
    with pytest.raises(openai.RateLimitError) as exc:
        oai.responses.create(model="limited-r", input="hi")
    assert exc.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    srv.update_model("broken-r", garbage=True)
    r = httpx.post(srv.base_url + "/v1/responses",
                   json={"model": "broken-r", "input": "hi", "stream": True})
    assert r.status_code == 200 and "response.created" in r.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text.split("data: ", 1)[1])
    srv.update_model("counted-r")
    oai.responses.create(model="counted-r", input="hi")
    entry = srv.stats()["models"]["counted-r"]
    assert entry["responses"] == 1 and entry["openai"] == 0 and entry["tasks"] == {"generic": 1}


def test_same_answer_whatever_the_api_for_a_stateless_model() -> None:
    settings = FakeLLMSettings(models=[FakeModel(name="m", accuracy=0.5)], latency_scale=0)
    with FakeLLMServer(settings) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="fake")
        for demo in sample_requests(10, seed=8):
            system, user = demo.request["messages"]
            chat = client.chat.completions.create(model="m", messages=demo.request["messages"])
            resp = client.responses.create(model="m", instructions=system["content"],
                                           input=user["content"])
            assert resp.output_text == chat.choices[0].message.content
