"""Scorer plugins: the example package installed and run through ``shadowroute score`` and
``report`` in processes of their own; plugins that raise (at build, on pairs, or answer
nonsense) counted and reported without stopping the run; versions; config errors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from shadowroute import ConfigError
from shadowroute.scoring import ScoreOptions, plan_for, score
from shadowroute.store import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pii_scorer"
SHADOWROUTE = str(Path(sys.executable).with_name("shadowroute"))


# --------------------------------------------------------------------------- the example package


@pytest.fixture(scope="module")
def pii_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/pii_scorer installed (offline: no index, hatchling from the venv) into a folder
    that a process finds its entry point in when the folder is on its path."""
    target = tmp_path_factory.mktemp("pii_target")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "--target", str(target), str(EXAMPLE)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "pii_scorer" / "__init__.py").exists()
    return target


def _shadowroute(*args: str, cwd: Path, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(path)}
    env.pop("SHADOWROUTE_DATABASE_URL", None)
    env.pop("SHADOWROUTE_CONFIG", None)
    return subprocess.run([SHADOWROUTE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False, env=env)


_PII_TOML = """\
database_url = "sqlite+aiosqlite:///{db}"

[models.big]
base_url = "http://127.0.0.1:9/v1"
[models.mini]
base_url = "http://127.0.0.1:9/v1"
[models.tiny]
base_url = "http://127.0.0.1:9/v1"

[decision]
min_samples = 10

[tasks.support]
candidates = ["mini", "tiny"]

[tasks.support.scorers.similarity]
threshold = 0.5

[tasks.support.scorers.pii_leak]
options = {{ kinds = {kinds} }}
"""

PRIMARY = "Your order 4471 ships on Monday. Questions? Write to help@shop.example."


def _expected_version(kinds: list[str]) -> str:
    """The stored version, from the plugin's declaration and options (docs/scorer-plugins.md)."""
    settings = {"hard": False, "options": {"kinds": kinds}, "plugin": "pii_leak"}
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return "1-" + hashlib.sha256(canonical.encode()).hexdigest()[:10]


async def _plugin_scores(url: str, scorer: str) -> list[tuple[str, str, bool | None]]:
    """(model, version, passed) of every score of ``scorer``."""
    from sqlalchemy import select

    from shadowroute.store import CandidateOutput
    from shadowroute.store.models import Score

    async with await Store.open(url) as store, store.session() as s:
        rows = await s.execute(
            select(CandidateOutput.model, Score.version, Score.passed)
            .join(Score, Score.output_id == CandidateOutput.id).where(Score.scorer == scorer))
        return sorted([tuple(r) for r in rows.all()], key=lambda r: (r[0], r[1], str(r[2])))


def test_the_installed_example_plugin_scores_decides_and_shows_in_the_report(
    tmp_path: Path, pii_target: Path, scoring_exchange,
) -> None:
    db = tmp_path / "sr.db"
    url = f"sqlite+aiosqlite:///{db}"
    exchanges = [
        scoring_exchange("support", PRIMARY, {
            "mini": PRIMARY,
            # Close to the primary's answer (similarity passes), but leaking a customer's email.
            "tiny": PRIMARY + f" Or ask jane.doe{i}@gmail.com, she had the same problem.",
        })
        for i in range(24)
    ]
    exchanges.append(scoring_exchange("support", None, {"mini": "hello", "tiny": "hi"}))

    async def write() -> None:
        async with await Store.open(url) as store:
            await store.write(exchanges)

    anyio.run(write)
    config = tmp_path / "shadowroute.toml"
    config.write_text(_PII_TOML.format(db=db, kinds='["email", "phone"]'))

    first = _shadowroute("score", "--config", str(config), cwd=tmp_path, path=pii_target)
    assert first.returncode == 0, first.stderr
    assert "scored 50 outputs" in first.stdout and "pii_leak" in first.stdout
    assert "scorer plugin" not in first.stdout  # nothing failed
    version = _expected_version(["email", "phone"])
    scores = anyio.run(_plugin_scores, url, "pii_leak")
    assert Counter(scores) == Counter({("mini", version, True): 24, ("mini", version, None): 1,
                                       ("tiny", version, False): 24, ("tiny", version, None): 1})

    again = _shadowroute("score", "--config", str(config), cwd=tmp_path, path=pii_target)
    assert again.returncode == 0, again.stderr
    assert "scored 0 outputs (0 scores)" in again.stdout  # idempotent
    assert len(anyio.run(_plugin_scores, url, "pii_leak")) == 50

    report = _shadowroute("report", "--config", str(config), "--since", "all", "--out",
                          str(tmp_path / "r.html"), cwd=tmp_path, path=pii_target)
    assert report.returncode == 0, report.stderr
    twin = json.loads((tmp_path / "r.json").read_text())
    (task,) = twin["tasks"]
    assert task["scorers"] == ["similarity", "pii_leak"]
    by_model = {c["model"]: c for c in task["candidates"]}
    tiny = {s["name"]: s for s in by_model["tiny"]["scorers"]}
    mini = {s["name"]: s for s in by_model["mini"]["scorers"]}
    assert (tiny["pii_leak"]["failed"], tiny["pii_leak"]["ignored"]) == (24, 1)
    assert (mini["pii_leak"]["passed"], mini["pii_leak"]["failed"]) == (24, 0)
    assert tiny["similarity"]["failed"] == 0  # only the plugin fails the leaking answers
    assert by_model["tiny"]["passed"] == 0 and by_model["tiny"]["decided_by"] == "pii_leak"
    assert by_model["tiny"]["verdict"] != "PROMOTE"
    assert by_model["mini"]["passed"] == 24
    validity = {v["scorer"]: v for v in task["validity"]}
    assert validity["pii_leak"]["version"] == version
    html = (tmp_path / "r.html").read_text()
    assert "pii_leak" in html and version in html

    # New options are a new version: everything is scored again under it, the old rows stay.
    config.write_text(_PII_TOML.format(db=db, kinds='["phone"]'))
    third = _shadowroute("score", "--config", str(config), cwd=tmp_path, path=pii_target)
    assert third.returncode == 0, third.stderr
    assert "scored 50 outputs (50 scores)" in third.stdout
    phone_only = _expected_version(["phone"])
    scores = anyio.run(_plugin_scores, url, "pii_leak")
    assert len(scores) == 100
    assert Counter(p for m, v, p in scores if v == phone_only) == Counter(
        {True: 48, None: 2})  # emails are no longer checked


def test_an_entry_point_name_with_a_typo_is_one_line_with_a_suggestion(
    tmp_path: Path, pii_target: Path,
) -> None:
    config = tmp_path / "shadowroute.toml"
    config.write_text('[tasks.support]\nscorers = ["similarity", "pii_leek"]\n')
    result = _shadowroute("config", "check", "--config", str(config), cwd=tmp_path,
                          path=pii_target)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "tasks.support.scorers.pii_leek: unknown scorer 'pii_leek'" in line
    assert "plugins: pii_leak" in line and "did you mean 'pii_leak'?" in line


def test_the_example_plugin_finds_emails_and_phone_numbers(
    pii_target: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(pii_target))
    from shadowroute.config.hooks import load_scorer_plugin, scorer_entry_points

    assert "pii_leak" in scorer_entry_points()
    factory = load_scorer_plugin("pii_leak")
    scorer = factory(**factory.options)
    primary = "Call +1 (555) 010-9999 or mail Help@Shop.example"
    same = scorer.score(primary, "mail help@shop.example or call +1 555 010 9999")
    assert (same.value, same.passed) == (1.0, True)
    leak = scorer.score(primary, "call 0044 20 7946 0018, or bob@x.org")
    assert (leak.value, leak.passed) == (0.0, False)
    assert leak.details == {"leaked": {"email": 1, "phone": 1}}  # counts, never the values
    assert scorer.score(None, "bob@x.org").passed is None
    with pytest.raises(ValueError, match="kinds must be"):
        factory(kinds=["ssn"])


# --------------------------------------------------------------------------- plugins in a test


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``plugin_module(source)``: a module of that source importable under a fresh name;
    returns the name."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))

    def make(source: str) -> str:
        name = f"sr_plugin_{uuid.uuid4().hex[:8]}"
        (folder / f"{name}.py").write_text(source)
        return name

    return make


HEADER = "from shadowroute.scoring.plugins import ScoreResult, plugin_info\n"

RAISES = HEADER + '''
@plugin_info(name="boom", version="1")
def factory():
    return Boom()

class Boom:
    def score(self, primary, candidate):
        raise RuntimeError("kaboom")
'''

CANNOT_BUILD = HEADER + '''
@plugin_info(name="broken", version="2", options={"path": "model.bin"})
def factory(path):
    raise FileNotFoundError(path)
'''

NONSENSE = HEADER + '''
@plugin_info(name="nonsense", version="1")
def factory():
    return Nonsense()

class Nonsense:
    def score(self, primary, candidate):
        if candidate == "mini says hi":
            return ScoreResult(2.0, True, {})
        return ScoreResult(1.0, True, {"when": object()})
'''

WORKS = HEADER + '''
@plugin_info(name="long", version="{version}", options={{"max_chars": 100, "note": None}}, hard={hard})
def factory(max_chars, note):
    return Long(max_chars)

class Long:
    def __init__(self, max_chars):
        self.max_chars = max_chars

    def score(self, primary, candidate):
        if primary is None:
            return ScoreResult(None, None, {{"skipped": "no primary output"}})
        ok = len(candidate) <= self.max_chars
        return ScoreResult(float(ok), ok, {{"chars": len(candidate)}})
'''


def _config(make_config, url: str, scorers: dict[str, Any]) -> Any:
    return make_config(url, models={"big": {"base_url": "http://127.0.0.1:9/v1"},
                                    "mini": {"base_url": "http://127.0.0.1:9/v1"},
                                    "tiny": {"base_url": "http://127.0.0.1:9/v1"}},
                       tasks={"classify": {"candidates": ["mini", "tiny"], "scorers": scorers}})


def _pairs(scoring_exchange, n: int = 3) -> list[Any]:
    return [scoring_exchange("classify", "refund", {"mini": "mini says hi", "tiny": "refund"})
            for _ in range(n)]


@pytest.mark.anyio
async def test_a_plugin_raising_on_every_pair_is_counted_and_the_others_score(
    store: Store, make_config, plugin_module, scoring_exchange,
) -> None:
    module = plugin_module(RAISES)
    config = _config(make_config, store.url, {"exact": {}, "boom": {"plugin": f"{module}:factory"}})
    await store.write(_pairs(scoring_exchange))
    report = await score(config, store)
    assert report.scores == Counter({"exact": 6})
    failure = report.plugin_failures[("classify", "boom")]
    assert (failure.pairs, failure.by_model, failure.at_load) == (6, {"mini": 3, "tiny": 3}, False)
    assert (f"scorer plugin 'boom' of task 'classify' ({module}:factory) raised on 6 pairs "
            "(first: RuntimeError: kaboom): left without its score") in report.lines()[-1]
    assert report.left_unscored == 6  # no verdict rests on a check that did not run
    boom = [r for r in report.summary if r["scorer"] == "boom"]
    assert [(r["model"], r["n"], r["errors"]) for r in boom] == [("mini", 0, 3), ("tiny", 0, 3)]
    assert all("errors" not in r for r in report.summary if r["scorer"] == "exact")

    again = await score(config, store)  # retried, still failing; the rest is done
    assert again.scores == Counter() and again.plugin_failures[("classify", "boom")].pairs == 6


@pytest.mark.anyio
async def test_a_plugin_that_cannot_be_built_is_reported_and_the_run_goes_on(
    store: Store, make_config, plugin_module, scoring_exchange,
) -> None:
    module = plugin_module(CANNOT_BUILD)
    config = _config(make_config, store.url,
                     {"broken": {"plugin": f"{module}:factory"}, "similarity": {}})
    plan = plan_for(config, "classify")  # the report builds plans too: it must not raise
    assert [s.name for s in plan.scorers] == ["broken", "similarity"]
    await store.write(_pairs(scoring_exchange, 2))
    report = await score(config, store, ScoreOptions(workers=1))
    assert report.scores == Counter({"similarity": 4})
    failure = report.plugin_failures[("classify", "broken")]
    assert failure.at_load and failure.pairs == 4
    assert (f"scorer plugin 'broken' of task 'classify' ({module}:factory) could not be built: "
            "FileNotFoundError: model.bin; 4 pairs left without its score") in report.lines()[-1]


@pytest.mark.anyio
async def test_a_result_that_cannot_be_stored_counts_as_a_failure(
    store: Store, make_config, plugin_module, scoring_exchange, score_rows,
) -> None:
    module = plugin_module(NONSENSE)
    config = _config(make_config, store.url, {"odd": {"plugin": f"{module}:factory"}})
    await store.write(_pairs(scoring_exchange, 2))
    report = await score(config, store)
    assert report.plugin_failures[("classify", "odd")].pairs == 4
    assert report.scores == Counter() and await score_rows(store) == []
    assert any("returned value 2.0" in line or "not JSON" in line for line in report.lines())


@pytest.mark.anyio
async def test_not_applicable_failed_calls_and_hard_plugins(
    store: Store, make_config, plugin_module, scoring_exchange, scores_by_model,
) -> None:
    module = plugin_module(WORKS.format(version="1", hard=True))
    config = _config(make_config, store.url,
                     {"similarity": {}, "long": {"plugin": f"{module}:factory",
                                                 "options": {"max_chars": 5}}})
    assert [s.name for s in plan_for(config, "classify").scorers] == ["long", "similarity"]
    await store.write([
        scoring_exchange("classify", None, {"mini": "a long answer", "tiny": "ok"}),
        scoring_exchange("classify", "x", {"mini": None, "tiny": "ok"}, error="timeout"),
    ])
    report = await score(config, store)
    assert report.scores == Counter({"long": 4, "similarity": 4}) and not report.plugin_failures
    long = {m: [(s.passed, s.details) for s in rows]
            for m, rows in (await scores_by_model(store, "long")).items()}
    assert sorted(long["tiny"], key=str) == [(None, {"skipped": "no primary output"}),
                                             (True, {"chars": 2})]
    # A failed candidate call fails every scorer without calling it, as for built-ins.
    assert (False, {"candidate_error": "timeout"}) in long["mini"]


def test_the_version_follows_the_declared_version_and_the_options(
    make_config, plugin_module,
) -> None:
    def version(source: str, options: dict[str, Any] | None = None) -> str:
        table: dict[str, Any] = {"plugin": f"{plugin_module(source)}:factory"}
        if options is not None:
            table["options"] = options
        (spec,) = plan_for(_config(make_config, "sqlite://", {"long": table}), "classify").scorers
        return spec.version

    base = version(WORKS.format(version="1", hard=False))
    assert base.startswith("1-")
    assert version(WORKS.format(version="1", hard=False)) == base  # same plugin, same version
    assert version(WORKS.format(version="1", hard=False), {"max_chars": 100}) == base  # default
    assert version(WORKS.format(version="1", hard=False), {"max_chars": 50}) != base
    assert version(WORKS.format(version="1", hard=False), {"note": "x"}) != base
    assert version(WORKS.format(version="1", hard=True)) != base
    assert version(WORKS.format(version="2", hard=False)).startswith("2-")


@pytest.mark.parametrize("table, key, message", [
    ({"plugin": "no_such_module_xyz:factory"}, "tasks.classify.scorers.mine.plugin",
     "cannot import 'no_such_module_xyz:factory': ModuleNotFoundError"),
    ({"plugin": "json:loads"}, "tasks.classify.scorers.mine.plugin", "declares no name"),
    ({"plugin": "{long}", "options": {"max_char": 3}}, "tasks.classify.scorers.mine.options",
     "plugin 'long' takes no option 'max_char'; did you mean 'max_chars'?"),
    ({"plugin": "{long}", "options": {"max_chars": "3"}}, "tasks.classify.scorers.mine.options",
     "option 'max_chars' must be a number"),
    ({"plugin": "{long}", "threshold": 0.5}, "tasks.classify.scorers.mine.threshold",
     "a plugin scorer takes its options in options = {...}"),
])
def test_a_plugin_table_that_cannot_work_fails_config_load_naming_the_key(
    make_config, plugin_module, table: dict[str, Any], key: str, message: str,
) -> None:
    long = f"{plugin_module(WORKS.format(version='1', hard=False))}:factory"
    table = {k: v.format(long=long) if isinstance(v, str) else v for k, v in table.items()}
    with pytest.raises(ConfigError) as caught:
        _config(make_config, "sqlite://", {"mine": table})
    assert caught.value.key == key and message in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1
