"""``shadowroute eval scorers`` on the data shipped in ``evals/datasets/``: the validity table,
checked against figures computed here, independently, from the raw files with plain Python
(and rapidfuzz itself for the similarity rows); the 2x2 arithmetic; the errors; and the copy
of the printed table in ``evals/README.md``."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from shadowroute.datasets import project_datasets_dir
from shadowroute.evals import EVALS, get_eval
from shadowroute.evals.agreement import Agreement
from shadowroute.evals.scorers import THRESHOLDS, grid

ROOT = Path(__file__).resolve().parents[2]
PRIMARY = "gpt-4-1106-preview"
MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1"


@pytest.fixture(scope="module")
def datasets() -> Path:
    found = project_datasets_dir()
    assert found is not None, "the eval data ships in evals/datasets/ of the checkout"
    return found


@pytest.fixture(scope="module")
def gsm8k(datasets: Path) -> list[tuple[str, str, bool]]:
    """(GPT-4's answer, Mixtral's answer, truth) per problem: Mixtral right or GPT-4 wrong."""
    with (datasets / "routellm" / "gsm8k_responses.csv").open(newline="", encoding="utf-8") as f:
        return [(row[f"{PRIMARY}_response"], row[f"{MIXTRAL}_response"],
                 row[MIXTRAL] == "True" or row[PRIMARY] == "False") for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def mt_bench(datasets: Path) -> list[tuple[str, str, bool]]:
    """(output_1, output_2, truth) per pair: people preferred output_2."""
    items = json.loads((datasets / "llmbar" / "mt_bench_human.json").read_text(encoding="utf-8"))
    return [(x["output_1"], x["output_2"], x["label"] == 2) for x in items]


@pytest.fixture(scope="module")
def measured(datasets: Path, tmp_path_factory: pytest.TempPathFactory,
             cli) -> tuple[Any, list[str]]:
    """One run of the real command on the shipped data: (its JSON, its stdout lines)."""
    tmp = tmp_path_factory.mktemp("scorers")
    out = tmp / "out" / "scorers.json"
    result = cli("eval", "scorers", "--data", str(datasets), "--json", str(out), cwd=tmp)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text()), result.stdout.splitlines()


def row(twin: Any, source: str, scorer: str) -> dict[str, Any]:
    found = [r for r in twin["rows"] if r["source"] == source and r["scorer"] == scorer]
    assert len(found) == 1, (source, scorer)
    return found[0]


def ratio_passes(pairs: list[tuple[str, str, bool]], threshold: float) -> tuple[int, int]:
    """(pairs passed, of them truly as good) by rapidfuzz's ratio on processed text."""
    passed = good = 0
    for a, b, truth in pairs:
        pa, pb = default_process(a), default_process(b)
        if (1.0 if pa == pb else fuzz.ratio(pa, pb) / 100) >= threshold:
            passed += 1
            good += truth
    return passed, good


# --------------------------------------------------------------------------- the figures


def test_the_sources_and_the_truth_match_the_raw_files(measured, gsm8k, mt_bench) -> None:
    twin, _ = measured
    sources = {s["name"]: s for s in twin["sources"]}
    assert (sources["gsm8k"]["pairs"], sources["gsm8k"]["good"]) == (
        len(gsm8k), sum(t for *_, t in gsm8k)) == (1319, 936)
    assert (sources["mt-bench-human"]["pairs"], sources["mt-bench-human"]["good"]) == (
        len(mt_bench), sum(t for *_, t in mt_bench)) == (200, 99)
    for r in twin["rows"]:  # every row accounts for every pair of its source
        assert r["n"] + r["not_applicable"] == sources[r["source"]]["pairs"], r["scorer"]
        assert r["n"] == r["tp"] + r["fp"] + r["fn"] + r["tn"]


def test_correctness_is_the_truth_itself_on_gsm8k(measured) -> None:
    twin, _ = measured
    r = row(twin, "gsm8k", "correctness")
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (936, 0, 0, 383)
    assert (r["precision"], r["recall"], r["accuracy"], r["kappa"]) == (1.0, 1.0, 1.0, 1.0)
    assert not [x for x in twin["rows"] if x["source"] == "mt-bench-human"
                and x["scorer"] == "correctness"]  # no recorded outcomes there: left out
    assert "correctness: applies to no mt-bench-human pair (left out)" in twin["notes"]


@pytest.mark.parametrize("threshold", [0.6, 0.8])
def test_similarity_ratio_matches_rapidfuzz_over_the_raw_files(
    measured, gsm8k, threshold: float,
) -> None:
    """GSM8K answers are text (no JSON, which the scorer compares field by field), so the
    scorer's figures are rapidfuzz's ratio over the raw answers."""
    twin, _ = measured
    assert not [a for pair in gsm8k for a in pair[:2] if a.strip()[:1] in ("{", "[")]
    passed, good = ratio_passes(gsm8k, threshold)
    r = row(twin, "gsm8k", f"similarity ratio >= {threshold:g}")
    assert (r["tp"] + r["fp"], r["tp"]) == (passed, good)
    assert r["pass_rate"] == pytest.approx(passed / len(gsm8k))
    assert r["precision"] == pytest.approx(good / passed)
    assert r["recall"] == pytest.approx(good / 936)
    # 0.8 is ratio's default: 52 passed, 48 of them truly as good (precision 0.923).
    if threshold == 0.8:
        assert (passed, good) == (52, 48)


def test_exact_on_mt_bench_passes_no_open_ended_answer(measured, mt_bench) -> None:
    twin, _ = measured
    same = sum(" ".join(a.split()).casefold() == " ".join(b.split()).casefold()
               for a, b, _ in mt_bench)
    r = row(twin, "mt-bench-human", "exact")
    assert (r["n"], r["tp"] + r["fp"], same) == (200, 0, 0)
    assert (r["tn"], r["fn"]) == (101, 99) and r["kappa"] == 0.0


def test_extract_meets_the_acceptance_figures_and_similarity_does_not(measured) -> None:
    twin, _ = measured
    extract = row(twin, "gsm8k", "extract")
    assert extract["not_applicable"] == 0
    assert extract["precision"] >= 0.97 and extract["recall"] >= 0.80
    assert extract["kappa"] > 0.6
    default = next(r for r in twin["rows"] if r["source"] == "gsm8k"
                   and r["scorer"].startswith("default: "))
    assert default["kappa"] < 0.4  # text similarity says little about a math answer
    for r in twin["rows"]:  # nor about which open-ended answer people prefer
        if r["source"] == "mt-bench-human" and r["scorer"].startswith("similarity"):
            assert r["kappa"] is None or r["kappa"] < 0.2, r["scorer"]


def test_the_grid_has_every_method_at_every_threshold(measured) -> None:
    twin, _ = measured
    scorers = {r["scorer"] for r in twin["rows"] if r["source"] == "gsm8k"}
    from shadowroute.scoring.scorers import SIMILARITY_METHODS

    for method in SIMILARITY_METHODS:
        for threshold in THRESHOLDS:
            assert f"similarity {method} >= {threshold:g}" in scorers
    assert {"exact", "extract", "correctness"} <= scorers
    assert [r.label for r in grid()][:3] == ["default", "exact", "extract"]
    similarity = row(twin, "gsm8k", "similarity WRatio >= 0.9")
    assert similarity["scorers"][0]["settings"]["method"] == "WRatio"
    assert similarity["scorers"][0]["settings"]["threshold"] == 0.9


# --------------------------------------------------------------------------- the table


def test_the_printed_table_is_the_json(measured) -> None:
    twin, lines = measured
    assert lines[0].startswith("scorers: 24 scorer configurations on 1,519 pairs")
    assert lines[1].startswith("gsm8k: 1,319 GSM8K problems") and "(936 of 1,319, 71.0%)" in lines[1]
    header = lines.index(next(line for line in lines if line.startswith("source ")))
    assert re.split(r"\s{2,}", lines[header]) == [
        "source", "scorer", "n", "n/a", "pass rate", "precision", "recall", "accuracy", "kappa"]
    body = [re.split(r"\s{2,}", line) for line in lines[header + 1:header + 1 + len(twin["rows"])]]
    for cells, r in zip(body, twin["rows"], strict=True):
        assert cells[:4] == [r["source"], r["scorer"], f"{r['n']:,}", f"{r['not_applicable']:,}"]
        shown = ["-" if r[k] is None else f"{r[k]:.1%}"
                 for k in ("pass_rate", "precision", "recall", "accuracy")]
        assert cells[4:8] == shown
        assert cells[8] == ("-" if r["kappa"] is None else f"{r['kappa']:.2f}")
    assert any("calibrate-judge" in line for line in lines if line.startswith("note: "))
    assert lines[-1].startswith("json: ")


def test_evals_readme_holds_the_table_as_printed(measured) -> None:
    """The table pasted in evals/README.md is the one the command prints: when a scorer's
    results change, run `shadowroute eval scorers` and paste its output there."""
    _, lines = measured
    readme = (ROOT / "evals" / "README.md").read_text()
    block = readme.split("$ shadowroute eval scorers\n", 1)[1].split("```", 1)[0].splitlines()
    pasted = [line for line in block if re.match(r"(source|gsm8k|mt-bench-human)\s", line)]
    printed = [line for line in lines if re.match(r"(source|gsm8k|mt-bench-human)\s", line)]
    assert pasted == printed, "evals/README.md: paste the output of `shadowroute eval scorers`"
    # docs/offline.md shows rows of it, as printed.
    section = (ROOT / "docs" / "offline.md").read_text().split("## Evals: `shadowroute eval`", 1)[1]
    shown = [line for line in section.split("\n## ", 1)[0].splitlines()
             if re.match(r"(gsm8k|mt-bench-human)\s", line)]
    assert shown and set(shown) <= set(printed), "docs/offline.md: rows of `shadowroute eval scorers`"


# --------------------------------------------------------------------------- arithmetic, errors


def test_the_2x2_arithmetic() -> None:
    a = Agreement("s", "x", [])
    for passed, truth, times in ((True, True, 20), (True, False, 5), (False, True, 10),
                                 (False, False, 15), (None, True, 3)):
        for _ in range(times):
            a.add(passed, truth)
    assert (a.n, a.not_applicable) == (50, 3)
    assert (a.pass_rate, a.precision, a.recall, a.accuracy) == (0.5, 0.8, 2 / 3, 0.7)
    # p_o = 0.7, p_e = (25 * 30 + 25 * 20) / 50^2 = 0.5: kappa = (0.7 - 0.5) / (1 - 0.5)
    assert a.kappa == pytest.approx(0.4)
    always = Agreement("s", "x", [])
    for _ in range(4):
        always.add(True, True)  # both always "pass": chance agreement is 1, kappa undefined
    assert (always.kappa, always.precision) == (None, 1.0)
    empty = Agreement("s", "x", [])
    assert (empty.n, empty.kappa, empty.precision, empty.pass_rate) == (0, None, None, None)
    assert empty.cells()[4:] == ("-", "-", "-", "-", "-")


def test_errors_are_one_line(tmp_path: Path, cli, datasets: Path) -> None:
    assert set(EVALS) == {"routellm", "scorers"} and get_eval("scorers").load is None
    for option in ("--database-url", "--config"):
        result = cli("eval", "scorers", option, "x", cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip() == (f"error: {option}: the scorers eval stores nothing and "
                                         f"reads no config: leave {option} out")
    only_routellm = datasets / "routellm"  # the scorers eval needs the datasets folder
    result = cli("eval", "scorers", "--data", str(only_routellm), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: --data: ") and "llmbar/mt_bench_human.json" in result.stderr


def test_bad_data_names_the_file(tmp_path: Path, cli, datasets: Path) -> None:
    (tmp_path / "routellm").mkdir()
    (tmp_path / "llmbar").mkdir()
    csv_text = (datasets / "routellm" / "gsm8k_responses.csv").read_text(encoding="utf-8")
    (tmp_path / "routellm" / "gsm8k_responses.csv").write_text(csv_text, encoding="utf-8")
    (tmp_path / "llmbar" / "mt_bench_human.json").write_text(
        json.dumps([{"input": "q", "output_1": "a", "output_2": "b", "label": 3}]))
    result = cli("eval", "scorers", "--data", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "mt_bench_human.json: item 0: label is 3, not 1 or 2" in result.stderr
