"""The fake server's mutable state: its copy of the roster, call statistics, repeat counts and
the stored responses of the Responses API (``previous_response_id``)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from ._responses import Stored
from ._wire import Api
from .models import FakeLLMSettings, FakeModel

__all__ = ["FakeState"]


class FakeState:
    """The server's mutable state: its copy of the roster and the call statistics.

    Thread-safe, so :class:`~shadowroute.fakellm.server.FakeLLMServer` can update models and
    read stats from the test's thread while the server runs in its own.
    """

    REPEAT_MEMORY = 200_000
    """How many distinct (model, messages) keys the repeat counter remembers (least recently
    seen forgotten first; a forgotten request counts as new again)."""

    RESPONSE_MEMORY = 2_000
    """How many Responses API responses are kept for ``previous_response_id`` (oldest
    forgotten first; a forgotten id is answered 404 like an unknown one)."""

    def __init__(self, settings: FakeLLMSettings) -> None:
        self.seed = settings.seed
        self.latency_scale = settings.latency_scale
        self.hang_seconds = settings.hang_seconds
        self._models: dict[str, FakeModel] = dict(settings.models)
        self._lock = threading.Lock()
        self._seq: Counter[str] = Counter()
        self._stats: dict[str, dict[str, Any]] = {}
        self._answered: OrderedDict[bytes, int] = OrderedDict()
        self._responses: OrderedDict[str, Stored] = OrderedDict()
        self.closing = threading.Event()
        """Set by the server when it stops, so hanging requests end instead of being cancelled."""

    def model(self, name: str) -> FakeModel | None:
        with self._lock:
            return self._models.get(name)

    def models(self) -> list[FakeModel]:
        with self._lock:
            return list(self._models.values())

    def settings(self) -> FakeLLMSettings:
        return FakeLLMSettings(seed=self.seed, models=self.models(),
                               latency_scale=self.latency_scale, hang_seconds=self.hang_seconds)

    def update_model(self, name: str, changes: dict[str, Any]) -> FakeModel:
        """Apply ``changes`` to model ``name`` (created with defaults if unknown); validated."""
        with self._lock:
            current = self._models.get(name) or FakeModel(name=name)
            updated = current.with_changes(**changes)
            self._models[name] = updated
            return updated

    def begin_call(self, model: str, api: Api, task: str) -> int:
        """Count a call; returns its sequence number for this model (never reset)."""
        with self._lock:
            self._seq[model] += 1
            entry = self._stats.setdefault(model, _empty_stats())
            entry["calls"] += 1
            entry[api] += 1
            entry["tasks"][task] = entry["tasks"].get(task, 0) + 1
            return self._seq[model]

    def repeat_index(self, model: str, messages: Sequence[Mapping[str, Any]],
                     count: int = 1) -> int:
        """How many times this exact (model, messages) request was answered before; counts it
        ``count`` times (a call with ``n`` choices answers it ``n`` times).

        Not cleared by :meth:`reset_stats`: a repeat stays a repeat.
        """
        canonical = json.dumps([model, list(messages)], sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False)
        key = hashlib.sha256(canonical.encode()).digest()[:16]
        with self._lock:
            seen = self._answered.get(key, 0)
            self._answered[key] = seen + count
            self._answered.move_to_end(key)
            while len(self._answered) > self.REPEAT_MEMORY:
                self._answered.popitem(last=False)
            return seen

    def store_response(self, response_id: str, stored: Stored) -> None:
        with self._lock:
            self._responses[response_id] = stored
            while len(self._responses) > self.RESPONSE_MEMORY:
                self._responses.popitem(last=False)

    def stored_response(self, response_id: str) -> Stored | None:
        with self._lock:
            return self._responses.get(response_id)

    def record(self, model: str, outcome: str) -> None:
        with self._lock:
            self._stats.setdefault(model, _empty_stats())[outcome] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            models = {name: {**e, "tasks": dict(e["tasks"])} for name, e in self._stats.items()}
        return {"total_calls": sum(e["calls"] for e in models.values()), "models": models}

    def reset_stats(self) -> None:
        with self._lock:
            self._stats.clear()


def _empty_stats() -> dict[str, Any]:
    return {"calls": 0, "openai": 0, "anthropic": 0, "responses": 0, "ok": 0, "errors": 0,
            "garbage": 0, "hangs": 0, "tasks": {}}
