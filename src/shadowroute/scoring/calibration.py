"""How often the configured judge agrees with people: ``shadowroute calibrate-judge``.

    pairs = load_dataset(resolve_dataset("mt_bench_human"))
    run = await calibrate(load_config(), pairs, dataset="mt_bench_human")
    run.overall.agreement, run.overall.kappa, run.per_category["math"]

The dataset holds answer pairs with the human majority verdict (``label`` "1" or "2", ties
removed). Each pair goes through shadowroute's own judge, exactly as ``shadowroute score``
runs it (:class:`~shadowroute.scoring.Judge`: the same prompt, both orders, a flip is a tie,
the injection screen, the budget): ``output_1`` plays the primary's answer (the reference) and
``output_2`` the candidate's. Judge value 1 (candidate better) predicts label "2", 0 predicts
"1", 0.5 (same, or a verdict that flipped with the order) is a tie. A reply still unreadable
after its retry, or a call that failed, is left out of ``n`` and counted on its own.

The arithmetic (:func:`agreement`, :func:`cohens_kappa`) is pure. Over the ``m`` pairs the
judge decided (ties left out), with ``a`` of them agreeing with people::

    agreement              = a / m                  (None when m = 0)
    agreement, ties missed = a / n                  (a tie counts as a miss)
    kappa                  = (p_o - p_e) / (1 - p_e)
        p_o = a / m
        p_e = (h1 / m) (j1 / m) + (h2 / m) (j2 / m)
        h1, h2: pairs people labelled "1", "2"; j1, j2: pairs the judge called "1", "2"

Cohen's kappa is agreement corrected for chance: 0 is what two raters agreeing only by chance
(with these label frequencies) would get, 1 is perfect agreement, below 0 worse than chance. It
is ``None`` when ``m = 0`` or ``p_e = 1`` (both raters always gave one and the same label).
Published reference points (MT-Bench paper, Zheng et al. 2023, ties left out): the GPT-4 judge
agreed with people 85% of the time, people with each other 81%.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import anyio

from ..config import Config
from ..datasets import DATASETS_ENV, datasets_dirs
from ..errors import ConfigError
from ..mirror.policy import Completer
from ..records import utcnow
from . import BudgetExhausted, Judge, JudgeSpec, JudgeUnavailable, ScoreResult, plan_for

__all__ = [
    "DATASETS_ENV",
    "REFERENCE",
    "Agreement",
    "CalibrationRun",
    "HumanPair",
    "JudgedPair",
    "agreement",
    "calibrate",
    "category_of",
    "cohens_kappa",
    "find_questions",
    "judge_spec",
    "load_categories",
    "load_dataset",
    "prediction",
    "resolve_dataset",
]

Label = Literal["1", "2"]

"""A folder of datasets (``llmbar/mt_bench_human.json``, ``routellm/question.jsonl``)."""
KNOWN_DATASETS = {"mt_bench_human": "llmbar/mt_bench_human.json"}
"""Dataset names accepted instead of a path, and where they live in a datasets folder."""
QUESTIONS = "routellm/question.jsonl"
"""MT-Bench's questions (``turns``, ``category``): where a pair's category comes from."""
OTHER = "other"
"""The category of a pair whose input is none of the questions."""
REFERENCE: tuple[tuple[str, float], ...] = (
    ("GPT-4 judge vs humans (MT-Bench paper)", 0.85),
    ("human vs human (MT-Bench paper)", 0.81),
)
"""Published agreement without ties (Zheng et al. 2023, "Judging LLM-as-a-Judge")."""
_UNDECLARED_TASK = "calibrate-judge:default"
"""Not a task type anyone declares: ``plan_for`` gives it the judge's default settings."""

Progress = Callable[[int, int], None]
"""Called with (pairs done, pairs to do)."""


# --------------------------------------------------------------------------- arithmetic


@dataclass(frozen=True, slots=True)
class Agreement:
    """How often the judge's verdicts matched the human labels."""

    n: int
    """Pairs the judge gave a verdict on (ties included)."""
    ties: int
    agreements: int
    disagreements: int
    agreement: float | None
    """``agreements / (n - ties)``: ties left out; ``None`` when every verdict was a tie."""
    agreement_with_ties: float | None
    """``agreements / n``: a tie counts as a miss; ``None`` when ``n = 0``."""
    kappa: float | None
    """Cohen's kappa over the pairs that are not ties (see the module docstring)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cohens_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters over two classes, from ``(human, judge)`` label pairs.

    ``(p_o - p_e) / (1 - p_e)`` with ``p_o`` the share of pairs that agree and ``p_e`` the
    agreement expected by chance from each rater's label frequencies. ``None`` for no pairs,
    or when ``p_e = 1`` (both raters always gave the same single label: nothing to correct).
    """
    pairs = list(pairs)
    m = len(pairs)
    if m == 0:
        return None
    labels = {label for pair in pairs for label in pair}
    observed = sum(human == judge for human, judge in pairs) / m
    expected = sum(
        (sum(h == label for h, _ in pairs) / m) * (sum(j == label for _, j in pairs) / m)
        for label in labels
    )
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1.0 - expected)


def agreement(pairs: Iterable[tuple[str, str | None]]) -> Agreement:
    """Agreement of ``(human, judge)`` label pairs, where a judge label of ``None`` is a tie."""
    pairs = list(pairs)
    decided = [(human, judge) for human, judge in pairs if judge is not None]
    agreements = sum(human == judge for human, judge in decided)
    n = len(pairs)
    return Agreement(
        n=n,
        ties=n - len(decided),
        agreements=agreements,
        disagreements=len(decided) - agreements,
        agreement=agreements / len(decided) if decided else None,
        agreement_with_ties=agreements / n if n else None,
        kappa=cohens_kappa(decided),  # type: ignore[arg-type]  # no None left
    )


def prediction(value: float) -> Label | None:
    """The human label a judge value predicts: 1 (candidate, ``output_2``, better) -> "2",
    0 -> "1", anything between (0.5: same, or flipped with the order) -> ``None``, a tie."""
    if value >= 1.0:
        return "2"
    if value <= 0.0:
        return "1"
    return None


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class HumanPair:
    """Two answers to one request and the answer people preferred."""

    input: str
    output_1: str
    """Shown to the judge as the primary's answer (the reference)."""
    output_2: str
    """Shown to the judge as the candidate's answer."""
    label: Label
    category: str = OTHER


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def load_categories(path: Path) -> dict[str, str]:
    """MT-Bench's questions: first turn (whitespace collapsed, case folded) -> category."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the questions file {path}: {exc.strerror or exc}") from exc
    categories: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            categories[_normalise(row["turns"][0])] = str(row["category"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ConfigError(f"cannot read the questions file {path}: line {number} is not a "
                              f"question with turns and a category ({exc!r})") from exc
    return categories


def category_of(text: str, categories: dict[str, str]) -> str:
    """The category of the question ``text`` is (same words, any spacing or case); else
    ``"other"``."""
    return categories.get(_normalise(text), OTHER)


def load_dataset(path: Path, questions: Path | None = None) -> list[HumanPair]:
    """The pairs of a JSON list of ``{input, output_1, output_2, label}`` (label 1 or 2, as a
    number or a string), each with its category from ``questions`` (else ``"other"``).
    A file that cannot be read or is not such a list raises :class:`ConfigError` naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the dataset {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"cannot read the dataset {path}: not JSON ({exc})") from exc
    if not isinstance(data, list) or not data:
        raise ConfigError(f"cannot read the dataset {path}: expected a non-empty JSON list of "
                          "{input, output_1, output_2, label} objects")
    categories = load_categories(questions) if questions is not None else {}
    pairs = []
    for index, row in enumerate(data):
        try:
            label = str(row["label"]).strip()
            if label not in ("1", "2"):
                raise ValueError(f"label must be 1 or 2, got {row['label']!r}")
            texts = [row[key] for key in ("input", "output_1", "output_2")]
            if not all(isinstance(text, str) for text in texts):
                raise ValueError("input, output_1 and output_2 must be strings")
        except (KeyError, TypeError, ValueError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ConfigError(f"cannot read the dataset {path}: item {index}: {detail}") from exc
        pairs.append(HumanPair(*texts, label=label,  # type: ignore[arg-type]
                               category=category_of(texts[0], categories)))
    return pairs


def resolve_dataset(name_or_path: str, *, cwd: Path | None = None) -> Path:
    """The dataset file: ``name_or_path`` itself when it names an existing file (or is not a
    known name), else a known name (``mt_bench_human``) found in a datasets folder."""
    path = Path(name_or_path).expanduser()
    if cwd is not None and not path.is_absolute():
        path = cwd / path
    name = name_or_path.removesuffix(".json")
    if path.exists() or name not in KNOWN_DATASETS:
        return path
    dirs = datasets_dirs(cwd)
    relative = KNOWN_DATASETS[name]
    for folder in dirs:
        for candidate in (folder / relative, folder / Path(relative).name):
            if candidate.is_file():
                return candidate
    looked = ", ".join(str(d) for d in dirs) or "none found"
    raise ConfigError(f"cannot find the dataset {name!r} ({relative}): set ${DATASETS_ENV} to the "
                      f"folder that holds it, or pass the file's path (looked in: {looked})")


def find_questions(dataset: Path, *, cwd: Path | None = None) -> Path | None:
    """MT-Bench's ``question.jsonl`` for a dataset: next to it, in a sibling ``routellm/``
    folder, or in a datasets folder; ``None`` if there is none."""
    folders = [dataset.parent, dataset.parent.parent, *datasets_dirs(cwd)]
    for folder in folders:
        for candidate in (folder / Path(QUESTIONS).name, folder / QUESTIONS):
            if candidate.is_file():
                return candidate
    return None


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class JudgedPair:
    """One pair and what the judge made of it (``prediction`` ``None``: a tie)."""

    index: int
    category: str
    label: Label
    prediction: Label | None
    value: float
    flipped: bool = False
    injection: bool = False


@dataclass
class CalibrationRun:
    """A calibration: the judged pairs, the agreement overall and per category, the run's cost."""

    judge_model: str
    judge_upstream: str
    judge_version: str
    dataset: str
    dataset_path: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=utcnow)
    requested: int = 0
    judged: list[JudgedPair] = field(default_factory=list)
    unreadable: int = 0
    """Pairs whose verdict stayed unreadable after a retry (left out of ``n``)."""
    unavailable: int = 0
    """Pairs whose judge call failed (left out of ``n``)."""
    not_judged: int = 0
    """Pairs never sent because the budget ran out."""
    calls: int = 0
    retries: int = 0
    flips: int = 0
    injections: int = 0
    cost_usd: float = 0.0
    budget_usd: float | None = None
    budget_exhausted: bool = False
    seconds: float = 0.0

    @property
    def overall(self) -> Agreement:
        return agreement((p.label, p.prediction) for p in self.judged)

    @property
    def per_category(self) -> dict[str, Agreement]:
        by: dict[str, list[tuple[str, str | None]]] = {}
        for p in self.judged:
            by.setdefault(p.category, []).append((p.label, p.prediction))
        return {name: agreement(by[name]) for name in sorted(by)}

    def row(self) -> dict[str, Any]:
        """The ``judge_calibrations`` row of this run."""
        overall = self.overall
        return {
            "id": self.id, "created_at": self.created_at, "judge_model": self.judge_model,
            "judge_version": self.judge_version, "dataset": self.dataset, "n": overall.n,
            "ties": overall.ties, "agreement": overall.agreement, "kappa": overall.kappa,
            "per_category": {name: a.to_dict() for name, a in self.per_category.items()},
            "details": {
                "overall": overall.to_dict(), "judge_upstream": self.judge_upstream,
                "dataset_path": self.dataset_path, "requested": self.requested,
                "unreadable": self.unreadable, "unavailable": self.unavailable,
                "not_judged": self.not_judged, "calls": self.calls, "retries": self.retries,
                "flips": self.flips, "injections": self.injections, "cost_usd": self.cost_usd,
                "budget_usd": self.budget_usd, "budget_exhausted": self.budget_exhausted,
                "seconds": round(self.seconds, 3),
                "reference": {name: value for name, value in REFERENCE},
            },
        }

    def lines(self) -> list[str]:
        """The run in a few plain sentences, for the CLI."""
        budget = "" if self.budget_usd is None else f" of ${self.budget_usd:,.4g}"
        out = [
            f"judged {len(self.judged):,} of {self.requested:,} pairs in {self.seconds:.1f}s: "
            f"{self.calls:,} judge calls, ${self.cost_usd:,.4f}{budget}; {self.flips:,} verdicts "
            f"flipped with the order (ties), {self.retries:,} unreadable replies retried"
        ]
        if self.injections:
            out.append(f"{self.injections:,} candidate answers (output_2) failed the injection "
                       "screen without a judge call (counted as predicting label 1)")
        left = []
        if self.unreadable:
            left.append(f"{self.unreadable:,} unreadable after a retry")
        if self.unavailable:
            left.append(f"{self.unavailable:,} judge calls failed")
        if self.not_judged:
            left.append(f"{self.not_judged:,} not sent (budget)")
        if left:
            out.append("left out of n: " + ", ".join(left))
        if self.budget_exhausted:
            out.append(f"judge budget{budget} reached: stopped cleanly (raise [judge] budget_usd "
                       "or --budget, or use --limit)")
        return out


def judge_spec(config: Config) -> JudgeSpec:
    """The judge as ``shadowroute score`` runs it on a task type with the default judge
    settings (``[judge] rubric`` or the built-in one, ``[judge] threshold``); its ``version``
    is the judge scorer version those scores are stored under."""
    if config.judge is None:
        raise ConfigError(_NO_JUDGE, path=config.source)
    spec = plan_for(config, _UNDECLARED_TASK).judge
    if spec is None:  # pragma: no cover - a configured judge always yields a spec
        raise ConfigError(_NO_JUDGE, path=config.source)
    return spec


_NO_JUDGE = ("no [judge] configured: calibrate-judge measures the judge that [judge] model = "
             "\"...\" names; add a [judge] section")


async def calibrate(
    config: Config,
    pairs: Sequence[HumanPair],
    *,
    dataset: str,
    dataset_path: str | None = None,
    concurrency: int | None = None,
    budget_usd: float | None = None,
    provider: Completer | None = None,
    progress: Progress | None = None,
) -> CalibrationRun:
    """Judge every pair with the configured judge; the agreement with the human labels.

    ``concurrency`` overrides ``[judge] concurrency``, ``budget_usd`` ``[judge] budget_usd``
    (the run stops cleanly at the cap); ``provider`` replaces the judge's HTTP provider
    (tests). Raises :class:`ConfigError` without a ``[judge]``, and
    :class:`~shadowroute.scoring.JudgeUnavailable` when no pair could be judged at all.
    """
    spec = judge_spec(config)
    assert config.judge is not None  # judge_spec checked it
    if concurrency is not None:
        config = config.model_copy(update={
            "judge": config.judge.model_copy(update={"concurrency": concurrency})})
    judge = Judge(config, provider=provider, budget_usd=budget_usd)
    run = CalibrationRun(
        judge_model=judge.model.name, judge_upstream=judge.model.model,
        judge_version=spec.version, dataset=dataset, dataset_path=dataset_path,
        requested=len(pairs), budget_usd=judge.budget.cap_usd,
    )
    results: dict[int, JudgedPair] = {}
    last_error: list[str] = []
    done = 0
    started = time.monotonic()
    limiter = anyio.CapacityLimiter(max(1, judge.settings.concurrency))

    async def one(index: int, pair: HumanPair) -> None:
        nonlocal done
        try:
            async with limiter:
                result = await ask(pair)
        finally:
            done += 1
            if progress is not None:
                progress(done, len(pairs))
        if result is None:
            return
        if result.value is None:
            run.unreadable += 1
            return
        details = result.details
        results[index] = JudgedPair(
            index, pair.category, pair.label, prediction(result.value), result.value,
            flipped=bool(details.get("flipped")), injection="injection" in details,
        )

    async def ask(pair: HumanPair) -> ScoreResult | None:
        if run.budget_exhausted:
            run.not_judged += 1
            return None
        messages = [{"role": "user", "content": pair.input}]
        try:
            return await judge.compare(spec, messages, pair.output_1, pair.output_2)
        except BudgetExhausted:
            run.budget_exhausted = True
            run.not_judged += 1
        except JudgeUnavailable as exc:
            run.unavailable += 1
            if not last_error:  # the first failure names the cause; later ones say "circuit open"
                last_error.append(str(exc))
        return None

    try:
        async with anyio.create_task_group() as tg:
            for index, pair in enumerate(pairs):
                tg.start_soon(one, index, pair)
    finally:
        await judge.aclose()
    run.judged = [results[i] for i in sorted(results)]
    run.calls, run.retries, run.flips = judge.calls, judge.retries, judge.flips
    run.injections, run.cost_usd = judge.injections, judge.budget.spent_usd
    run.seconds = time.monotonic() - started
    if not run.judged and run.unavailable:
        raise JudgeUnavailable(f"the judge {judge.model.name!r} could not be asked about any of "
                               f"the {len(pairs):,} pairs: {last_error[0]}")
    return run
