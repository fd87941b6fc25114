"""``FakeModel.refusal_rate``: a model that refuses some requests, the same ones every time and
in every API, so a cascade's ``refusal`` check has something real to escalate."""

from __future__ import annotations

import anthropic
import openai

from shadowroute.fakellm import REFUSAL_TEXT, FakeLLMServer, sample_requests


def test_a_model_refuses_the_same_share_of_requests_every_time(
    srv: FakeLLMServer, oai: openai.OpenAI, ant: anthropic.Anthropic,
) -> None:
    srv.update_model("shy", refusal_rate=0.4, accuracy=1.0)
    srv.update_model("bold", accuracy=1.0)
    requests = [d.request for d in sample_requests(60, seed=12, tasks=["summarize_ticket"])]

    def answers(model: str) -> list[str]:
        return [oai.chat.completions.create(model=model, **r).choices[0].message.content or ""
                for r in requests]

    first = answers("shy")
    refused = [a == REFUSAL_TEXT for a in first]
    assert 12 <= sum(refused) <= 36  # Binomial(60, 0.4): mean 24, sd 3.8
    assert answers("shy") == first  # the same requests, every time
    assert REFUSAL_TEXT not in answers("bold")  # the rate is the model's, not the request's
    # The Anthropic API refuses the same requests (same messages, same draw).
    system, *messages = requests[refused.index(True)]["messages"]
    reply = ant.messages.create(model="shy", max_tokens=400, system=system["content"],
                                messages=messages)
    assert reply.content[0].text == REFUSAL_TEXT and reply.stop_reason == "end_turn"
