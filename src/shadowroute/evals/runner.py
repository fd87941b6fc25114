"""Run an eval. Two kinds:

* a **pipeline** eval (:attr:`Eval.load`, ``run_eval``): find its data and config, load the
  data into a throw-away database, score it and decide with the normal scoring job and report
  builder;
* a **measurement** (:attr:`Eval.measure`, ``measure_eval``): find its data and compute
  figures from it directly, with nothing stored and no config (``shadowroute eval scorers``).

Data is looked for in ``--data``, else ``$SHADOWROUTE_DATASETS``, else the first
``shared/datasets`` folder above the current directory, else the project's own copy
(``evals/datasets/``), else a ``shared/datasets`` folder above this package's checkout
(:func:`shadowroute.datasets.shared_datasets_dirs`): the first folder holding the eval's data
files, directly or in a folder named after the eval. The config of a pipeline eval is
``evals/<name>/shadowroute.toml`` of the checkout (or of the current directory).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..config import Config, load_config
from ..datasets import DATASETS_ENV, shared_datasets_dirs
from ..errors import ConfigError
from ..report import Report, build_report
from ..scoring import ScoreRunReport, run_scoring
from ..store import Store
from .agreement import aligned

__all__ = ["DATASETS_ENV", "Eval", "EvalRun", "Measured", "find_config", "find_data",
           "measure_eval", "run_eval"]


Loader = Callable[[Store, Path], Awaitable[dict[str, int]]]
"""Writes the eval's exchanges to the store; returns how many were read per source."""


class Measured(Protocol):
    """What a measurement returns: its text, and its JSON (``--json``)."""

    def lines(self) -> list[str]: ...

    def to_json(self) -> str: ...


Measure = Callable[[Path], Measured]
"""Computes a measurement from the data folder."""


@dataclass(frozen=True, slots=True)
class Eval:
    """An offline evaluation on real data: ``shadowroute eval <name>``. Exactly one of
    ``load`` (a pipeline eval) and ``measure`` (a measurement) is set."""

    name: str
    description: str
    data_files: tuple[str, ...]
    """Files the eval's data folder must hold (paths relative to it)."""
    load: Loader | None = None
    """Pipeline eval: writes the exchanges to the store (:func:`run_eval`)."""
    measure: Measure | None = None
    """Measurement: computes its figures from the data folder (:func:`measure_eval`)."""

    def __post_init__(self) -> None:
        if (self.load is None) == (self.measure is None):
            raise ValueError(f"eval {self.name!r}: set exactly one of load and measure")


@dataclass
class EvalRun:
    """What an eval run loaded, scored and decided."""

    eval: Eval
    data: Path
    config: Config
    database: str
    loaded: dict[str, int]
    scoring: ScoreRunReport
    report: Report

    def rows(self) -> list[dict[str, Any]]:
        """One row per task type x candidate: verdict, n, pass rate, the lower bound the
        verdict used (the always-valid one when ``sequential``), and the reason."""
        out = []
        for task in self.report.tasks:
            for c in task.candidates:
                bound = c.sequential_lower if c.sequential_lower is not None else c.lower_bound
                out.append({"task": task.task, "model": c.model, "verdict": c.verdict, "n": c.n,
                            "passed": c.passed, "pass_rate": c.pass_rate, "lower_bound": bound,
                            "reason": c.reason})
        return out

    def lines(self) -> list[str]:
        """The run as plain text: a summary, then an aligned table (columns two spaces apart
        or more), one line per task type x candidate."""
        loaded = ", ".join(f"{n:,} {source}" for source, n in self.loaded.items())
        before = sum(self.loaded.values()) - self.scoring.outputs
        already = f" ({before:,} were scored already)" if before > 0 else ""
        head = [
            (f"{self.eval.name}: read {sum(self.loaded.values()):,} exchanges ({loaded}) "
             f"from {self.data}"),
            (f"scored {self.scoring.outputs:,} outputs{already} in {self.scoring.seconds:.1f}s; "
             f"database {self.database}"),
        ]
        table = [("task", "candidate", "verdict", "n", "pass rate", "lower bound", "reason")]
        for r in self.rows():
            table.append((r["task"], r["model"], r["verdict"], f"{r['n']:,}", _pct(r["pass_rate"]),
                          _pct(r["lower_bound"]), r["reason"]))
        return head + aligned(table)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _holding(folder: Path, spec: Eval) -> Path | None:
    """``folder`` or ``folder/<name>`` when it holds every data file of the eval."""
    for candidate in (folder, folder / spec.name):
        if all((candidate / name).is_file() for name in spec.data_files):
            return candidate
    return None


def _checkout() -> Path:
    return Path(__file__).resolve().parent


def find_data(spec: Eval, given: Path | None = None) -> Path:
    """The folder holding the eval's data files (see the module doc for the search order);
    :class:`ConfigError` naming ``--data`` and ``$SHADOWROUTE_DATASETS`` when none does."""
    files = ", ".join(spec.data_files)
    for value, key in ((given, "--data"), (os.environ.get(DATASETS_ENV) or None, DATASETS_ENV)):
        if value is None:
            continue
        folder = Path(value).expanduser()
        found = _holding(folder, spec)
        if found is None:
            raise ConfigError(f"{str(folder)!r} holds neither the {spec.name} data files "
                              f"({files}) nor a {spec.name}/ folder with them", key=key)
        return found.resolve()
    for datasets in shared_datasets_dirs(Path.cwd(), _checkout()):
        if (found := _holding(datasets, spec)) is not None:
            return found.resolve()
    folder = "" if any("/" in name for name in spec.data_files) else f"{spec.name}/"
    raise ConfigError(
        f"the {spec.name} data ({files}) was not found: pass --data DIR or set "
        f"${DATASETS_ENV} (no shared/datasets/{folder} with it above {Path.cwd()} or "
        f"{_checkout()})",
        key="--data",
    )


def find_config(spec: Eval, given: Path | None = None) -> Path:
    """``given``, else ``evals/<name>/shadowroute.toml`` above this package's checkout or the
    current directory."""
    if given is not None:
        return given
    relative = Path("evals") / spec.name / "shadowroute.toml"
    for start in (_checkout(), Path.cwd()):
        for folder in (start, *start.parents):
            if (folder / relative).is_file():
                return folder / relative
    raise ConfigError(f"{relative} not found above {_checkout()} or {Path.cwd()}: it ships with "
                      "the source checkout; pass --config PATH", key="--config")


async def run_eval(
    spec: Eval,
    *,
    data: Path | None = None,
    database_url: str | None = None,
    config: Path | None = None,
    examples: int = 3,
) -> EvalRun:
    """Load the eval into ``database_url`` (a throw-away SQLite file when ``None``), score it
    with :func:`~shadowroute.scoring.run_scoring` and decide with
    :func:`~shadowroute.report.build_report`. ``$SHADOWROUTE_DATABASE_URL`` is ignored: an
    eval never writes to the production database unless asked to with ``database_url``."""
    load = spec.load
    if load is None:
        raise ConfigError(f"the {spec.name} eval is a measurement: nothing is loaded, scored "
                          "or decided (see measure_eval)", key="NAME")
    folder = find_data(spec, data)
    path = find_config(spec, config)
    with tempfile.TemporaryDirectory(prefix=f"shadowroute-eval-{spec.name}-") as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'eval.db'}"
        settings = load_config(path).model_copy(update={"database_url": url})
        async with await Store.open(url, auto_migrate=True) as store:
            loaded = await load(store, folder)
            where = store.url if database_url else "(temporary SQLite, deleted after the run)"
        scoring = await run_scoring(settings)
        async with await Store.open(url) as store:
            report = await build_report(settings, store, since=None, examples=examples)
    return EvalRun(spec, folder, settings, where, loaded, scoring, report)


def measure_eval(spec: Eval, *, data: Path | None = None) -> Measured:
    """Find the measurement's data (see the module doc) and compute it; nothing is stored."""
    if spec.measure is None:
        raise ConfigError(f"the {spec.name} eval loads, scores and decides: run it with "
                          "run_eval", key="NAME")
    return spec.measure(find_data(spec, data))
