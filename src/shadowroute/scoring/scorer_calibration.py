"""How far each scorer of a task type agrees with labels: ``shadowroute calibrate TASK``.

    labels = read_labels(Path("labels.jsonl"))           # or None: the recorded outcomes
    run = await calibrate_scorers(config, store, "classify", labels, labels_path="labels.jsonl")
    run.scorers[0].agreement.configured.kappa
    await save_scorer_calibrations(store, run.rows())

The scorers are the task type's plan (:func:`.plan.plan_for`, the judge included when it scores
the task type) and their scores are the ones stored at each scorer's current version by
``shadowroute score``: nothing is scored here and the judge is never called. The labels come
from a file (:func:`.labels.read_labels`) or, without one, from the exchanges' recorded
``metadata.outcomes`` (:func:`.labels.outcome_label`). Per scorer, the labelled outputs it
applied to are compared with their labels (:func:`.validity.scorer_agreement`): as configured
(the stored ``passed``), over a threshold sweep of the stored values, and at the best threshold.

Left out of ``n``, and counted: outputs whose call failed (every scorer fails them without
looking: they say nothing about a scorer), outputs without a current score of the scorer (run
``shadowroute score``), outputs the scorer did not apply to (``passed`` null).

Bad input is one :class:`ConfigError` before anything is stored: an unknown task type, no
labels at all, a label naming no stored output (or one of another task type, or the primary's
replay), two lines giving one output different labels, no current score on any labelled output.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..config import Config
from ..errors import ConfigError
from ..records import NOISE_FLOOR_MODEL, utcnow
from ..store import Store
from ..store.queries import validity as q
from .labels import LabelLine, outcome_label
from .plan import plan_for
from .validity import CRITERION, MIN_KAPPA, LabelledScore, ScorerAgreement, scorer_agreement

__all__ = ["ScorerCalibrationRun", "ScorerResult", "calibrate_scorers"]

LabelSource = Literal["file", "outcomes"]


@dataclass(frozen=True, slots=True)
class ScorerResult:
    """One scorer against the labels."""

    scorer: str
    version: str
    agreement: ScorerAgreement
    unscored: int
    """Labelled outputs without a current score of this scorer."""
    not_applicable: int
    """Labelled outputs the scorer did not apply to (``passed`` null)."""
    note: str | None = None


@dataclass
class ScorerCalibrationRun:
    """A ``shadowroute calibrate`` run: the labels used and each scorer's agreement."""

    task: str
    label_source: LabelSource
    labels_path: str | None
    labelled: int
    """Labelled candidate outputs of the task type (each output once)."""
    acceptable: int
    """Of them, labelled acceptable."""
    call_failed: int
    """Of them, whose call failed (left out of every scorer's ``n``)."""
    scorers: list[ScorerResult]
    outputs: int | None = None
    """With outcome labels: the task type's candidate outputs (how many could have had one)."""
    repeated: int = 0
    """Label lines that repeated a label already given (counted once)."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=utcnow)

    @property
    def source(self) -> str:
        """Where the labels came from, in words."""
        if self.label_source == "file":
            return f"labels file {self.labels_path}"
        return "metadata.outcomes of the stored exchanges"

    def rows(self) -> list[dict[str, Any]]:
        """The ``scorer_calibrations`` rows: one per scorer with at least one labelled output."""
        rows = []
        for s in self.scorers:
            a = s.agreement
            if not a.n:
                continue
            c, best = a.configured, a.best
            rows.append({
                "task_type": self.task, "scorer": s.scorer, "scorer_version": s.version,
                "created_at": self.created_at, "run_id": self.id,
                "label_source": self.label_source, "n": a.n, "threshold": a.threshold,
                "precision": c.precision, "recall": c.recall, "accuracy": c.accuracy,
                "kappa": c.kappa, "criterion": CRITERION,
                "best_threshold": best.threshold if best else None,
                "best_precision": best.precision if best else None,
                "best_recall": best.recall if best else None,
                "best_accuracy": best.accuracy if best else None,
                "best_kappa": best.kappa if best else None,
                "sweep": [m.to_dict() for m in a.sweep],
                "details": {
                    "configured": c.to_dict(), "best": best.to_dict() if best else None,
                    "informative": c.informative, "low": a.low, "min_kappa": MIN_KAPPA,
                    "labels_path": self.labels_path, "labelled": self.labelled,
                    "acceptable": self.acceptable, "call_failed": self.call_failed,
                    "unscored": s.unscored, "not_applicable": s.not_applicable,
                    "note": s.note,
                },
            })
        return rows

    def lines(self) -> list[str]:
        """The run in a few plain sentences, for the CLI."""
        bad = self.labelled - self.acceptable
        out = [f"labels: {self.labelled:,} labelled outputs of {self.task} "
               f"({self.acceptable:,} acceptable, {bad:,} not) from {self.source}"
               + ("" if self.label_source == "file" else
                  f" (no --labels given; {self.outputs or 0:,} candidate outputs stored)")]
        if self.repeated:
            out.append(f"{self.repeated:,} label lines repeated an output already labelled "
                       "(counted once)")
        if self.call_failed:
            out.append(f"{self.call_failed:,} labelled outputs whose call failed are left out "
                       "(every scorer fails them without looking)")
        for s in self.scorers:
            if s.unscored:
                out.append(f"{s.scorer}: {s.unscored:,} labelled outputs have no current "
                           f"{s.scorer} score: run shadowroute score --task {self.task}")
            if s.note:
                out.append(f"{s.scorer}: {s.note}")
            if s.agreement.low:
                out.append(f"{s.scorer}: kappa {s.agreement.configured.kappa:.2f} is below "
                           f"{MIN_KAPPA}: the report flags verdicts that rest on it")
        return out


def _aliases(config: Config) -> dict[str, str]:
    return {key: m.model for key, m in config.models.items() if m.model and m.model != key}


async def _file_labels(
    conn: Any, task: str, lines: Sequence[LabelLine], path: str | None
) -> tuple[dict[str, bool], dict[str, q.StoredOutput], int]:
    by_id = await q.outputs_by_id(conn, [x.output_id for x in lines if x.output_id])
    by_pair = await q.outputs_by_exchange(
        conn, [(x.exchange_id, x.model) for x in lines if x.exchange_id and x.model])
    where = f"labels {path}" if path else "labels"
    labels: dict[str, bool] = {}
    first_line: dict[str, int] = {}
    outputs: dict[str, q.StoredOutput] = {}
    repeated = 0
    for line in lines:
        found = (by_id.get(line.output_id) if line.output_id
                 else by_pair.get((line.exchange_id or "", line.model or "")))
        if found is None:
            raise ConfigError(f"{where}: line {line.line}: no stored candidate output is "
                              f"{line.names()}")
        if found.model == NOISE_FLOOR_MODEL:
            raise ConfigError(f"{where}: line {line.line}: {line.names()} is the primary's "
                              "replay (noise floor), not a candidate's answer")
        if found.task_type != task:
            raise ConfigError(f"{where}: line {line.line}: {line.names()} answers task type "
                              f"{found.task_type!r}, not {task!r}")
        if found.id in labels:
            if labels[found.id] != line.label:
                raise ConfigError(
                    f"{where}: line {line.line}: labels {line.names()} "
                    f"{str(line.label).lower()}, line {first_line[found.id]} labelled it "
                    f"{str(labels[found.id]).lower()}")
            repeated += 1
            continue
        labels[found.id], first_line[found.id], outputs[found.id] = line.label, line.line, found
    return labels, outputs, repeated


async def calibrate_scorers(
    config: Config, store: Store, task: str, labels: Sequence[LabelLine] | None = None,
    *, labels_path: str | None = None,
) -> ScorerCalibrationRun:
    """Each of ``task``'s scorers against ``labels`` (a file's lines), or against the recorded
    outcomes when ``labels`` is ``None``; nothing is stored (see :meth:`ScorerCalibrationRun.rows`).
    Raises :class:`ConfigError` on bad input (module docstring)."""
    async with store.connect("read the labelled outputs in") as conn:
        if task not in config.tasks:
            known = await q.task_types(conn)
            if task not in known:
                names = sorted(set(known) | set(config.tasks))
                raise ConfigError(f"unknown task type {task!r}: not in [tasks] and no stored "
                                  f"exchanges (task types: {', '.join(names) or 'none'})")
        plan = plan_for(config, task)
        outputs_total = None
        repeated = 0
        if labels is not None:
            by_output, outputs, repeated = await _file_labels(conn, task, labels, labels_path)
        else:
            outputs_total, stored = await q.outcome_outputs(conn, task)
            aliases = _aliases(config)
            by_output, outputs = {}, {}
            for o in stored:
                label = outcome_label(o.metadata, o.model, o.primary_model, aliases)
                if label is not None:
                    by_output[o.id], outputs[o.id] = label, o
            if not by_output:
                raise ConfigError(
                    f"no labels for task type {task!r}: no --labels file given, and none of "
                    f"its {outputs_total:,} stored candidate outputs has a recorded outcome "
                    "(metadata.outcomes) that says whether it is acceptable; pass --labels FILE")
        answered = [oid for oid in by_output if outputs[oid].error_kind is None]
        scores = await q.labelled_scores(conn, answered, plan.keys())
    by_scorer: dict[str, dict[str, tuple[float | None, bool | None]]] = {}
    for oid, scorer, value, passed in scores:
        by_scorer.setdefault(scorer, {})[oid] = (value, passed)
    specs = [(s.name, s.version, s.scorer.settings().get("threshold")) for s in plan.scorers]
    if plan.judge is not None:
        specs.append((plan.judge.name, plan.judge.version, plan.judge.threshold))
    results = []
    for name, version, threshold in specs:
        mine = by_scorer.get(name, {})
        items = [LabelledScore(value, bool(passed), by_output[oid])
                 for oid, (value, passed) in mine.items() if passed is not None]
        note = None
        if name == "correctness" and labels is None:
            note = ("reads the same recorded outcomes as these labels: its agreement holds by "
                    "construction and says nothing about the other scorers")
        numeric = isinstance(threshold, int | float) and not isinstance(threshold, bool)
        results.append(ScorerResult(
            name, version, scorer_agreement(items, float(threshold) if numeric else None),
            unscored=len(answered) - len(mine), not_applicable=len(mine) - len(items), note=note))
    run = ScorerCalibrationRun(
        task=task, label_source="file" if labels is not None else "outcomes",
        labels_path=labels_path, labelled=len(by_output),
        acceptable=sum(by_output.values()), call_failed=len(by_output) - len(answered),
        scorers=results, outputs=outputs_total, repeated=repeated,
    )
    if not run.rows():
        missing = max((s.unscored for s in results), default=0)
        names = ", ".join(name for name, _, _ in specs)
        raise ConfigError(
            f"no scorer of {task!r} ({names}) has a current score on any of the "
            f"{len(answered):,} labelled outputs with an answer ({missing:,} lack one): run "
            f"shadowroute score --task {task} first")
    return run
