"""Testing an app that shadowroute shadows, with shadowroute's pytest plugin (docs/testing.md).

The plugin is loaded by pytest wherever shadowroute is installed: these tests use only its
fixtures (``fake_llm``, ``make_shadow``, ``sync_shadow``, ``shadow_stored``) and the public API,
the way an application's own test suite would. Async tests run on anyio's pytest plugin.
"""

from __future__ import annotations

import httpx
import openai
import pytest

import shadowroute
from shadowroute import ShadowTransport, SyncShadowTransport

pytestmark = pytest.mark.anyio

TICKET = "My parcel was due on Monday and it still has not arrived. Where is it?"


# --------------------------------------------------------------------------- the app under test


async def suggest_reply(client: openai.AsyncOpenAI, ticket: str) -> str:
    """The application: drafts a reply to a support ticket with the expensive model."""
    with shadowroute.task("support_reply"):
        reply = await client.chat.completions.create(
            model="frontier",
            messages=[
                {"role": "system", "content": "Draft a short, friendly reply to the customer."},
                {"role": "user", "content": ticket},
            ],
        )
    return reply.choices[0].message.content or ""


def suggest_reply_sync(client: openai.OpenAI, ticket: str) -> str:
    """The same app, written for a synchronous framework."""
    reply = client.chat.completions.create(
        model="frontier", messages=[{"role": "user", "content": ticket}]
    )
    return reply.choices[0].message.content or ""


# --------------------------------------------------------------------------- its tests


async def test_the_reply_is_unchanged_and_shadowed_to_the_candidate(
    fake_llm, make_shadow, shadow_stored
) -> None:
    shadow = await make_shadow(tasks={"support_reply": ["small"]})
    shadowed = openai.AsyncOpenAI(
        base_url=fake_llm.openai_url,
        api_key="test",
        http_client=httpx.AsyncClient(transport=ShadowTransport(shadow)),
    )
    direct = openai.AsyncOpenAI(base_url=fake_llm.openai_url, api_key="test")
    async with shadowed, direct:
        answer = await suggest_reply(shadowed, TICKET)
        expected = await suggest_reply(direct, TICKET)  # the same model, not shadowed

    assert answer == expected and answer  # production gets the primary's answer, untouched
    [exchange] = await shadow_stored(shadow)  # waits until the capture is stored
    assert exchange.task == "support_reply" and exchange.primary_model == "frontier"
    assert exchange.primary_output == answer
    assert list(exchange.outputs) == ["small"]
    small = exchange.outputs["small"]
    assert small.error_kind is None and small.output
    assert fake_llm.calls("frontier") == 2 and fake_llm.calls("small") == 1


async def test_a_failing_candidate_never_reaches_the_app(
    fake_llm, make_shadow, shadow_stored
) -> None:
    fake_llm.update_model("small", error_rate=1.0, error_status=503)  # this test only
    shadow = await make_shadow(tasks={"support_reply": ["small", "tiny"]})
    async with openai.AsyncOpenAI(
        base_url=fake_llm.openai_url,
        api_key="test",
        http_client=httpx.AsyncClient(transport=ShadowTransport(shadow)),
    ) as client:
        answer = await suggest_reply(client, TICKET)

    assert answer
    [exchange] = await shadow_stored(shadow)
    assert exchange.outputs["small"].output is None
    assert exchange.outputs["small"].error_kind == "server_error"
    assert exchange.outputs["tiny"].error_kind is None and exchange.outputs["tiny"].output


def test_a_sync_app_is_shadowed_too(fake_llm, sync_shadow, shadow_stored) -> None:
    # An unlabelled call is task type "default", which the default config mirrors to small.
    with openai.OpenAI(
        base_url=fake_llm.openai_url,
        api_key="test",
        http_client=httpx.Client(transport=SyncShadowTransport(sync_shadow)),
    ) as client:
        answer = suggest_reply_sync(client, TICKET)

    [exchange] = shadow_stored.sync(sync_shadow)  # closes the SyncShadow, then reads
    assert exchange.task == "default" and exchange.primary_output == answer
    assert exchange.outputs["small"].output
