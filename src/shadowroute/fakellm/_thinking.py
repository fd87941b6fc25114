"""Thinking and reasoning of the models marked ``reasoning=True`` (see ``FakeModel``).

A reasoning model asked to reason (OpenAI chat ``reasoning_effort``, Responses
``reasoning.effort``, Anthropic ``thinking`` enabled or adaptive) thinks before it answers; the
answer itself is the same as without reasoning (thinking buys nothing here, it only costs
tokens). The thinking is a deterministic text about the request and the answer
(:func:`thinking_text`):

* OpenAI APIs hide it and bill it: :func:`reasoning_tokens` is its token count times a factor
  per effort (``minimal`` 1 ... ``max`` 16; ``none`` gives no reasoning). The Responses API
  returns a ``reasoning`` item, with a one-sentence summary when ``reasoning.summary`` is set.
* Anthropic shows it in a ``thinking`` block (cut to ``budget_tokens``; empty with
  ``display: "omitted"``) signed by :func:`signature`; its tokens count as output tokens.

Models not marked as reasoning models accept these settings and do not reason.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from .tasks import count_tokens, detect_task, last_user_text

__all__ = ["EFFORT_FACTOR", "reasoning_tokens", "signature", "summary_of", "thinking_text"]

EFFORT_FACTOR = {"none": 0, "minimal": 1, "low": 2, "medium": 4, "high": 8, "xhigh": 12,
                 "max": 16}
"""Hidden reasoning tokens per token of :func:`thinking_text`, by reasoning effort."""


def thinking_text(messages: Sequence[Mapping[str, Any]], answer: str,
                  calls: Sequence[tuple[str, str]] = ()) -> str:
    """What the model thinks before answering ``answer`` (and calling ``calls``: name, args)."""
    ask = " ".join(last_user_text(messages).split())
    ask = ask if len(ask) <= 160 else ask[:157].rstrip() + "..."
    task = detect_task(messages)
    parts = [f'The user wrote: "{ask}".' if ask else "There is no user message to go on."]
    if task:
        parts.append(f"This is a {task.replace('_', ' ')} request, so I should follow the "
                     "instructions in the system prompt exactly.")
    if any(m.get("role") == "tool" for m in messages):
        parts.append("The tool results are in, so I can answer from them.")
    if calls:
        listed = ", ".join(f"{name}({args})" for name, args in calls)
        parts.append(f"I need data I do not have yet, so I will call {listed}.")
    elif answer:
        short = " ".join(answer.split())
        short = short if len(short) <= 120 else short[:117].rstrip() + "..."
        parts.append(f"Checking the message again, the answer is: {short}")
    parts.append("That covers everything that was asked.")
    return " ".join(parts)


def reasoning_tokens(thinking: str, effort: str | None) -> int:
    """Hidden reasoning tokens an OpenAI reasoning model spends at ``effort``."""
    if effort is None:
        return 0
    return count_tokens(thinking) * EFFORT_FACTOR.get(effort, EFFORT_FACTOR["medium"])


def summary_of(thinking: str) -> str:
    """The one-sentence reasoning summary the Responses API returns on request."""
    first = thinking.split(". ")[0].rstrip(".")
    return f"**Reading the request**\n\n{first}."


def signature(thinking: str, model: str) -> str:
    """A stable, opaque signature for a thinking block (base64, like the real one)."""
    digest = hashlib.sha512(f"{model}\x00{thinking}".encode()).digest()
    return base64.b64encode(b"\x12" + digest * 2).decode()
