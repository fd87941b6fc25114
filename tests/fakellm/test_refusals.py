"""``FakeModel.refusal_rate``: a model that refuses some requests, the same ones every time and
in every API, so a cascade's ``refusal`` check has something real to escalate."""

from __future__ import annotations

import anthropic
import openai

from shadowroute.fakellm import ABSTAIN_TEXT, REFUSAL_TEXT, FakeLLMServer, sample_requests


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


def test_a_model_that_abstains_says_so_instead_of_wrong_answers_only(
    srv: FakeLLMServer, oai: openai.OpenAI,
) -> None:
    """``abstain``: on its task type, wrong answers become "I don't know." (at the given
    rate); right answers and other task types are untouched."""
    srv.update_model("unsure", accuracy=0.6, abstain={"sentiment": 1.0})
    items = sample_requests(80, seed=5, tasks=["sentiment"])

    def answers(requests: list) -> list[str]:
        return [oai.chat.completions.create(model="unsure", **r).choices[0].message.content
                or "" for r in requests]

    unsure = answers([d.request for d in items])
    others = answers([d.request for d in sample_requests(30, seed=5, tasks=["classify_intent"])])
    srv.update_model("unsure", abstain={})  # the same model guessing: the same draws
    guesses = answers([d.request for d in items])
    abstained = [a == ABSTAIN_TEXT for a in unsure]
    assert 15 <= sum(abstained) <= 50  # 40% wrong: Binomial(80, 0.4), mean 32, sd 4.4
    for said, guessed, item in zip(unsure, guesses, items, strict=True):
        if said == ABSTAIN_TEXT:
            assert guessed.strip().lower() != item.expected.lower()  # it would have been wrong
        else:
            assert said == guessed  # its other answers are as before
    assert ABSTAIN_TEXT not in others
