"""The one config builder, :func:`make_config`, and its presets.

A preset is a mapping of top-level keys of ``shadowroute.toml`` (``models``, ``tasks``,
``mirror``, ...) that a family of tests starts from; the ``*_preset`` fixtures of conftest.py
give them for the test's ``tmp_path``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shadowroute.config import Config, load_config

CLOSED = "http://127.0.0.1:9/v1"
"""A base URL nothing listens on: the models of tests that never reach the network."""

MODELS: dict[str, Any] = {
    "frontier": {"base_url": CLOSED, "input_price": 2.5, "output_price": 10},
    "small": {"base_url": CLOSED, "input_price": 0.15, "output_price": 0.6},
    "tiny": {"base_url": CLOSED, "input_price": 0.05, "output_price": 0.2},
}
"""The default ``[models]``: a primary and two cheaper candidates, priced per million tokens."""

BIG_MINI_TINY: dict[str, Any] = {
    "big": {"base_url": CLOSED},
    "mini": {"base_url": CLOSED},
    "tiny": {"base_url": CLOSED},
}
"""``[models]`` of crafted stored data: primary ``big``, candidates ``mini`` and ``tiny``."""

IN_PROCESS: dict[str, Any] = {"mirror_process": "off"}
"""A test's sidecar mirrors in its own process (``[sidecar] mirror_process = "off"``), so the
test can read its Shadow's counters and give it fake candidates; the tests of the mirror
process (the shipped default) ask for it (tests/pipeline/test_handoff.py)."""

ORDER_SCHEMA = {
    "type": "object",
    "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
    "required": ["sku", "qty"],
}
"""The JSON schema of an extracted order."""


def make_config(database_url: str, /, *presets: Mapping[str, Any], **overrides: Any) -> Config:
    """A validated config on ``database_url``.

    Starts from ``{"database_url": database_url, "models": MODELS, "sidecar":
    IN_PROCESS}``; each preset then sets its
    keys whole, in order; then the overrides, one top-level key each: ``models=`` and ``tasks=``
    replace the table, any other mapping is merged one level deep into the section already
    there (``mirror={"workers": 1}`` changes one setting of the preset's ``[mirror]``), anything
    else replaces the key, and ``None`` leaves the key out.
    """
    data: dict[str, Any] = {"database_url": database_url, "models": MODELS, "sidecar": IN_PROCESS}
    for preset in presets:
        data.update(preset)
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        elif key not in ("models", "tasks") and isinstance(value, Mapping) \
                and isinstance(data.get(key), Mapping):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return load_config(data=data)


def shadow_preset(tmp_path: Path) -> dict[str, Any]:
    """A :class:`Shadow` in a test: ``classify_intent`` mirrored to ``small`` at rate 1.0, four
    workers and a short retry backoff, a fast writer spooling under ``tmp_path``."""
    return {
        "tasks": {"classify_intent": {"candidates": ["small"], "sample_rate": 1.0}},
        "mirror": {"workers": 4, "queue_size": 100, "retry_backoff_s": 0.01},
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05,
                  "retry_interval_s": 0.1},
    }


def sidecar_preset(tmp_path: Path, upstream: str | None, *,
                   candidates: str | None = None) -> dict[str, Any]:
    """A sidecar in front of ``upstream``: classify_intent -> small + claude-small, sentiment ->
    tiny (also named by a rule: model ``front*`` with metadata feature=reviews), everything else
    ``default`` (sampled at 1.0, no candidates). Candidates live on ``candidates`` (default:
    the upstream)."""
    base = candidates or upstream or "http://127.0.0.1:9"
    return {
        "default_sample_rate": 1.0,
        "models": {
            "small": {"base_url": base + "/v1", "max_retries": 0},
            "tiny": {"base_url": base + "/v1", "max_retries": 0},
            "claude-small": {"base_url": base, "api": "anthropic", "max_retries": 0},
        },
        "tasks": {
            "classify_intent": {"candidates": ["small", "claude-small"], "sample_rate": 1.0},
            "sentiment": {"candidates": ["tiny"], "sample_rate": 1.0},
        },
        "sidecar": {
            # The fake serves both APIs, as a gateway in front of both providers would.
            "upstream": upstream,
            "anthropic_upstream": upstream,
            "rules": [{"task": "sentiment", "model": "front*", "metadata": {"feature": "reviews"}}],
            **IN_PROCESS,
        },
        "store": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05,
                  "retry_interval_s": 0.2},
        "mirror": {"shutdown_deadline_s": 5.0},
    }


def scoring_preset(tmp_path: Path) -> dict[str, Any]:
    """Scoring crafted pairs: ``big``'s answers against ``mini`` and ``tiny``, a priced ``judge``;
    ``classify`` (exact + judge) and ``extract`` (schema, similarity, judge; ORDER_SCHEMA
    written to ``tmp_path``); the judge asked on every pair (``when = "always"``)."""
    schema_path = tmp_path / "order.schema.json"
    schema_path.write_text(json.dumps(ORDER_SCHEMA))
    return {
        "models": {**BIG_MINI_TINY,
                   "judge": {"base_url": CLOSED, "input_price": 1, "output_price": 4}},
        # "always": these pairs test the judge itself (under "needed", exact would decide them).
        "judge": {"model": "judge", "concurrency": 4, "when": "always"},
        "tasks": {
            "classify": {"candidates": ["mini", "tiny"], "scorers": ["exact", "judge"]},
            "extract": {
                "candidates": ["mini"],
                "json_schema": str(schema_path),
                "scorers": ["schema", "similarity", "judge"],
            },
        },
    }
