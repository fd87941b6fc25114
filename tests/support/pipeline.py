"""A candidate whose behaviour a test sets, and the primary's answer it mirrors."""

from __future__ import annotations

from typing import Any

import anyio

from shadowroute.errors import BadResponse, RateLimited, ServerError
from shadowroute.records import Completion

REQUEST = {"model": "frontier", "messages": [{"role": "user", "content": "Where is my parcel?"}]}


def completion(text: str = "shipping", model: str = "frontier") -> dict[str, Any]:
    """A chat completion as the primary returns it (12 prompt tokens, 1 completion token)."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }


class FakeCandidate:
    """A Completer whose behaviour a test sets; records every request it gets.

    ``mode``: ``ok`` answers ``text``; ``hang`` never answers; ``block`` answers once
    ``release`` is set; ``error`` is a 500; ``rate_limited`` is a 429 ``failures_left`` times;
    ``garbage`` is an unusable response."""

    def __init__(self, name: str, mode: str = "ok", text: str = "shipping",
                 cost_usd: float = 0.001) -> None:
        self.name, self.mode, self.text, self.cost_usd = name, mode, text, cost_usd
        self.requests: list[dict[str, Any]] = []
        self.release = anyio.Event()
        self.failures_left = 0

    async def complete(self, request: dict[str, Any]) -> Completion:
        self.requests.append(request)
        if self.mode == "hang":
            await anyio.sleep_forever()
        if self.mode == "block":
            await self.release.wait()
        if self.mode == "error":
            raise ServerError("HTTP 500: upstream exploded", model=self.name, status=500)
        if self.mode == "rate_limited" and self.failures_left > 0:
            self.failures_left -= 1
            raise RateLimited("HTTP 429", model=self.name, retry_after=0.01)
        if self.mode == "garbage":
            raise BadResponse("response is not JSON", model=self.name)
        return Completion(
            model=self.name,
            text=self.text,
            response=completion(self.text, self.name),
            input_tokens=12,
            output_tokens=1,
            latency_ms=1.0,
            cost_usd=self.cost_usd,
        )

    async def aclose(self) -> None:
        pass
