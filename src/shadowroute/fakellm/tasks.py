"""Task simulators: realistic requests for the demo, and right or wrong answers for the server.

A request names its task type with a marker at the start of its system prompt, e.g.
``[task:classify_intent] You are ...``. Every simulator derives the ground truth from the
request's own text (keyword rules or the fixed phrasing of its templates), so the server needs no
hidden state: :func:`simulate` draws from an rng seeded by (seed, model, messages) whether the
model answers correctly, then asks the simulator for the right answer or a plausible wrong one.
Requests without a known marker get the generic simulator (a paragraph about the last user
message).

Repeats: the server counts how often it has answered each identical (model, messages) request
and passes the count to :func:`simulate` as ``repeat``. The first answer (``repeat=0``) is always
the pure function above. A repeat keeps that answer with probability ``consistency`` (drawn from
(seed, model, messages, repeat)); otherwise it is drawn afresh from an rng that includes
``repeat`` -- still correct with probability ``accuracy``, so it may coincide with the first
answer (always, when both draws are correct). This is the noise floor a replay of the primary
measures.

Tool calling: :data:`TOOL_SIMULATORS` holds the task types whose answers are turns of an agent
(``lookup_order``, see :mod:`shadowroute.fakellm._lookup`): :func:`simulate` gives them the
declared tool names and returns ``tool_calls``. They are not in :data:`TASK_SIMULATORS` (nor in
the default mix of :func:`sample_requests`); name them to get their requests.

Structured outputs: ``json_mode`` (with an optional ``json_schema``) makes the answer JSON that
fits the schema (see :mod:`shadowroute.fakellm._schema`); a wrong answer is then one that still
parses and fits, only with wrong values.

Judge prompts (see :mod:`shadowroute.fakellm._judge`) never reach :func:`simulate`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import _vocab as V
from ._base import TaskSimulator, pick_other, task_marker
from ._lookup import LOOKUP_TOOLS, PREAMBLE, LookupOrder, ToolCall, tool_result
from ._order import EXTRACT_ORDER_SCHEMA, ExtractOrder
from ._schema import fit_schema
from ._ticket import SummarizeTicket

__all__ = [
    "EXTRACT_ORDER_SCHEMA",
    "GENERIC",
    "LOOKUP_TOOLS",
    "TASK_SIMULATORS",
    "TOOL_SIMULATORS",
    "ClassifyIntent",
    "DemoRequest",
    "ExtractOrder",
    "Generic",
    "LookupOrder",
    "Sentiment",
    "SimulatedAnswer",
    "SummarizeTicket",
    "TaskSimulator",
    "ToolCall",
    "count_tokens",
    "detect_task",
    "ground_truth",
    "last_user_text",
    "make_request",
    "request_rng",
    "sample_requests",
    "simulate",
    "task_marker",
    "task_name",
    "tool_result",
]

_MARKER = re.compile(r"^\s*\[task:([A-Za-z0-9_.\-]+)\]")


def count_tokens(text: str) -> int:
    """Deterministic token estimate: ``ceil(chars / 4)``, at least 1 for non-empty text."""
    return math.ceil(len(text) / 4)


def request_rng(
    seed: int, model: str, messages: Sequence[Mapping[str, Any]], *salt: str | int
) -> random.Random:
    """An rng that is a pure function of (seed, model, canonical JSON of messages[, salt...])."""
    canonical = json.dumps(
        [seed, model, list(messages), *salt], sort_keys=True, separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def detect_task(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The task named by the first system message's marker, if any."""
    for message in messages:
        if message.get("role") in ("system", "developer"):
            match = _MARKER.match(str(message.get("content") or ""))
            return match.group(1) if match else None
    return None


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


class ClassifyIntent(TaskSimulator):
    name = "classify_intent"
    instructions = (
        "Classify the customer's message into exactly one intent: refund, cancel, shipping, "
        "billing, technical or other. Answer with the label only."
    )
    max_tokens = 8
    labels = ("refund", "cancel", "shipping", "billing", "technical", "other")
    # Checked in this order; the first label whose pattern matches wins.
    _rules = tuple((label, re.compile(V.INTENT_PATTERNS[label], re.I)) for label in labels[:-1])
    _confusions = {
        "refund": ("cancel", "billing"), "cancel": ("refund", "billing"),
        "shipping": ("other", "refund"), "billing": ("refund", "technical"),
        "technical": ("other", "billing"), "other": ("shipping", "technical"),
    }

    def generate(self, rng: random.Random) -> tuple[str, str]:
        label = rng.choice(self.labels)
        template = rng.choice(V.INTENT_TEMPLATES[label])
        return V.fill(template, rng), label

    def expected(self, text: str) -> str:
        for label, pattern in self._rules:
            if pattern.search(text):
                return label
        return "other"

    def wrong(self, text: str, rng: random.Random) -> str:
        return pick_other(rng, self.labels, self.expected(text), self._confusions)


class Sentiment(TaskSimulator):
    name = "sentiment"
    instructions = (
        "Read the product review and answer with its sentiment: positive, negative or neutral. "
        "Answer with the label only."
    )
    max_tokens = 4
    labels = ("positive", "negative", "neutral")
    _lexicon = {label: re.compile(V.SENTIMENT_PATTERNS[label], re.I) for label in labels}
    _confusions = {"positive": ("neutral",), "negative": ("neutral",),
                   "neutral": ("positive", "negative")}

    def generate(self, rng: random.Random) -> tuple[str, str]:
        label = rng.choice(self.labels)
        parts = [V.fill(rng.choice(V.REVIEW_OPENERS), rng)]
        parts += rng.sample(V.REVIEW_SENTENCES[label], 2)
        if rng.random() < 0.5:
            parts.append(V.fill(rng.choice(V.REVIEW_FILLERS), rng))
        return " ".join(parts), label

    def expected(self, text: str) -> str:
        counts = {label: len(p.findall(text)) for label, p in self._lexicon.items()}
        if counts["positive"] > max(counts["negative"], counts["neutral"]):
            return "positive"
        if counts["negative"] > max(counts["positive"], counts["neutral"]):
            return "negative"
        return "neutral"

    def wrong(self, text: str, rng: random.Random) -> str:
        return pick_other(rng, self.labels, self.expected(text), self._confusions)


class Generic(TaskSimulator):
    """Fallback for requests without a known task marker: a paragraph about the last message."""

    name = "generic"
    instructions = "You are a helpful assistant."

    @staticmethod
    def _keywords(text: str) -> list[str]:
        """Up to three topic words: proper nouns first, then longer words first."""
        words: list[tuple[bool, int, int, str]] = []
        seen: set[str] = set()
        for i, match in enumerate(re.finditer(r"[A-Za-z][A-Za-z'\-]{3,}", text)):
            word = match.group(0)
            low = word.lower()
            if low in V.STOPWORDS or low in seen:
                continue
            seen.add(low)
            proper = word[0].isupper() and i > 0
            words.append((not proper, -len(word), i, word if proper else low))
        return [w for *_, w in sorted(words)[:3]] or ["your question"]

    def generate(self, rng: random.Random) -> tuple[str, str]:
        text = V.fill(rng.choice(V.GENERIC_QUESTIONS), rng)
        return text, self.expected(text)

    def expected(self, text: str) -> str:
        keys = self._keywords(text)
        topic = ", ".join(keys[:-1]) + (" and " if len(keys) > 1 else "") + keys[-1]
        return (
            f"Good question about {topic}. A sensible approach is to start with the basics of "
            f"{keys[0]} and check what matters most to you. "
            f"If {keys[-1]} is the main concern, compare two or three options side by side "
            f"before you decide, and keep notes so the choice is easy to revisit later."
        )

    def wrong(self, text: str, rng: random.Random) -> str:
        return rng.choice(V.GENERIC_WRONG)


TASK_SIMULATORS: dict[str, TaskSimulator] = {
    sim.name: sim
    for sim in (ClassifyIntent(), ExtractOrder(), SummarizeTicket(), Sentiment())
}
"""The text task types the fake server recognises, by name."""

TOOL_SIMULATORS: dict[str, LookupOrder] = {sim.name: sim for sim in (LookupOrder(),)}
"""The tool-calling task types, by name (their answers are tool calls or text)."""

GENERIC = Generic()


def task_name(messages: Sequence[Mapping[str, Any]]) -> str:
    """The simulated task type of a request: a known marker's task, else ``"generic"``."""
    task = detect_task(messages) or ""
    return task if task in TASK_SIMULATORS or task in TOOL_SIMULATORS else GENERIC.name


@dataclass(frozen=True, slots=True)
class SimulatedAnswer:
    task: str
    """The detected task type, or ``"generic"``."""
    text: str
    correct: bool
    tool_calls: tuple[ToolCall, ...] = ()
    """The calls the model makes (tool-calling tasks only); ``text`` may precede them."""


def simulate(
    messages: Sequence[Mapping[str, Any]],
    *,
    seed: int,
    model: str,
    accuracy: float,
    repeat: int = 0,
    consistency: float = 1.0,
    tools: Sequence[str] | None = None,
    tool_choice: str = "auto",
    parallel_tool_calls: bool = True,
    preamble: float = 0.0,
    json_mode: bool = False,
    json_schema: Mapping[str, Any] | None = None,
) -> SimulatedAnswer:
    """The answer of ``model`` (correct with probability ``accuracy``) -- a pure function.

    ``messages`` are OpenAI-style with string contents; ``accuracy`` is the model's accuracy
    for the detected task (see :meth:`FakeModel.accuracy_for` and :func:`detect_task`).
    ``repeat`` is how many times this exact request was answered before; a repeat keeps the
    first answer with probability ``consistency`` and is otherwise drawn afresh (see the module
    docstring). ``tools`` (declared function names), ``tool_choice`` and
    ``parallel_tool_calls`` matter to tool-calling tasks; a turn with tool calls starts with a
    short text with probability ``preamble``. ``json_mode`` / ``json_schema``: structured output.
    """
    rng = request_rng(seed, model, messages)
    if (repeat > 0 and consistency < 1.0
            and request_rng(seed, model, messages, "repeat", repeat).random() >= consistency):
        rng = request_rng(seed, model, messages, "redraw", repeat)
    task = detect_task(messages) or ""
    correct = rng.random() < accuracy
    calls: tuple[ToolCall, ...] = ()
    if task in TOOL_SIMULATORS:
        turn = TOOL_SIMULATORS[task].turn(messages, rng, correct=correct, tools=tools,
                                          tool_choice=tool_choice, parallel=parallel_tool_calls)
        text, calls = turn.text, turn.calls
        if calls and request_rng(seed, model, messages, "preamble").random() < preamble:
            text = PREAMBLE
    else:
        sim = TASK_SIMULATORS.get(task, GENERIC)
        task = sim.name
        text = sim.answer(last_user_text(messages), rng, correct=correct, structured=json_mode)
    if json_mode and not calls:
        text = fit_schema(text, json_schema)
    return SimulatedAnswer(task=task, text=text, correct=correct, tool_calls=calls)


@dataclass(frozen=True, slots=True)
class DemoRequest:
    task: str
    request: dict[str, Any]
    """OpenAI chat request body without ``model``."""
    expected: str
    """The ground truth (what a correct model answers)."""


def _simulator(task: str) -> TaskSimulator | LookupOrder | None:
    return TASK_SIMULATORS.get(task) or TOOL_SIMULATORS.get(task)


def ground_truth(request: Mapping[str, Any]) -> str | None:
    """The correct answer for a request built by :func:`make_request` (None if no task marker).

    For a tool-calling task: the JSON list of the calls, ``[{"name", "arguments"}, ...]``.
    """
    messages = request.get("messages") or []
    sim = _simulator(detect_task(messages) or "")
    return sim.expected(last_user_text(messages)) if sim else None


def make_request(task: str, rng: random.Random) -> dict[str, Any]:
    """One realistic OpenAI chat request body (no ``model``) for ``task``."""
    sim = _simulator(task)
    if sim is None:
        known = sorted([*TASK_SIMULATORS, *TOOL_SIMULATORS])
        raise ValueError(f"unknown task {task!r}; known: {known}")
    return sim.make_request(rng)


def sample_requests(
    n: int,
    *,
    seed: int = 0,
    tasks: Sequence[str] | Mapping[str, float] | None = None,
) -> list[DemoRequest]:
    """``n`` demo requests, deterministic per seed.

    ``tasks`` restricts the task types; a mapping gives relative weights, e.g.
    ``{"classify_intent": 5, "extract_order": 2}``. Default: the text simulators
    (:data:`TASK_SIMULATORS`), equal weights; tool-calling tasks only when named.
    """
    rng = random.Random(seed)
    if tasks is None:
        names, weights = list(TASK_SIMULATORS), None
    elif isinstance(tasks, Mapping):
        names, weights = list(tasks), [float(w) for w in tasks.values()]
    else:
        names, weights = list(tasks), None
    sims = {name: _simulator(name) for name in names}
    for name, sim in sims.items():
        if sim is None:
            known = sorted([*TASK_SIMULATORS, *TOOL_SIMULATORS])
            raise ValueError(f"unknown task {name!r}; known: {known}")
    out: list[DemoRequest] = []
    for _ in range(n):
        name = rng.choices(names, weights=weights)[0]
        request = sims[name].make_request(rng)  # type: ignore[union-attr]
        out.append(DemoRequest(name, request, ground_truth(request) or ""))
    return out
