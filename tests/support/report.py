"""Crafted exchanges for report tests, and lookups into a built Report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shadowroute.records import CandidateOutputRecord, ExchangeRecord, utcnow
from shadowroute.report import Report

HOSTILE_REQUEST = '<iframe src="https://evil.example/"></iframe> which queue?'
HOSTILE_PRIMARY = "the answer is <b>refund</b>"
HOSTILE_OUTPUT = "the answer is <script>alert(1)</script> <img src=x onerror=alert(1)>"


@dataclass
class Out:
    """One candidate's answer to an :func:`xchg`."""

    model: str
    text: str | None
    """``None``: the call failed (error_kind ``timeout``)."""
    cost: float | None = None
    latency: float | None = None


def xchg(task: str, primary: str | None, *outs: Out, cost: float | None = None,
         latency: float | None = None, age_days: float = 0, content: str | None = None,
         primary_model: str = "big") -> ExchangeRecord:
    """An exchange of ``task`` ``age_days`` old: the primary's answer and the candidates' ``outs``."""
    x = ExchangeRecord(
        task_type=task,
        primary_model=primary_model,
        request={"model": primary_model,
                 "messages": [{"role": "user", "content": content or f"question for {task}"}]},
        primary_output=primary,
        latency_ms=latency,
        cost_usd=cost,
        created_at=utcnow() - timedelta(days=age_days),
    )
    for o in outs:
        x.outputs.append(CandidateOutputRecord(
            x.id, o.model, output=o.text, latency_ms=o.latency, cost_usd=o.cost,
            error_kind="timeout" if o.text is None else None,
            error="boom" if o.text is None else None,
        ))
    return x


def candidate_of(report: Report, task: str, model: str) -> Any:
    """The report's row for ``model`` on ``task`` (exactly one)."""
    (t,) = [t for t in report.tasks if t.task == task]
    (c,) = [c for c in t.candidates if c.model == model]
    return c


def task_of(report: Report, task: str) -> Any:
    """The report's section of ``task`` (exactly one)."""
    (t,) = [t for t in report.tasks if t.task == task]
    return t
