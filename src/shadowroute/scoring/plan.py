"""Which scorers run on a task type, and the version each one's scores are stored under.

A scorer's version is its code version plus a digest of every setting that can change its
results (threshold, method, labels, the JSON schema, the judge's model, rubric and prompt). So
editing a rubric or a threshold is a new version: ``shadowroute score`` scores everything again
under it, and the old rows stay as they were. A scorer plugin's version is its declared version
plus a digest of its name, ``hard`` and options (:func:`.plugins.plugin_version`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..config import Config, ScorerConfig
from ..errors import ConfigError
from .plugins import build_plugin
from .prompt import DEFAULT_RUBRIC, PROMPT_VERSION
from .scorers.base import Scorer
from .scorers.correctness import CorrectnessScorer
from .scorers.exact import ExactScorer
from .scorers.extract import ExtractScorer
from .scorers.schema import SchemaScorer
from .scorers.similarity import SimilarityScorer

__all__ = ["CODE_VERSIONS", "JudgeSpec", "ScorerSpec", "TaskPlan", "plan_for"]

CODE_VERSIONS = {
    "schema": "1", "exact": "2", "label": "2", "similarity": "3", "judge": "1", "correctness": "1",
    "extract": "1",
}
"""Bump a scorer's entry when its code changes what it computes."""

DEFAULT_THRESHOLDS = {"schema": 1.0, "exact": 1.0, "label": 1.0, "similarity": 0.8}


def _version(name: str, settings: dict[str, Any]) -> str:
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
    return f"{CODE_VERSIONS[name]}-{digest}"


@dataclass(frozen=True, slots=True)
class ScorerSpec:
    """A deterministic scorer and the version its scores are stored under."""

    name: str
    version: str
    scorer: Scorer

    @property
    def hard(self) -> bool:
        return self.scorer.hard

    @property
    def uses_context(self) -> bool:
        """The scorer also needs the exchange's metadata (a :class:`.correctness.ScoreContext`)."""
        return bool(getattr(self.scorer, "uses_context", False))


@dataclass(frozen=True, slots=True)
class JudgeSpec:
    """The judge as configured for one task type."""

    version: str
    rubric: str
    threshold: float
    name: str = "judge"
    when: str = "needed"
    """``needed``: skipped on pairs a cheaper scorer decided; ``always``: asked on every pair."""


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """Every scorer of one task type; hard (schema) scorers first."""

    task: str
    scorers: tuple[ScorerSpec, ...]
    judge: JudgeSpec | None

    def keys(self) -> list[tuple[str, str]]:
        """(scorer, version) of every score an output of this task should have."""
        keys = [(spec.name, spec.version) for spec in self.scorers]
        if self.judge is not None:
            keys.append((self.judge.name, self.judge.version))
        return keys


class Plans(dict[str, "TaskPlan"]):
    """Task type -> :func:`plan_for` its task, built once, on first use."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config

    def __missing__(self, task: str) -> TaskPlan:
        plan = self[task] = plan_for(self.config, task)
        return plan

    def keys_of(self, task: str) -> list[tuple[str, str]]:
        """The task's (scorer, version) keys."""
        return self[task].keys()


def plan_for(config: Config, task: str) -> TaskPlan:
    """Build the task's scorers from the configuration (a :class:`ConfigError` names the key
    when a scorer cannot be built, e.g. an invalid JSON schema; a scorer plugin whose factory
    raises is kept, and fails every pair it is asked to score: see :mod:`.plugins`)."""
    specs: list[ScorerSpec] = []
    judge: JudgeSpec | None = None
    for name, options in config.scorers_for(task).items():
        if name == "judge":
            judge = _judge_spec(config, task, options)
            continue
        if name not in CODE_VERSIONS:
            try:
                version, plugin = build_plugin(config, task, name, options)
            except ValueError as exc:  # checked at load: the environment changed since
                raise ConfigError(str(exc), path=config.source,
                                  key=f"tasks.{task}.scorers.{name}") from exc
            specs.append(ScorerSpec(name, version, plugin))
            continue
        scorer = _build(config, task, name, options)
        specs.append(ScorerSpec(name, _version(name, scorer.settings()), scorer))
    specs.sort(key=lambda spec: not spec.hard)
    return TaskPlan(task, tuple(specs), judge)


def _build(config: Config, task: str, name: str, options: ScorerConfig) -> Scorer:
    try:
        if name == "correctness":
            # A candidate's outcome may be recorded under its upstream model id.
            aliases = {
                key: config.models[key].model
                for key in config.task(task).candidates
                if key in config.models and config.models[key].model != key
            }
            return CorrectnessScorer(tolerance=options.tolerance or 0.0, aliases=aliases)
        if name == "extract":
            return ExtractScorer(
                pattern=options.pattern,
                json_pointer=options.json_pointer,
                choices=options.choices,
                abs_tolerance=options.abs_tolerance or 0.0,
                rel_tolerance=options.rel_tolerance or 0.0,
                case_sensitive=options.case_sensitive,
            )
        threshold = (
            options.threshold if options.threshold is not None else DEFAULT_THRESHOLDS[name]
        )
        if name == "schema":
            schema = config.schema_for(task)
            if schema is None:
                raise ValueError("the task has no json_schema")
            return SchemaScorer(schema, threshold=threshold)
        if name in ("exact", "label"):
            return ExactScorer(
                name=name,
                labels=options.labels,
                case_sensitive=options.case_sensitive,
                threshold=threshold,
            )
        if options.method is None:
            return SimilarityScorer(threshold=threshold)
        return SimilarityScorer(method=options.method, threshold=threshold)
    except ValueError as exc:
        raise ConfigError(str(exc), path=config.source, key=f"tasks.{task}.scorers.{name}") from exc


def _judge_spec(config: Config, task: str, options: ScorerConfig) -> JudgeSpec:
    judge = config.judge
    if judge is None:  # the config validator already refuses this; keep the message anyway
        raise ConfigError("the judge scorer needs a [judge] section", path=config.source,
                          key=f"tasks.{task}.scorers.judge")
    model = config.models[judge.model]
    rubric = options.rubric or judge.rubric or DEFAULT_RUBRIC
    threshold = options.threshold if options.threshold is not None else judge.threshold
    settings = {
        "prompt": PROMPT_VERSION,
        "model": model.name,
        "upstream_model": model.model,
        "base_url": model.base_url,
        "rubric": rubric,
        "threshold": threshold,
        "max_tokens": judge.max_tokens,
    }
    when = options.when or judge.when
    if when == "always":
        # Only "always" enters the version: under "needed" (the default) a stored verdict is
        # still a verdict, so turning it on re-judges nothing; turning "always" on judges
        # every pair again, the skipped ones included.
        settings["when"] = when
    return JudgeSpec(_version("judge", settings), rubric, threshold, when=when)
