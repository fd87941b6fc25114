"""Calling a primary model again from the workers: the reverse shadow and the noise-floor replay.

What it promises:

* :meth:`PrimaryCalls.reverse`: when a promoted model served a call in place of its primary,
  the replaced primary is asked the same request and the pair is stored the usual way round
  (the primary's answer as the reference, the promoted model's answer as the candidate output;
  ``records.ROUTE_REVERSE``), plus a noise-floor replay when the exchange is in the slice.
  Without the reference there is nothing to compare: the exchange is counted in
  ``Stats.reverse_failed`` and not stored.
* :meth:`PrimaryCalls.replay_model`: which model to call once more for the noise floor, drawn
  independently of sampling from the task's replay share: the latest report's (``shares``,
  raised up to ``[decision] evaluation_replay_rate`` while the noise floor keeps a decision
  open), never below the task's ``noise_floor_rate``, and 0 when that is 0; ``None`` when the
  exchange is not in the slice or the primary cannot be called (``replay_unavailable``).
* A primary that cannot be called (not under ``[models]``) is warned about once per model.
"""

from __future__ import annotations

import logging
from collections.abc import Container
from typing import TYPE_CHECKING

from .. import telemetry
from ..capture.calls import is_sampled, request_key
from ..config import Config, TaskConfig
from ..mirror.policy import Mirror
from ..records import NOISE_FLOOR_MODEL, ROUTE_REVERSE, CandidateOutputRecord, ExchangeRecord
from ..stats import Stats

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext

__all__ = ["PrimaryCalls"]

log = logging.getLogger("shadowroute")


class PrimaryCalls:
    """The calls to a primary model a worker makes, through the same :class:`Mirror`."""

    def __init__(
        self, config: Config, mirror: Mirror, callable_models: Container[str], stats: Stats
    ) -> None:
        """``callable_models``: the model names the mirror has a provider for."""
        self.config = config
        self.mirror = mirror
        self.stats = stats
        self._callable = callable_models
        self._warned: set[str] = set()
        self.shares: dict[str, float] = {}
        """Task type -> replay share from the latest report (see :meth:`replay_share`)."""

    def replay_share(self, task: TaskConfig) -> float:
        """The share of this task type's sampled exchanges replayed on the primary now."""
        base = task.noise_floor_rate
        if not base:
            return 0.0
        raised = min(self.shares.get(task.name, base), self.config.decision.evaluation_replay_rate)
        return max(base, raised)

    async def reverse(
        self,
        task: TaskConfig,
        primary: str,
        served: ExchangeRecord,
        *,
        origin: SpanContext | None = None,
    ) -> ExchangeRecord | None:
        """Ask the replaced ``primary`` (a ``[models]`` key) the request ``served`` answered;
        the exchange to store, or ``None`` (counted in ``reverse_failed``). ``origin``: the
        span context of the production call, linked from the calls' spans."""
        model = self.config.models.get(primary)
        if model is None or primary not in self._callable:
            self.stats.reverse_failed += 1
            if primary not in self._warned:
                self._warned.add(primary)
                log.warning("shadowroute: no reverse shadow to %r: declare it under [models]",
                            primary)
            return None
        promoted = self.config.model_named(served.primary_model)
        request = {**served.request, "model": model.model}
        record = ExchangeRecord(
            task_type=served.task_type, primary_model=model.model, request=request,
            primary_output=None, metadata=served.metadata, created_at=served.created_at,
            route=ROUTE_REVERSE, source=served.source,
        )
        record.outputs.append(CandidateOutputRecord(
            exchange_id=record.id, model=promoted.name if promoted else served.primary_model,
            output=served.primary_output, input_tokens=served.input_tokens,
            output_tokens=served.output_tokens, latency_ms=served.latency_ms,
            cost_usd=served.cost_usd, created_at=served.created_at,
        ))
        reference = await self.mirror.call(task, primary, request, record.id,
                                           role=telemetry.ROLE_REVERSE, origin=origin)
        if reference is None or reference.error_kind is not None:
            self.stats.reverse_failed += 1
            return None
        record.primary_output = reference.output
        record.input_tokens, record.output_tokens = reference.input_tokens, reference.output_tokens
        record.latency_ms, record.cost_usd = reference.latency_ms, reference.cost_usd
        replay = self.replay_model(task, record)
        if replay is not None:
            self.stats.primary_replays += 1
            again = await self.mirror.call(task, replay, request, record.id,
                                           label=NOISE_FLOOR_MODEL, origin=origin)
            if again is not None:
                record.outputs.append(again)
        self.stats.reverse_shadows += 1
        return record

    def replay_model(self, task: TaskConfig, record: ExchangeRecord) -> str | None:
        """The primary's model to call again for the noise floor, when this exchange is in the
        task's :meth:`replay_share` slice (drawn independently of the sampling decision)."""
        key = lambda: b"replay\x00" + request_key(record.request)  # noqa: E731
        if not task.candidates or not is_sampled(self.replay_share(task), self.config.seed, key):
            return None
        model = self.config.model_named(record.primary_model)
        if model is None or model.name not in self._callable:
            self.stats.replay_unavailable += 1
            if record.primary_model not in self._warned:
                self._warned.add(record.primary_model)
                log.warning(
                    "shadowroute: no noise floor for primary %r: declare it under [models] so it "
                    "can be called again (or set noise_floor_rate = 0)",
                    record.primary_model,
                )
            return None
        return model.name
