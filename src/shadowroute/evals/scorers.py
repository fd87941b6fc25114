"""``shadowroute eval scorers``: does each deterministic scorer's "pass" agree with the truth on
real model outputs?

A verdict is only as good as the scorer behind it: a scorer that passes wrong answers promotes
a model that is worse. This measurement runs every deterministic scorer, built exactly as a
task's ``[tasks.X.scorers]`` builds it (:func:`shadowroute.scoring.plan.plan_for`), over pairs
whose truth is known, and prints for each one pass rate, precision, recall, accuracy and
Cohen's kappa against the truth (:mod:`.agreement`). Nothing is stored, nothing is called.

Sources, read unchanged from the datasets folder (``evals/datasets/``, ``--data``):

* **gsm8k** (``routellm/gsm8k_responses.csv``, as the ``routellm`` eval reads it): 1,319 math
  problems; the primary's answer is GPT-4 Turbo's, the candidate's Mixtral 8x7B's. Truth: the
  candidate is as good, i.e. it is right, or GPT-4 is wrong too (the ``correctness`` rule).
* **mt-bench-human** (``llmbar/mt_bench_human.json``): 200 MT-Bench answer pairs judged by
  people (ties removed); ``output_1`` plays the primary, ``output_2`` the candidate (as in
  ``shadowroute calibrate-judge``). Truth: people preferred ``output_2``. What a deterministic
  scorer can say here (that two open-ended answers read alike) is not what people judged; the
  LLM judge's agreement with these labels is what ``shadowroute calibrate-judge`` measures.

Scorers (rows): ``default`` (what a task type with no scorer configured and no judge gets,
whatever that is in this version), ``exact``, ``extract`` with its defaults, ``similarity``
with each rapidfuzz method at each of :data:`THRESHOLDS`, and ``correctness`` (the recorded
outcomes: on gsm8k the truth itself, a check of the arithmetic). A scorer named in the grid
that this version does not have is skipped with a note; ``schema`` does not apply (no JSON
answers) and the judge is not run. A row passes a pair when every scorer of it that applies
passed (as the decision counts an output); a pair none applies to is ``n/a``.

A threshold only moves where a scorer's value passes (``value >= threshold``: what
``threshold`` means in the config), so rows that differ only by their threshold are scored
once, by the first row's scorer, and its values are thresholded for the others; a result that
its own threshold does not explain (the tool-call comparison, which passes only exact calls)
is scored again by the row's own scorer. partial_ratio over long MT-Bench answers costs tens
of milliseconds a pair: this keeps the run to seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import SCORER_NAMES, load_config
from ..errors import ConfigError
from ..scoring.plan import ScorerSpec, plan_for
from ..scoring.scorers.base import ScoreResult
from ..scoring.scorers.correctness import OUTCOMES_KEY, ScoreContext
from ..scoring.scorers.similarity import SIMILARITY_METHODS
from . import routellm
from .agreement import HEADER, Agreement, aligned

__all__ = ["DATA_FILES", "GSM8K", "MT_BENCH", "THRESHOLDS", "Pair", "Row", "ScorersRun",
           "Source", "grid", "gsm8k_source", "measure", "mt_bench_source"]

GSM8K = "gsm8k"
MT_BENCH = "mt-bench-human"
DATA_FILES = ("routellm/gsm8k_responses.csv", "llmbar/mt_bench_human.json")
"""What the datasets folder must hold (paths relative to it)."""
THRESHOLDS = (0.6, 0.7, 0.8, 0.9)
"""The thresholds every similarity method is measured at."""
_TASK = "eval"


@dataclass(frozen=True, slots=True)
class Pair:
    """A primary's and a candidate's answer to one request, and whether the candidate's is as
    good (the truth)."""

    primary: str
    candidate: str
    truth: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The exchange's metadata, for scorers that read it (``correctness``: the outcomes)."""


@dataclass(frozen=True, slots=True)
class Source:
    """Pairs with a known truth, and what they are."""

    name: str
    what: str
    truth: str
    """What "as good" means in this source."""
    primary_model: str
    candidate_model: str
    pairs: tuple[Pair, ...]

    @property
    def good(self) -> int:
        """Pairs whose candidate is truly as good."""
        return sum(pair.truth for pair in self.pairs)

    def describe(self) -> str:
        n = len(self.pairs)
        return (f"{self.name}: {self.what}; truth: {self.truth} ({self.good:,} of {n:,}, "
                f"{self.good / n:.1%})") if n else f"{self.name}: {self.what}; no pairs"


def _problem(path: Path, message: str) -> ConfigError:
    return ConfigError(f"{path.name}: {message} (is this the public data, unchanged?)",
                       path=str(path))


def gsm8k_source(datasets: Path) -> Source:
    """The GSM8K pairs of ``datasets/routellm/``: GPT-4 Turbo vs Mixtral, truth from the
    recorded correctness."""
    pairs = []
    for record in routellm.gsm8k(datasets / "routellm"):
        outcomes = record.metadata[OUTCOMES_KEY]
        primary_right = outcomes[routellm.PRIMARY]["correct"]
        candidate_right = outcomes[routellm.CANDIDATE]["correct"]
        pairs.append(Pair(record.primary_output or "", record.outputs[0].output or "",
                          candidate_right or not primary_right, record.metadata))
    return Source(GSM8K, f"{len(pairs):,} GSM8K problems, {routellm.PRIMARY} (primary) vs "
                  f"{routellm.CANDIDATE_UPSTREAM} (candidate)",
                  "the candidate is right, or the primary is wrong too",
                  routellm.PRIMARY, routellm.CANDIDATE, tuple(pairs))


def mt_bench_source(datasets: Path) -> Source:
    """The MT-Bench human judgements of ``datasets/llmbar/``: ``output_1`` as the primary,
    ``output_2`` as the candidate, truth = people preferred ``output_2``."""
    path = datasets / "llmbar" / "mt_bench_human.json"
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", key="--data") from exc
    except ValueError as exc:
        raise _problem(path, f"not JSON: {exc}") from exc
    if not isinstance(items, list):
        raise _problem(path, "expected a JSON list of answer pairs")
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _problem(path, f"item {i} is not an object")
        first, second, label = item.get("output_1"), item.get("output_2"), item.get("label")
        if not isinstance(first, str) or not isinstance(second, str):
            raise _problem(path, f"item {i}: output_1 and output_2 must be strings")
        if str(label) not in ("1", "2"):
            raise _problem(path, f"item {i}: label is {label!r}, not 1 or 2")
        pairs.append(Pair(first, second, str(label) == "2"))
    return Source(MT_BENCH, f"{len(pairs):,} MT-Bench answer pairs judged by people (ties "
                  "removed), output_1 (primary) vs output_2 (candidate)",
                  "people preferred output_2", "output_1", "output_2", tuple(pairs))


@dataclass(frozen=True, slots=True)
class Row:
    """A scorer configuration of the grid: ``[tasks.X.scorers.<name>]`` with ``options``;
    ``name`` ``None`` is the default (no scorer configured)."""

    label: str
    name: str | None
    options: Mapping[str, Any] = field(default_factory=dict)

    def specs(self) -> tuple[ScorerSpec, ...]:
        """The scorers, built as a task type's config builds them."""
        scorers = {} if self.name is None else {self.name: dict(self.options)}
        config = load_config(data={"tasks": {_TASK: {"scorers": scorers}}})
        return plan_for(config, _TASK).scorers


def grid() -> list[Row]:
    """The scorer configurations measured, in the order printed."""
    rows = [Row("default", None), Row("exact", "exact"), Row("extract", "extract")]
    rows += [Row(f"similarity {method} >= {threshold:g}", "similarity",
                 {"method": method, "threshold": threshold})
             for method in SIMILARITY_METHODS for threshold in THRESHOLDS]
    rows.append(Row("correctness", "correctness"))
    return rows


def _describe(spec: ScorerSpec) -> str:
    settings = spec.scorer.settings()
    if spec.name == "similarity":
        return f"similarity {settings.get('method')} >= {settings.get('threshold'):g}"
    threshold = settings.get("threshold")
    if isinstance(threshold, int | float) and threshold != 1.0:
        return f"{spec.name} >= {threshold:g}"
    return spec.name


def _score(spec: ScorerSpec, pair: Pair, source: Source) -> ScoreResult:
    if spec.uses_context:
        context = ScoreContext(source.candidate_model, source.primary_model, _TASK, pair.metadata)
        return spec.scorer.score(pair.primary, pair.candidate, context)  # type: ignore[call-arg]
    return spec.scorer.score(pair.primary, pair.candidate)


def _threshold(spec: ScorerSpec) -> float | None:
    value = spec.scorer.settings().get("threshold")
    return float(value) if isinstance(value, int | float) else None


class _Scored:
    """Results of one scorer configuration, reused by the rows that differ from it only by
    their threshold (module doc)."""

    def __init__(self, spec: ScorerSpec, source: Source) -> None:
        self.threshold = _threshold(spec)
        self.results = [_score(spec, pair, source) for pair in source.pairs]

    def passed(self, i: int, spec: ScorerSpec, pair: Pair, source: Source) -> bool | None:
        result, threshold = self.results[i], _threshold(spec)
        if threshold == self.threshold:
            return result.passed
        if (result.passed is None or result.value is None or self.threshold is None
                or threshold is None or result.passed != (result.value >= self.threshold)):
            return _score(spec, pair, source).passed
        return result.value >= threshold


def _key(spec: ScorerSpec) -> str:
    """The scorer's settings without its threshold."""
    settings = {k: v for k, v in spec.scorer.settings().items() if k != "threshold"}
    return json.dumps([spec.name, settings], sort_keys=True, default=str)


def agreement(specs: tuple[ScorerSpec, ...], source: Source, label: str,
              cache: dict[str, _Scored] | None = None) -> Agreement:
    """The 2x2 table of one scorer configuration on one source: a pair passes when every
    scorer that applies passed; ``cache`` holds results to reuse across thresholds."""
    cache = {} if cache is None else cache
    scored = []
    for spec in specs:
        key = _key(spec)
        if key not in cache:
            cache[key] = _Scored(spec, source)
        scored.append((spec, cache[key]))
    settings = [{"name": s.name, "version": s.version, "settings": s.scorer.settings()}
                for s in specs]
    counts = Agreement(source.name, label, settings)
    for i, pair in enumerate(source.pairs):
        verdicts = [v for spec, results in scored
                    if (v := results.passed(i, spec, pair, source)) is not None]
        counts.add(all(verdicts) if verdicts else None, pair.truth)
    return counts


@dataclass
class ScorersRun:
    """The measurement: one :class:`Agreement` per source x scorer configuration."""

    data: Path
    sources: list[Source]
    rows: list[Agreement]
    notes: list[str]
    seconds: float = 0.0

    def row(self, source: str, scorer: str) -> Agreement:
        """The row of ``scorer`` (its label, e.g. ``"similarity ratio >= 0.8"``) on
        ``source``; ``KeyError`` when there is none."""
        for row in self.rows:
            if row.source == source and row.scorer == scorer:
                return row
        raise KeyError((source, scorer))

    def lines(self) -> list[str]:
        """A summary, the sources, the validity table (aligned columns), then the notes."""
        pairs = sum(len(s.pairs) for s in self.sources)
        head = [(f"scorers: {len({r.scorer for r in self.rows})} scorer configurations on "
                 f"{pairs:,} pairs with a known truth, from {self.data} ({self.seconds:.1f}s)")]
        head += [source.describe() for source in self.sources]
        return [*head, *aligned([HEADER, *(row.cells() for row in self.rows)]),
                *(f"note: {note}" for note in self.notes)]

    def to_json(self) -> str:
        return json.dumps({
            "eval": "scorers", "data": str(self.data), "thresholds": list(THRESHOLDS),
            "sources": [{"name": s.name, "what": s.what, "truth": s.truth, "pairs": len(s.pairs),
                         "good": s.good, "primary_model": s.primary_model,
                         "candidate_model": s.candidate_model} for s in self.sources],
            "rows": [row.to_dict() for row in self.rows], "notes": self.notes,
        }, indent=2, default=str)


_NOTES = (
    ("precision: of the pairs a scorer passed, the share truly as good (low precision passes "
     "worse answers: a wrong PROMOTE); recall: of the pairs truly as good, the share it passed; "
     "kappa: agreement beyond chance (0 chance, 1 perfect); n/a: pairs it does not apply to, "
     "left out of n as the report leaves them out"),
    ("correctness reads recorded outcomes: on gsm8k it is the truth itself (a check of the "
     "arithmetic); schema does not apply (no JSON answers)"),
    ("the LLM judge is not run here (nothing is called): its agreement with the people behind "
     "mt-bench-human is what `shadowroute calibrate-judge mt_bench_human` measures"),
)


def _rows(sources: list[Source], notes: list[str]) -> Iterator[Agreement]:
    caches: dict[str, dict[str, _Scored]] = {source.name: {} for source in sources}
    for row in grid():
        if row.name is not None and row.name not in SCORER_NAMES:
            notes.append(f"{row.label}: not a scorer of this version of shadowroute (skipped)")
            continue
        specs = row.specs()
        label = row.label
        if row.name is None:
            label = "default: " + " + ".join(_describe(spec) for spec in specs)
        for source in sources:
            counts = agreement(specs, source, label, caches[source.name])
            if counts.n == 0:
                notes.append(f"{label}: applies to no {source.name} pair (left out)")
                continue
            yield counts


def measure(datasets: Path) -> ScorersRun:
    """Run the grid over both sources of the datasets folder ``datasets`` (holding
    :data:`DATA_FILES`). Bad data raises :class:`ConfigError` naming the file."""
    started = time.monotonic()
    sources = [gsm8k_source(datasets), mt_bench_source(datasets)]
    notes: list[str] = []
    rows = sorted(_rows(sources, notes), key=lambda r: [s.name for s in sources].index(r.source))
    run = ScorersRun(datasets, sources, rows, [*_NOTES, *notes])
    run.seconds = time.monotonic() - started
    return run
