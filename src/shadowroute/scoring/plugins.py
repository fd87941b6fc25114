"""Scorer plugins: your own scorer, stored, versioned and decided on like the built-in ones.

A plugin is a *factory* that declares its name, version and options and, called with the
options, returns a scorer with ``score(primary, candidate) -> ScoreResult``::

    from shadowroute.scoring.plugins import ScoreResult, plugin_info

    @plugin_info(name="shouting", version="1", options={"max_caps": 0.5})
    def shouting(max_caps: float) -> "Shouting":
        return Shouting(max_caps)

    class Shouting:
        def __init__(self, max_caps: float) -> None:
            self.max_caps = max_caps

        def score(self, primary: str | None, candidate: str) -> ScoreResult:
            letters = [c for c in candidate if c.isalpha()]
            if not letters:
                return ScoreResult(None, None, {"skipped": "no letters"})  # not applicable
            caps = sum(c.isupper() for c in letters) / len(letters)
            return ScoreResult(1 - caps, caps <= self.max_caps, {"caps": round(caps, 3)})

A class with ``name``, ``version`` and ``options`` class attributes whose constructor takes the
options as keyword arguments is a factory too. A distribution installs it under the
``shadowroute.scorers`` entry-point group (``pii_leak = "pii_scorer:factory"``) and a task
uses it by that name (``scorers = ["similarity", "pii_leak"]``); or the config names it
directly: ``[tasks.X.scorers.my_check] plugin = "package.module:factory"``. Its options go in
``options = {...}`` of the same table.

The contract is the built-in scorers' (:class:`ScorerPlugin`, :class:`PluginScorer`): scores
are stored per (output, scorer, version), where the version is the plugin's version plus a
digest of its name, ``hard`` and every option (defaults included) -- bump ``version`` when the
code changes its results; a changed option is a new version by itself. ``passed=None`` is "not
applicable" (the ignored bucket, never "passed"). A failed candidate call is a failed score
without calling the plugin. A factory that raises, or a scorer that raises or returns anything
but a valid :class:`ScoreResult` on a pair, is counted per plugin and reported by
``shadowroute score``; the run goes on, and the pairs left without its score are retried by the
next run (until then they count as unscored: no verdict rests on a check that did not run).
See docs/scorer-plugins.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from ..config.hooks import (
    SCORER_GROUP,
    PluginDeclaration,
    declaration_of,
    load_scorer_plugin,
    plugin_options,
)
from .options import PluginFailure, ScoreRunReport
from .scorers.base import ScoreResult
from .scorers.correctness import ScoreContext

if TYPE_CHECKING:
    from ..config import Config, ScorerConfig

__all__ = [
    "SCORER_GROUP",
    "PluginError",
    "PluginScorer",
    "ScoreContext",
    "ScoreResult",
    "ScorerPlugin",
    "build_plugin",
    "plugin_info",
    "plugin_version",
]

log = logging.getLogger("shadowroute")

F = TypeVar("F", bound=Callable[..., Any])


@runtime_checkable
class PluginScorer(Protocol):
    """What a plugin's factory returns: pure and cheap enough to run on every stored pair.

    ``primary`` is ``None`` when the primary gave no answer. With ``uses_context = True`` the
    scorer is called ``score(primary, candidate, context)`` with the exchange's
    :class:`ScoreContext` (models, task type, metadata)."""

    def score(self, primary: str | None, candidate: str) -> ScoreResult: ...


@runtime_checkable
class ScorerPlugin(Protocol):
    """What an entry point (or ``plugin = "package.module:factory"``) names."""

    name: str
    """The plugin's name (the entry point's, usually); part of the stored version's digest."""
    version: str
    """Bump it when the code changes what it computes: everything is scored again under it."""
    options: Mapping[str, Any]
    """Every option it takes, with its default (JSON-like values). A config value must be of
    the default's kind (a default of ``None`` takes anything); unknown options are errors."""

    def __call__(self, **options: Any) -> PluginScorer: ...


def plugin_info(
    *, name: str, version: str, options: Mapping[str, Any] | None = None, hard: bool = False
) -> Callable[[F], F]:
    """Declare a factory function a scorer plugin: ``@plugin_info(name="pii_leak", version="1",
    options={"kinds": ["email", "phone"]})``. ``hard``: its failure is deterministic and
    overrides the LLM judge (as the JSON schema's does)."""

    def declare(factory: F) -> F:
        factory.name = name  # type: ignore[attr-defined]
        factory.version = version  # type: ignore[attr-defined]
        factory.options = dict(options or {})  # type: ignore[attr-defined]
        factory.hard = hard  # type: ignore[attr-defined]
        declaration_of(factory, f"{getattr(factory, '__module__', '?')}:{name}")  # checks it
        return factory

    return declare


class PluginError(Exception):
    """A plugin could not be built, or raised (or answered nonsense) on a pair."""

    def __init__(self, message: str, *, at_load: bool = False) -> None:
        self.at_load = at_load
        super().__init__(message)


def plugin_version(declaration: PluginDeclaration, options: Mapping[str, Any]) -> str:
    """``<version>-<digest of name, hard and options>``: what its scores are stored under."""
    settings = {"plugin": declaration.name, "hard": declaration.hard, "options": dict(options)}
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return f"{declaration.version}-{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


@dataclass(frozen=True, slots=True, eq=False)
class _Plugin:
    """A plugin as the scoring run sees it (the :class:`~.scorers.base.Scorer` protocol)."""

    name: str
    """The config table's key: what its scores are stored under."""
    ref: str
    declaration: PluginDeclaration
    options: dict[str, Any]
    scorer: Any = None
    broken: str | None = None
    """Why the factory failed (``None``: it built)."""

    @property
    def hard(self) -> bool:
        return self.declaration.hard

    @property
    def uses_context(self) -> bool:
        return self.broken is None and bool(getattr(self.scorer, "uses_context", False))

    def settings(self) -> dict[str, Any]:
        return {"plugin": self.declaration.name, "ref": self.ref,
                "version": self.declaration.version, "hard": self.hard, "options": self.options}

    def score(self, primary: str | None, candidate: str,
              context: ScoreContext | None = None) -> ScoreResult:
        if self.broken is not None:
            raise PluginError(self.broken, at_load=True)
        try:
            if context is not None:
                result = self.scorer.score(primary, candidate, context)
            else:
                result = self.scorer.score(primary, candidate)
        except Exception as exc:
            raise PluginError(f"{type(exc).__name__}: {exc}") from exc
        problem = _invalid(result)
        if problem is not None:
            raise PluginError(problem)
        return result  # type: ignore[no-any-return]


def _invalid(result: Any) -> str | None:
    """Why ``result`` cannot be stored (``None``: it can)."""
    if not isinstance(result, ScoreResult):
        return f"returned {type(result).__name__}, not a ScoreResult"
    value = result.value
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not 0.0 <= value <= 1.0):
        return f"returned value {value!r}: a number in [0, 1], or None when not applicable"
    if result.passed is not None and not isinstance(result.passed, bool):
        return f"returned passed {result.passed!r}: True, False, or None (not applicable)"
    if not isinstance(result.details, dict):
        return "returned details that are not a dict"
    try:
        json.dumps(result.details, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"returned details that are not JSON: {exc}"
    cost = result.cost_usd
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not math.isfinite(cost) \
            or cost < 0:
        return f"returned cost_usd {cost!r}: a number >= 0"
    return None


def build_plugin(config: Config, task: str, name: str, options: ScorerConfig) -> tuple[str, Any]:
    """(version, scorer) of the plugin of ``[tasks.<task>.scorers.<name>]``. Loading and the
    declaration were checked with the config (a :class:`ValueError` here is one to report as a
    config error); a factory that raises gives a scorer that raises :class:`PluginError` on
    every pair, so the run counts it and goes on."""
    ref = options.plugin or name
    factory = load_scorer_plugin(ref)
    declaration = declaration_of(factory, ref)
    merged = plugin_options(declaration, options.options or {})
    version = plugin_version(declaration, merged)
    try:
        scorer = factory(**merged)
        if not callable(getattr(scorer, "score", None)):
            raise TypeError(f"the factory returned {type(scorer).__name__}, which has no "
                            "score(primary, candidate) method")
    except Exception as exc:  # noqa: BLE001 - whatever the plugin raises is reported, not fatal
        log.debug("scorer plugin %s (%s) could not be built", name, ref, exc_info=True)
        return version, _Plugin(name, ref, declaration, merged,
                                broken=f"{type(exc).__name__}: {exc}")
    return version, _Plugin(name, ref, declaration, merged, scorer)


def is_plugin(scorer: Any) -> bool:
    return isinstance(scorer, _Plugin)


# ------------------------------------------------------------------ failures of a scoring run


def broken_plugins(plans: Iterable[Any]) -> dict[tuple[str, str], PluginFailure]:
    """The plugins of these task plans whose factory failed, before any pair is scored (each
    logged once)."""
    found: dict[tuple[str, str], PluginFailure] = {}
    for plan in plans:
        for spec in plan.scorers:
            plugin = spec.scorer
            if is_plugin(plugin) and plugin.broken is not None:
                found[(plan.task, spec.name)] = PluginFailure(
                    plan.task, spec.name, plugin.ref, True, plugin.broken)
                log.warning("scorer plugin %s of task %s (%s) could not be built: %s",
                            spec.name, plan.task, plugin.ref, plugin.broken)
    return found


def count_failure(report: ScoreRunReport, spec: Any, task: str, model: str,
                  error: PluginError) -> None:
    """Count a pair a plugin failed on (the first one per plugin is logged with its cause)."""
    key = (task, spec.name)
    failure = report.plugin_failures.get(key)
    if failure is None:
        failure = report.plugin_failures[key] = PluginFailure(
            task, spec.name, getattr(spec.scorer, "ref", spec.name), error.at_load, str(error))
        log.warning("scorer plugin %s of task %s failed on a pair: %s", spec.name, task, error,
                    exc_info=error.__cause__)
    failure.pairs += 1
    failure.by_model[model] = failure.by_model.get(model, 0) + 1


def add_failures_to_summary(report: ScoreRunReport) -> None:
    """Each failed plugin's rows of ``report.summary`` get ``errors`` (pairs it failed on, per
    model), rows added where it stored nothing."""
    rows = {(r["task"], r["model"], r["scorer"]): r for r in report.summary}
    for failure in report.plugin_failures.values():
        for model, n in failure.by_model.items():
            row = rows.get((failure.task, model, failure.scorer))
            if row is None:
                row = rows[(failure.task, model, failure.scorer)] = {
                    "task": failure.task, "model": model, "scorer": failure.scorer, "n": 0,
                    "passed": 0, "failed": 0, "ignored": 0, "mean": None, "cost_usd": 0.0,
                    "better": 0, "same": 0, "worse": 0,
                }
                report.summary.append(row)
            row["errors"] = n
    report.summary.sort(key=lambda r: (r["task"], r["model"], r["scorer"]))
