"""The base class every task simulator derives from (see :mod:`shadowroute.fakellm.tasks`)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["TaskSimulator", "pick_other", "task_marker"]


def task_marker(task: str) -> str:
    """The marker a system prompt starts with to declare its task type."""
    return f"[task:{task}]"


class TaskSimulator:
    """One task type: generates requests, knows the right answer, invents plausible wrong ones."""

    name: str = ""
    instructions: str = ""
    max_tokens: int = 256

    @property
    def system_prompt(self) -> str:
        return f"{task_marker(self.name)} {self.instructions}"

    def generate(self, rng: random.Random) -> tuple[str, str]:
        """A user message and its ground truth (which :meth:`expected` recovers from the text)."""
        raise NotImplementedError

    def expected(self, text: str) -> str:
        """The correct answer for a user message."""
        raise NotImplementedError

    def wrong(self, text: str, rng: random.Random) -> str:
        """A plausible answer that differs from :meth:`expected`."""
        raise NotImplementedError

    def wrong_structured(self, text: str, rng: random.Random) -> str:
        """A wrong answer under structured output (parses and fits the task's schema)."""
        return self.wrong(text, rng)

    def answer(self, text: str, rng: random.Random, *, correct: bool,
               structured: bool = False) -> str:
        if correct:
            return self.expected(text)
        wrong = self.wrong_structured(text, rng) if structured else self.wrong(text, rng)
        if wrong == self.expected(text):  # defensive: a wrong answer must differ
            wrong = wrong + " (unsure)"
        return wrong

    def make_request(self, rng: random.Random) -> dict[str, Any]:
        """An OpenAI chat request body without ``model``."""
        text, _ = self.generate(rng)
        return {
            "messages": [
                {"role": "system", "content": self.system_prompt},
                {"role": "user", "content": text},
            ],
            "max_tokens": self.max_tokens,
            "temperature": 0,
        }


def pick_other(rng: random.Random, labels: Sequence[str], truth: str,
                confusions: Mapping[str, Sequence[str]]) -> str:
    likely = [label for label in confusions.get(truth, ()) if label != truth]
    if likely and rng.random() < 0.7:
        return rng.choice(likely)
    return rng.choice([label for label in labels if label != truth])


