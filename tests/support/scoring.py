"""A scripted LLM judge, crafted exchanges to score, and readers of the scores written."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy import select

from shadowroute.records import CandidateOutputRecord, Completion, ExchangeRecord, utcnow
from shadowroute.store import Store
from shadowroute.store.models import Score

_BLOCK = re.compile(r"<<(REQUEST|RESPONSE-A|RESPONSE-B)-([0-9a-f]+)>>\n(.*?)\n<<END-\1-\2>>", re.S)


class ScriptedJudge:
    """A judge provider: ``decide(first, second)`` returns the reply text for one call, where
    first/second are the two responses as shown (A, B). Records every call."""

    def __init__(self, decide: Callable[[str, str], str], *, delay: float = 0.0,
                 price: float = 0.001) -> None:
        self.decide = decide
        self.delay = delay
        self.price = price
        self.calls: list[tuple[str, str]] = []

    async def complete(self, request: dict[str, Any]) -> Completion:
        if self.delay:
            await anyio.sleep(self.delay)
        prompt = request["messages"][1]["content"]
        blocks = {m.group(1): m.group(3) for m in _BLOCK.finditer(prompt)}
        first, second = blocks["RESPONSE-A"], blocks["RESPONSE-B"]
        self.calls.append((first, second))
        text = self.decide(first, second) if len(request["messages"]) == 2 else self.retry(first, second)
        return Completion(model="judge", text=text, response={}, input_tokens=100,
                          output_tokens=20, cost_usd=self.price)

    def retry(self, first: str, second: str) -> str:
        return self.decide(first, second)

    async def aclose(self) -> None:
        pass


def verdict(v: str) -> str:
    """The judge's reply naming ``v`` (A, B or same)."""
    return json.dumps({"verdict": v, "reason": "because"})


def prefers(word: str) -> Callable[[str, str], str]:
    """A judge that picks whichever response contains ``word`` (else same)."""

    def decide(first: str, second: str) -> str:
        if word in first and word not in second:
            return verdict("A")
        if word in second and word not in first:
            return verdict("B")
        return verdict("same")

    return decide


def scoring_exchange(task: str, primary: str | None, outputs: dict[str, str | None], *,
                     error: str | None = None, primary_model: str = "big",
                     age_days: int = 0) -> ExchangeRecord:
    """An exchange of ``task`` ``age_days`` old; ``outputs``: model -> answer (``None``: the
    call failed with ``error``)."""
    x = ExchangeRecord(
        task_type=task,
        primary_model=primary_model,
        request={"model": primary_model, "messages": [{"role": "user", "content": f"q {task}"}]},
        primary_output=primary,
        created_at=utcnow() - timedelta(days=age_days),
    )
    for model, text in outputs.items():
        x.outputs.append(CandidateOutputRecord(
            x.id, model, output=text, error_kind=error if text is None else None,
            error="boom" if text is None else None,
        ))
    return x


async def score_rows(store: Store) -> list[Score]:
    """Every score row."""
    async with store.session() as s:
        return list((await s.scalars(select(Score))).all())


async def scores_by_model(store: Store, scorer: str) -> dict[str, list[Score]]:
    """``scorer``'s rows by the model of the output they score."""
    from shadowroute.store.models import CandidateOutput

    async with store.session() as s:
        result = await s.execute(
            select(CandidateOutput.model, Score).join(Score, Score.output_id == CandidateOutput.id)
            .where(Score.scorer == scorer)
        )
        out: dict[str, list[Score]] = {}
        for model, sc in result.all():
            out.setdefault(model, []).append(sc)
        return out
