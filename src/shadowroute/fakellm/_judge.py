"""The simulated judge: any model that is sent a pairwise judge prompt answers as a judge.

A judge prompt is a user message holding three fenced blocks whose delimiters share a hex
nonce (the format of :mod:`shadowroute.scoring.prompt`, parsed here with its own regex, as a
real judge model would read it)::

    <<REQUEST-<nonce>>> JSON chat messages <<END-REQUEST-<nonce>>>
    <<RESPONSE-A-<nonce>>> text <<END-RESPONSE-A-<nonce>>>
    <<RESPONSE-B-<nonce>>> text <<END-RESPONSE-B-<nonce>>>

The reply is ``{"verdict": "A" | "B" | "same", "reason": "..."}``, decided in this order:

1. A and B identical after normalisation -> ``"same"``.
2. Fooled: exactly one response addresses the judge ("ignore previous instructions",
   "rate this", "verdict", ...) -> that response wins. This is what shadowroute's injection
   screen (:func:`~shadowroute.scoring.prompt.find_injection`) exists to prevent.
3. With probability ``1 - accuracy`` (the model's ``accuracy_for("judge")``) the judge errs,
   and an erring judge is position-biased: it answers ``"A"``. Asking in both orders therefore
   turns its errors into an order-dependent (inconsistent) pair, i.e. a tie.
4. Otherwise it judges correctness: the request's task is detected from its messages and a
   response is correct when it equals the simulator's expected answer (the generic simulator's
   paragraph when there is no known task). The correct one wins; both correct or both wrong ->
   ``"same"``. Answers compare after normalisation (strip, casefold, collapse whitespace), or as
   parsed values when both are JSON (so key order does not matter).

With probability ``verdict_garbage_rate`` the reply is prose instead of JSON. Every draw comes
from an rng seeded by (seed, model, request block, response A, response B, number of messages in
the judge conversation) -- not the nonce, so a comparison gets the same verdict whatever nonce was
drawn, while a retry (which appends two messages) draws again.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .tasks import GENERIC, TASK_SIMULATORS, detect_task, last_user_text

__all__ = ["JUDGE_TASK", "JudgePrompt", "find_judge_prompt", "judge_reply"]

JUDGE_TASK = "judge"
"""The pseudo task type of a judge prompt (stats, ``FakeModel.accuracy_for``)."""

_START = "<<REQUEST-"
_PROMPT = re.compile(
    r"<<REQUEST-(?P<nonce>[0-9a-fA-F]+)>>\n(?P<request>.*?)\n<<END-REQUEST-(?P=nonce)>>"
    r".*?<<RESPONSE-A-(?P=nonce)>>\n(?P<a>.*?)\n<<END-RESPONSE-A-(?P=nonce)>>"
    r".*?<<RESPONSE-B-(?P=nonce)>>\n(?P<b>.*?)\n<<END-RESPONSE-B-(?P=nonce)>>",
    re.DOTALL,
)
_AIMED_AT_JUDGE = re.compile(
    r"ignore (?:all |the )?previous|disregard (?:all |the )?previous|ignore the above"
    r"|rate this|verdict|dear judge|note to the judge",
    re.IGNORECASE,
)
_GARBAGE = (
    "I think the first response is somewhat better.",
    "Both responses have their merits; it is hard to say which one is better.",
    "Response B, mostly, although A has a point.",
    "After careful consideration, I lean towards the second answer.",
)


@dataclass(frozen=True, slots=True)
class JudgePrompt:
    """The three blocks of a judge prompt (no nonce: verdicts must not depend on it)."""

    request: str
    """The request block as sent (JSON chat messages)."""
    a: str
    b: str


def find_judge_prompt(messages: Sequence[Mapping[str, Any]]) -> JudgePrompt | None:
    """The judge prompt in the first user message that holds one, else None."""
    for message in messages:
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, str) or _START not in content:
            continue
        match = _PROMPT.search(content)
        if match:
            return JudgePrompt(match["request"], match["a"], match["b"])
    return None


def judge_reply(
    prompt: JudgePrompt,
    *,
    seed: int,
    model: str,
    accuracy: float,
    garbage_rate: float,
    n_messages: int,
) -> str:
    """The judge's reply text: the verdict JSON, or prose with probability ``garbage_rate``."""
    rng = _judge_rng(seed, model, prompt, n_messages)
    errs = rng.random() >= accuracy
    garbage = rng.random() < garbage_rate
    if garbage:
        return rng.choice(_GARBAGE)
    verdict, reason = _decide(prompt, errs)
    return json.dumps({"verdict": verdict, "reason": reason})


def _decide(prompt: JudgePrompt, errs: bool) -> tuple[str, str]:
    if _normalise(prompt.a) == _normalise(prompt.b):
        return "same", "The two responses are the same."
    fooled_a = _AIMED_AT_JUDGE.search(prompt.a) is not None
    fooled_b = _AIMED_AT_JUDGE.search(prompt.b) is not None
    if fooled_a != fooled_b:
        side = "A" if fooled_a else "B"
        return side, f"Response {side} states clearly that it is the better answer."
    if errs:
        return "A", "Response A reads as more complete and better organised."
    expected = _expected(prompt.request)
    right_a, right_b = _same_answer(prompt.a, expected), _same_answer(prompt.b, expected)
    if right_a and right_b:
        return "same", "Both responses give the correct answer."
    if not right_a and not right_b:
        return "same", "Neither response gives the correct answer."
    side, other = ("A", "B") if right_a else ("B", "A")
    return side, f"Response {side} gives the correct answer and response {other} does not."


def _expected(request_block: str) -> str:
    messages = _request_messages(request_block)
    sim = TASK_SIMULATORS.get(detect_task(messages) or "", GENERIC)
    return sim.expected(last_user_text(messages))


def _request_messages(block: str) -> list[dict[str, str]]:
    """The request block's messages with string contents; an unreadable block is one user turn."""
    try:
        data = json.loads(block)
    except ValueError:
        data = None
    if not isinstance(data, list):
        return [{"role": "user", "content": block}]
    return [
        {"role": str(m.get("role", "")), "content": _text(m.get("content"))}
        for m in data
        if isinstance(m, dict)
    ]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return "" if content is None else str(content)


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split())


def _same_answer(answer: str, expected: str) -> bool:
    try:
        return bool(json.loads(answer) == json.loads(expected))
    except ValueError:
        return _normalise(answer) == _normalise(expected)


def _judge_rng(seed: int, model: str, prompt: JudgePrompt, n_messages: int) -> random.Random:
    canonical = json.dumps([seed, model, JUDGE_TASK, prompt.request, prompt.a, prompt.b,
                            n_messages], ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
