"""The LLM judge: pairwise, in both orders, on a budget.

For each candidate output the judge is asked twice: once with the primary's answer shown first
and once with the candidate's first. Each verdict is mapped to the candidate's view (better,
same, worse); when the two disagree, the verdict flipped with the order and counts as "same"
(position bias, not a preference). Value: better 1.0, same 0.5, worse 0.0.

Before any call, the candidate's text is screened (:func:`~shadowroute.scoring.prompt.find_injection`):
an output that addresses the judge fails outright and costs nothing. A reply that is not the
strict verdict object gets one retry; a second unreadable reply is stored as "not applicable"
(``passed`` is ``None``) with the reply in the details. Calls go through :class:`Mirror`, so
the judge has the same concurrency limit, retries with backoff and circuit breaker as a
candidate. Every call first reserves its worst-case cost from the run's budget, so a run never
spends more than ``[judge] budget_usd``. Each call is an OpenTelemetry span with role ``judge``
(:mod:`shadowroute.telemetry`), a child of the span current in the scoring run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .. import telemetry
from ..config import Config, TaskConfig
from ..errors import ShadowrouteError
from ..mirror.policy import Completer
from ..mirror.wiring import wire_mirror
from ..stats import Stats
from .plan import JudgeSpec
from .prompt import JudgeVerdict, build_judge_messages, find_injection, parse_verdict, retry_message
from .scorers.base import ScoreResult

__all__ = ["BudgetExhausted", "Judge", "JudgeBudget", "JudgeUnavailable", "VALUES"]

log = logging.getLogger("shadowroute")

VALUES = {"better": 1.0, "same": 0.5, "worse": 0.0}
"""The judge's value for each verdict, from the candidate's point of view."""

_AS_CANDIDATE: dict[bool, dict[JudgeVerdict, str]] = {
    # candidate shown second (as B)
    False: {"A": "worse", "B": "better", "same": "same"},
    # candidate shown first (as A)
    True: {"A": "better", "B": "worse", "same": "same"},
}
_CHARS_PER_TOKEN_ESTIMATE = 3.0
"""Conservative (English text averages ~4 characters per token): the budget reserves more
than a call can cost, never less."""


class JudgeUnavailable(ShadowrouteError):
    """The judge could not be asked (call failed after retries, or its circuit is open). The
    output is left unscored and will be judged by the next run."""


class BudgetExhausted(ShadowrouteError):
    """The run's judge budget cannot cover another call."""


@dataclass
class JudgeBudget:
    """Spend of one scoring run against an optional cap, with reservations for calls in flight."""

    cap_usd: float | None
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    exhausted: bool = False

    def reserve(self, amount: float) -> bool:
        if self.cap_usd is not None and self.spent_usd + self.reserved_usd + amount > self.cap_usd:
            self.exhausted = True
            return False
        self.reserved_usd += amount
        return True

    def settle(self, reserved: float, actual: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - reserved)
        self.spent_usd += actual


@dataclass
class _Reply:
    verdict: JudgeVerdict | None
    reason: str
    text: str | None
    cost_usd: float
    retried: bool


class Judge:
    """Judges candidate outputs against the primary's, with ``config.judge``'s model."""

    def __init__(
        self,
        config: Config,
        *,
        provider: Completer | None = None,
        budget_usd: float | None = None,
    ) -> None:
        if config.judge is None:
            raise ValueError("no [judge] configured")
        self.settings = config.judge
        self.model = config.models[self.settings.model]
        self.stats = Stats()
        self._wiring = wire_mirror(
            config, [self.model.name],
            providers=None if provider is None else {self.model.name: provider},
            concurrency={self.model.name: self.settings.concurrency},
            stats=self.stats,
            on_error=lambda stage, exc: log.warning("judge %s error: %s", stage, exc),
        )
        self._mirror = self._wiring.mirror
        self._task = TaskConfig(name="judge")
        cap = self.settings.budget_usd if budget_usd is None else budget_usd
        self.budget = JudgeBudget(cap)
        self.calls = 0
        self.retries = 0
        self.flips = 0
        self.injections = 0

    async def aclose(self) -> None:
        """Close the judge model's connection pool, unless its provider was given."""
        await self._wiring.aclose()

    def names(self) -> set[str]:
        """Names the judge's model goes by (for the judge-is-the-primary check)."""
        return {self.model.name, self.model.model}

    async def compare(
        self,
        spec: JudgeSpec,
        request_messages: list[dict[str, Any]],
        primary: str,
        candidate: str,
        *,
        task: str | None = None,
    ) -> ScoreResult:
        """Judge ``candidate`` against ``primary`` for the request, in both orders. ``task``
        (the judged exchange's task type) only names the calls' spans (``shadowroute.task``).

        Raises :class:`BudgetExhausted` before a call the budget cannot cover, and
        :class:`JudgeUnavailable` when a call fails; nothing is to be stored then.
        """
        injection = find_injection(candidate)
        if injection is not None:
            self.injections += 1
            return ScoreResult(
                0.0,
                False,
                {"verdict": "worse", "injection": injection, "judged": False},
            )
        orders = (
            build_judge_messages(request_messages, primary, candidate, rubric=spec.rubric),
            build_judge_messages(request_messages, candidate, primary, rubric=spec.rubric),
        )
        # Both orders are paid for up front, so a judgement is never cut in half by the budget.
        estimates = [self._estimate(messages) for messages in orders]
        if not self.budget.reserve(sum(estimates)):
            raise BudgetExhausted(f"judge budget ${self.budget.cap_usd:g} reached")
        try:
            first = await self._ask(orders[0], estimates[0], task)
        except BaseException:
            self.budget.settle(estimates[1], 0.0)
            raise
        if first.verdict is None:
            self.budget.settle(estimates[1], 0.0)
            return self._unreadable(first, first.cost_usd)
        second = await self._ask(orders[1], estimates[1], task)
        cost = first.cost_usd + second.cost_usd
        if second.verdict is None:
            return self._unreadable(second, cost)
        as_b = _AS_CANDIDATE[False][first.verdict]
        as_a = _AS_CANDIDATE[True][second.verdict]
        flipped = as_a != as_b
        self.flips += flipped
        verdict = "same" if flipped else as_a
        value = VALUES[verdict]
        details = {
            "verdict": verdict,
            "flipped": flipped,
            "orders": [
                {"first": "primary", "verdict": as_b, "reason": first.reason[:300]},
                {"first": "candidate", "verdict": as_a, "reason": second.reason[:300]},
            ],
            "retried": first.retried or second.retried,
            "judge": self.model.name,
        }
        return ScoreResult(value, value >= spec.threshold, details, cost)

    def _unreadable(self, reply: _Reply, cost: float) -> ScoreResult:
        text = (reply.text or "")[:300]
        return ScoreResult(
            None,
            None,
            {"error": "unreadable verdict after one retry", "reply": text,
             "judge": self.model.name},
            cost,
        )

    async def _ask(
        self, messages: list[dict[str, str]], reserved: float, task: str | None = None
    ) -> _Reply:
        """One order: a call (already reserved), and one retry if the reply is unreadable."""
        text, cost = await self._call(messages, reserved, task)
        try:
            verdict, reason = parse_verdict(text)
            return _Reply(verdict, reason, text, cost, retried=False)
        except ValueError:
            pass
        self.retries += 1
        messages = [*messages, {"role": "assistant", "content": text or ""}, retry_message()]
        retry_estimate = self._estimate(messages)
        if not self.budget.reserve(retry_estimate):
            raise BudgetExhausted(f"judge budget ${self.budget.cap_usd:g} reached")
        text, more = await self._call(messages, retry_estimate, task)
        cost += more
        try:
            verdict, reason = parse_verdict(text)
        except ValueError:
            return _Reply(None, "", text, cost, retried=True)
        return _Reply(verdict, reason, text, cost, retried=True)

    async def _call(
        self, messages: list[dict[str, str]], reserved: float, task: str | None = None
    ) -> tuple[str | None, float]:
        """One judge call whose worst-case cost ``reserved`` is already held in the budget."""
        actual = 0.0
        try:
            record = await self._mirror.call(
                self._task,
                self.model.name,
                {"messages": messages, "max_tokens": self.settings.max_tokens, "temperature": 0},
                exchange_id="",
                role=telemetry.ROLE_JUDGE,
                span_task=task,
            )
            if record is None:
                raise JudgeUnavailable(f"judge {self.model.name}: circuit open after failures")
            # Unknown usage: count what was reserved for it (an estimate from the prompt).
            actual = record.cost_usd if record.cost_usd is not None else reserved
            if record.error_kind is not None:
                raise JudgeUnavailable(f"judge call failed: {record.error}")
            self.calls += 1
            return record.output, actual
        finally:
            self.budget.settle(reserved, actual)

    def _estimate(self, messages: list[dict[str, str]]) -> float:
        chars = sum(len(m["content"]) for m in messages)
        tokens_in = int(chars / _CHARS_PER_TOKEN_ESTIMATE) + 16 * len(messages)
        return self.model.cost(tokens_in, self.settings.max_tokens)
