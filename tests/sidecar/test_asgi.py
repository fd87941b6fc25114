"""The sidecar's ASGI plumbing: a relayed body of known length goes out in as few messages as
it arrives in, and the relay's own end (capture, metrics) is done before the client has it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio

from shadowroute.sidecar.asgi import KnownLength


def sent_by(chunks: list[bytes], length: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The ASGI messages KnownLength sends for ``chunks``, and the order of events (each
    send, and the end of the body's generator)."""
    events: list[str] = []
    messages: list[dict[str, Any]] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            for chunk in chunks:
                yield chunk
        finally:
            events.append("relay ended")

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)
        events.append(f"{message['type']}:{message.get('more_body')}")

    async def main() -> None:
        response = KnownLength(body(), 200, length)
        response.raw_headers = [(b"content-length", str(length).encode())]
        await response({"type": "http"}, None, send)

    anyio.run(main)
    return messages, events


def test_the_last_chunk_ends_the_answer_after_the_relay_has_ended() -> None:
    messages, events = sent_by([b"abc", b"defg"], 7)
    assert [(m.get("body"), m.get("more_body")) for m in messages[1:]] == [
        (b"abc", True), (b"defg", False)]  # no empty closing message
    assert messages[0]["status"] == 200
    assert events == ["http.response.start:None", "http.response.body:True", "relay ended",
                      "http.response.body:False"]


def test_an_empty_body_of_known_length_is_one_closing_message() -> None:
    messages, events = sent_by([], 12)  # a HEAD answer: the length of a body not sent
    assert [(m.get("body"), m.get("more_body")) for m in messages[1:]] == [(b"", False)]
    assert events[-2:] == ["relay ended", "http.response.body:False"]


def test_one_chunk_is_one_body_message() -> None:
    messages, _ = sent_by([b"{}"], 2)
    assert [(m.get("body"), m.get("more_body")) for m in messages[1:]] == [(b"{}", False)]
