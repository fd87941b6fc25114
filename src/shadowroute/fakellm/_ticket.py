"""The ``summarize_ticket`` simulator: a support ticket -> a one or two sentence summary.

A good summary keeps the key facts (who, which product, what is wrong, since when, what was
tried, what they want, the order number); a bad one is just as fluent but drops or alters some.
"""

from __future__ import annotations

import random
import re

from ._base import TaskSimulator
from ._vocab import NAMES

__all__ = ["SummarizeTicket"]

_PRODUCTS = ("router", "laptop", "washing machine", "coffee maker", "smart thermostat",
             "e-reader", "robot vacuum")
_PROBLEMS = ("keeps restarting", "will not turn on", "makes a loud grinding noise",
             "loses its connection every few minutes", "stopped charging",
             "shows a blinking red light")
_WHENS = ("Monday", "last week", "the last firmware update", "we moved house", "the power cut")
_TRIED = ("restarting it", "a factory reset", "a different power cable",
          "the steps in your troubleshooting guide", "updating the firmware")
_WANTS = ("a replacement", "a full refund", "a technician visit",
          "a callback from a supervisor", "a loaner unit while it is repaired")
_FILLERS = ("", "I have been a customer for years.", "This is really frustrating.",
            "I use it every day for work.", "My neighbour has the same model and has no issues.")
_TEMPLATES = (
    "Hello, this is {name}. My {product} {problem} since {when}. I already tried {tried}, but "
    "it did not help. {filler} I would like {want}. Order number: #{order}.",
    "Hi support team. {filler} {name} here: the {product} I bought from you {problem} since "
    "{when}. I have tried {tried} with no luck. Please arrange {want}. My order is #{order}.",
    "{name} writing. Since {when}, my {product} {problem}. {filler} Tried {tried} already, "
    "nothing changed. What I want is {want} (order #{order}).",
)
_FIELDS = ("name", "product", "problem", "when", "tried", "want", "order")


def _first_of(pool: tuple[str, ...], text: str) -> str | None:
    hits = [(text.find(item), item) for item in pool if re.search(rf"\b{re.escape(item)}\b", text)]
    return min(hits)[1] if hits else None


def _parse(text: str) -> dict[str, str | None]:
    def grab(pattern: str) -> str | None:
        match = re.search(pattern, text)
        return match.group(1).strip() if match else None

    return {
        "name": _first_of(NAMES, text),
        "product": _first_of(_PRODUCTS, text),
        "problem": _first_of(_PROBLEMS, text),
        "when": grab(r"[Ss]ince ([^.,]+)"),
        "tried": grab(r"[Tt]ried (.+?)(?:,| with | already|\.)"),
        "want": grab(r"(?:would like|arrange|want is) (.+?)(?: \(|\.)"),
        "order": grab(r"#(\d{3,})"),
    }


def _summary(f: dict[str, str | None]) -> str:
    text = f"{f['name']}'s {f['product']} {f['problem']} since {f['when']}"
    text += f", and {f['tried']} did not help." if f.get("tried") else "."
    text += f" They want {f['want']}"
    text += f" (order #{f['order']})." if f.get("order") else "."
    return text


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


class SummarizeTicket(TaskSimulator):
    name = "summarize_ticket"
    instructions = (
        "Summarize the support ticket in one or two sentences. Keep the key facts: who, which "
        "product, the problem, since when, what was tried, what they want, the order number."
    )
    max_tokens = 120

    def generate(self, rng: random.Random) -> tuple[str, str]:
        facts = {
            "name": rng.choice(NAMES),
            "product": rng.choice(_PRODUCTS),
            "problem": rng.choice(_PROBLEMS),
            "when": rng.choice(_WHENS),
            "tried": rng.choice(_TRIED),
            "want": rng.choice(_WANTS),
            "order": str(rng.randint(10000, 99999)),
        }
        text = rng.choice(_TEMPLATES).format(filler=rng.choice(_FILLERS), **facts)
        return re.sub(r"\s+", " ", text).strip(), _summary(facts)

    def expected(self, text: str) -> str:
        facts = _parse(text)
        if all(facts[key] for key in ("name", "product", "problem", "when", "want")):
            return _summary(facts)
        sentences = _sentences(text)
        if not sentences:
            return "The ticket is empty."
        summary = sentences[0] if len(sentences) == 1 else f"{sentences[0]} {sentences[-1]}"
        return summary[:240]

    def wrong(self, text: str, rng: random.Random) -> str:
        facts = _parse(text)
        if not all(facts[key] for key in ("name", "product", "problem", "when", "want")):
            return "The customer contacted support about a problem and would like a follow-up."
        pools = {"product": _PRODUCTS, "problem": _PROBLEMS, "when": _WHENS, "want": _WANTS}
        for op in rng.sample(["product", "problem", "when", "want", "drop"], rng.choice((1, 2))):
            if op == "drop":
                for key in rng.sample(["tried", "order"], rng.choice((1, 2))):
                    facts[key] = None
            else:
                facts[op] = rng.choice([v for v in pools[op] if v != facts[op]])
        return _summary(facts)
