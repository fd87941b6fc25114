"""Settings of the fake LLM server: one :class:`FakeModel` per simulated model.

Both classes are frozen pydantic models, so a roster can be shared safely (the server copies it
and applies runtime updates to its own copy) and a JSON body from ``POST /_fake/models/{name}``
is validated the same way as Python code.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_SETTINGS",
    "ABSTAIN_TEXT",
    "REFUSAL_TEXT",
    "FakeLLMSettings",
    "FakeModel",
    "default_settings",
]

REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
"""What a model answers when it refuses (``FakeModel.refusal_rate``)."""
ABSTAIN_TEXT = "I don't know."
"""What a model answers instead of a wrong answer it knows it is unsure of
(``FakeModel.abstain``)."""


class FakeModel(BaseModel):
    """One simulated model: quality per task type, latency, price and fault knobs.

    The pseudo task ``"judge"`` (a judge prompt, see :mod:`shadowroute.fakellm._judge`) takes its
    accuracy from ``task_accuracy["judge"]`` like any other task.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    accuracy: float = Field(0.9, ge=0.0, le=1.0)
    """Probability of a correct answer for task types not in ``task_accuracy``."""
    task_accuracy: dict[str, float] = Field(default_factory=dict)
    """Per task type override, e.g. ``{"extract_order": 0.75}``."""
    latency_ms: float = Field(0.0, ge=0.0)
    """Mean response latency (time to first byte of content)."""
    latency_jitter_ms: float = Field(0.0, ge=0.0)
    """Latency is drawn uniformly from ``latency_ms +/- latency_jitter_ms`` (clipped at 0)."""
    input_price: float = Field(0.0, ge=0.0)
    """USD per 1M input tokens (informational: ``GET /v1/models`` and the demo config)."""
    output_price: float = Field(0.0, ge=0.0)
    """USD per 1M output tokens."""
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    """Fraction of calls answered with ``error_status`` (decided per call, so retries can pass)."""
    error_status: int = Field(500, ge=400, le=599)
    retry_after: float | None = Field(None, ge=0.0)
    """Seconds; sent as ``Retry-After`` (and ``retry-after-ms``) on 429/503/529 errors."""
    hang: bool = False
    """Never answer: the request sleeps until the client goes away (other requests unaffected)."""
    garbage: bool = False
    """Answer 200 with a body that is not valid JSON (or, when streaming, a broken SSE event)."""
    consistency: float = Field(1.0, ge=0.0, le=1.0)
    """Probability that a repeated identical request (same model, same messages) is answered
    exactly as the first time. Otherwise the answer is drawn afresh (still correct with the
    model's accuracy, so it may coincide): the noise floor that replaying the primary measures.
    The first answer never depends on it; judge prompts ignore it."""
    refusal_rate: float = Field(0.0, ge=0.0, le=1.0)
    """Probability that the model refuses instead of answering (:data:`REFUSAL_TEXT`, finish
    reason ``stop``), drawn per request (seed, model, messages): the same request is refused
    every time, by this model only. A refusal is what a cascade's ``refusal`` check catches;
    ``max_tokens`` below the answer's length gives the ``truncated`` check's cut answers, and
    ``extract_order``'s wrong answers the ``schema`` check's invalid JSON. Judge prompts and
    tool-calling turns are never refused."""
    abstain: dict[str, float] = Field(default_factory=dict)
    """Per task type: the probability that an answer that would be wrong is replaced by
    :data:`ABSTAIN_TEXT` (a model that knows when it does not know). Its mistakes then read as
    abstentions, which a cascade's ``refusal`` check escalates; its right answers are as
    before. Tool-calling turns never abstain."""
    verdict_garbage_rate: float = Field(0.0, ge=0.0, le=1.0)
    """When judging: probability that the reply is unreadable prose instead of the verdict JSON
    (drawn per judge conversation length, so a retry with more messages draws again)."""
    reasoning: bool = False
    """A reasoning model: asked to reason (OpenAI ``reasoning_effort`` / ``reasoning.effort``,
    Anthropic ``thinking``) it spends reasoning tokens, or shows a thinking block, before the
    same answer (see ``fakellm/_thinking.py``). Other models accept those settings and ignore
    them. Never without being asked, so plain requests cost the same either way."""
    tool_preamble: float = Field(0.25, ge=0.0, le=1.0)
    """Probability that a turn with tool calls starts with a short text ("Let me look that
    up.") -- drawn per request; Claude models do it most of the time."""
    owned_by: str = "fakellm"

    @field_validator("task_accuracy")
    @classmethod
    def _check_task_accuracy(cls, value: dict[str, float]) -> dict[str, float]:
        for task, acc in value.items():
            if not 0.0 <= acc <= 1.0:
                raise ValueError(f"accuracy for task {task!r} must be within [0, 1], got {acc}")
        return value

    def accuracy_for(self, task: str) -> float:
        """The probability that this model answers a request of ``task`` correctly."""
        return self.task_accuracy.get(task, self.accuracy)

    def with_changes(self, **changes: Any) -> FakeModel:
        """A validated copy with ``changes`` applied (``name`` cannot change)."""
        data = self.model_dump()
        data.update(changes)
        data["name"] = self.name
        return FakeModel.model_validate(data)


class FakeLLMSettings(BaseModel):
    """The server's whole configuration: seed, roster and global latency scale."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 7
    models: dict[str, FakeModel] = Field(default_factory=dict)
    """Accepts a list of models or a mapping name -> model / dict of fields."""
    latency_scale: float = Field(1.0, ge=0.0)
    """Multiplies every model's latency; 0.0 makes all answers immediate (tests)."""
    hang_seconds: float = Field(3600.0, gt=0.0)
    """Upper bound of a hanging request, in case the client never disconnects."""

    @field_validator("models", mode="before")
    @classmethod
    def _models_by_name(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            out: dict[str, Any] = {}
            for item in value:
                name = item.name if isinstance(item, FakeModel) else item.get("name")
                if name in out:
                    raise ValueError(f"duplicate model name {name!r}")
                out[name] = item
            return out
        if isinstance(value, dict):
            return {
                key: ({"name": key, **item} if isinstance(item, dict) else item)
                for key, item in value.items()
            }
        return value

    @model_validator(mode="after")
    def _keys_match_names(self) -> FakeLLMSettings:
        for key, model in self.models.items():
            if key != model.name:
                raise ValueError(f"model key {key!r} does not match its name {model.name!r}")
        return self

    def replace(self, **changes: Any) -> FakeLLMSettings:
        """A validated copy with ``changes`` applied, e.g. ``settings.replace(latency_scale=0)``."""
        data = self.model_dump()
        data.update(changes)
        return FakeLLMSettings.model_validate(data)

    def with_model(self, model: FakeModel) -> FakeLLMSettings:
        """A copy with ``model`` added or replaced."""
        return FakeLLMSettings(
            seed=self.seed,
            models={**self.models, model.name: model},
            latency_scale=self.latency_scale,
            hang_seconds=self.hang_seconds,
        )


def default_settings(*, seed: int = 7, latency_scale: float = 1.0) -> FakeLLMSettings:
    """A realistic roster: an expensive primary, three cheaper candidates and a judge.

    ``small`` is good enough for ``classify_intent`` and ``sentiment`` but not for
    ``extract_order`` -- exactly the situation shadowroute's report should uncover.
    ``frontier`` is a reasoning model (it reasons only when a request asks it to);
    ``claude-small`` puts a short text before its tool calls most of the time.
    Every model answers a repeated request the same way (``consistency=1.0``), so tests can
    compare answers across calls; lower ``frontier``'s consistency (as the demo does) to give
    replays of the primary a noise floor. ``judge`` is meant for judge prompts (92% accurate on
    them, position-biased when it errs; see :mod:`shadowroute.fakellm._judge`) -- any model
    answers a judge prompt as a judge, though.
    """
    return FakeLLMSettings(
        seed=seed,
        latency_scale=latency_scale,
        models=[
            FakeModel(
                name="frontier",
                accuracy=0.97,
                reasoning=True,
                latency_ms=40,
                latency_jitter_ms=10,
                input_price=2.50,
                output_price=10.00,
                owned_by="fakellm-openai",
            ),
            FakeModel(
                name="small",
                accuracy=0.88,
                task_accuracy={
                    "classify_intent": 0.96,
                    "sentiment": 0.96,
                    "extract_order": 0.75,
                    "summarize_ticket": 0.85,
                    "lookup_order": 0.8,
                },
                latency_ms=15,
                latency_jitter_ms=5,
                input_price=0.15,
                output_price=0.60,
                owned_by="fakellm-openai",
            ),
            FakeModel(
                name="tiny",
                accuracy=0.70,
                task_accuracy={
                    "classify_intent": 0.85,
                    "sentiment": 0.88,
                    "extract_order": 0.55,
                    "summarize_ticket": 0.65,
                    "lookup_order": 0.6,
                },
                latency_ms=8,
                latency_jitter_ms=3,
                input_price=0.05,
                output_price=0.20,
                owned_by="fakellm-openai",
            ),
            FakeModel(
                name="claude-small",
                accuracy=0.92,
                task_accuracy={
                    "classify_intent": 0.97,
                    "sentiment": 0.97,
                    "extract_order": 0.90,
                    "summarize_ticket": 0.91,
                    "lookup_order": 0.93,
                },
                tool_preamble=0.9,
                latency_ms=25,
                latency_jitter_ms=8,
                input_price=0.80,
                output_price=4.00,
                owned_by="fakellm-anthropic",
            ),
            FakeModel(
                name="judge",
                accuracy=0.9,
                task_accuracy={"judge": 0.92},
                latency_ms=30,
                latency_jitter_ms=10,
                input_price=1.00,
                output_price=4.00,
                owned_by="fakellm-openai",
            ),
        ],
    )


DEFAULT_SETTINGS: FakeLLMSettings = default_settings()
"""Seed 7 and the default roster (``frontier``, ``small``, ``tiny``, ``claude-small``,
``judge``)."""
