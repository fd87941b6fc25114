"""`shadowroute calibrate-judge`: the agreement arithmetic on a hand-checked set, the categories
of the MT-Bench pairs, finding and reading the dataset, the judge run (a scripted judge on the
real pairs, the budget, the fake LLM server end to end through the CLI, both backends), and the
report showing the calibration and warning below `[judge] min_agreement`."""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from shadowroute.cli.tables import render_verdicts
from shadowroute.config import Config, load_config
from shadowroute.errors import ConfigError
from shadowroute.fakellm import FakeLLMServer, default_settings
from shadowroute.records import Completion, utcnow
from shadowroute.report import build_report, render_html, report_json
from shadowroute.scoring import plan_for
from shadowroute.scoring.calibration import (
    HumanPair,
    agreement,
    calibrate,
    category_of,
    cohens_kappa,
    find_questions,
    judge_spec,
    load_categories,
    load_dataset,
    prediction,
    resolve_dataset,
)
from shadowroute.store import Store
from shadowroute.store.queries.calibrations import (
    calibrations,
    latest_calibration,
    save_calibration,
)

ROOT = Path(__file__).resolve().parent.parent


def _dataset() -> Path:
    try:
        path = resolve_dataset("mt_bench_human", cwd=ROOT)
    except ConfigError as exc:
        pytest.skip(str(exc))
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    return path


@pytest.fixture(scope="module")
def mt_bench() -> Path:
    """The real MT-Bench human-judgement pairs (../shared/datasets; read, never copied)."""
    return _dataset()


def judge_config(base_url: str = "http://127.0.0.1:9/v1", *, db_url: str = "sqlite+aiosqlite://",
                 judge: dict[str, Any] | None = None, price: float = 0.0, **tasks: Any) -> Config:
    return load_config(data={
        "database_url": db_url,
        "models": {
            "big": {"base_url": "http://127.0.0.1:9/v1"},
            "mini": {"base_url": "http://127.0.0.1:9/v1"},
            "judge": {"base_url": base_url, "input_price": price, "output_price": price},
        },
        "judge": {"model": "judge", **(judge or {})},
        "tasks": tasks,
    })


# --------------------------------------------------------------------------- 1. arithmetic

# (human label, judge label; None = the judge called it a tie)
HAND_CHECKED = [
    ("1", "1"), ("1", "1"), ("1", "1"), ("1", "2"), ("2", "2"), ("2", "2"),
    ("2", "1"), ("2", None), ("1", None), ("2", "2"), ("1", "1"),
]


def test_agreement_and_kappa_on_a_hand_checked_set() -> None:
    """Worked out by hand. n = 11 pairs, 2 ties (pairs 8 and 9) -> m = 9 decided pairs.
    Agreements: pairs 1, 2, 3, 5, 6, 10, 11 = 7; disagreements: pairs 4 and 7 = 2.
    Agreement, ties left out: 7/9 = 0.7778; ties counted as misses: 7/11 = 0.6364.
    Kappa over the 9 decided pairs: people said "1" on 5 (1, 2, 3, 4, 11) and "2" on 4
    (5, 6, 7, 10); the judge said "1" on 5 (1, 2, 3, 7, 11) and "2" on 4 (4, 5, 6, 10).
    p_o = 7/9 = 63/81; p_e = (5/9)(5/9) + (4/9)(4/9) = 25/81 + 16/81 = 41/81;
    kappa = (63/81 - 41/81) / (1 - 41/81) = 22/40 = 0.55."""
    a = agreement(HAND_CHECKED)
    assert (a.n, a.ties, a.agreements, a.disagreements) == (11, 2, 7, 2)
    assert a.agreement == pytest.approx(7 / 9)
    assert a.agreement_with_ties == pytest.approx(7 / 11)
    assert a.kappa == pytest.approx(0.55)
    assert cohens_kappa([(h, j) for h, j in HAND_CHECKED if j is not None]) == pytest.approx(0.55)


@pytest.mark.parametrize("pairs, expected", [
    ([], None),                                             # nothing to compare
    ([("1", "1"), ("2", "2"), ("1", "1")], 1.0),            # perfect, both labels used
    ([("1", "2"), ("2", "1")], -1.0),                       # p_o 0, p_e 1/2: (0 - .5)/.5
    ([("1", "1"), ("1", "1")], None),                       # one label only: p_e = 1
    ([("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")], 0.0),  # p_o 1/2 = p_e: chance level
    # p_o = 3/4; people 3x"1" 1x"2", judge 2x"1" 2x"2": p_e = 3/4*1/2 + 1/4*1/2 = 1/2 -> 0.5
    ([("1", "1"), ("1", "1"), ("1", "2"), ("2", "2")], 0.5),
])
def test_kappa_edge_cases(pairs: list[tuple[str, str]], expected: float | None) -> None:
    kappa = cohens_kappa(pairs)
    assert kappa == (None if expected is None else pytest.approx(expected))


def test_all_ties_leave_agreement_and_kappa_undefined() -> None:
    a = agreement([("1", None), ("2", None), ("2", None)])
    assert (a.n, a.ties, a.agreements, a.disagreements) == (3, 3, 0, 0)
    assert a.agreement is None and a.kappa is None and a.agreement_with_ties == 0.0
    assert agreement([]).agreement_with_ties is None


def test_judge_values_predict_labels() -> None:
    """The candidate is output_2: "better" (1) predicts label 2, "worse" (0) label 1."""
    assert [prediction(v) for v in (1.0, 0.0, 0.5)] == ["2", "1", None]


# --------------------------------------------------------------------------- 2. data


def test_categories_come_from_the_mt_bench_questions(mt_bench: Path, tmp_path: Path) -> None:
    questions = find_questions(mt_bench, cwd=ROOT)
    assert questions is not None and questions.name == "question.jsonl"
    pairs = load_dataset(mt_bench, questions)
    assert len(pairs) == 200 and Counter(p.label for p in pairs) == {"1": 101, "2": 99}
    # Every input is one of the 80 questions' first turn.
    assert Counter(p.category for p in pairs) == {
        "humanities": 34, "roleplay": 33, "extraction": 27, "stem": 25, "writing": 24,
        "coding": 22, "reasoning": 20, "math": 15,
    }
    # Matching ignores spacing and case; anything else is "other".
    lines = [{"question_id": 1, "category": "math", "turns": ["What is  2+2?\n", "and 3+3?"]}]
    (tmp_path / "q.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    categories = load_categories(tmp_path / "q.jsonl")
    assert category_of(" what is 2+2? ", categories) == "math"
    assert category_of("What is 2+3?", categories) == "other"
    assert category_of("and 3+3?", categories) == "other"  # only the first turn counts
    # Without questions every pair is "other".
    assert {p.category for p in load_dataset(mt_bench)} == {"other"}


def test_a_dataset_is_found_by_path_or_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = [{"input": "q", "output_1": "a", "output_2": "b", "label": "2"}]
    own = tmp_path / "mine.json"
    own.write_text(json.dumps(data))
    assert resolve_dataset(str(own)) == own
    # By name: $SHADOWROUTE_DATASETS first ...
    env_root = tmp_path / "env"
    (env_root / "llmbar").mkdir(parents=True)
    (env_root / "llmbar" / "mt_bench_human.json").write_text(json.dumps(data))
    (env_root / "routellm").mkdir()
    (env_root / "routellm" / "question.jsonl").write_text("")
    monkeypatch.setenv("SHADOWROUTE_DATASETS", str(env_root))
    found = resolve_dataset("mt_bench_human", cwd=tmp_path)
    assert found == env_root / "llmbar" / "mt_bench_human.json"
    assert find_questions(found) == env_root / "routellm" / "question.jsonl"
    # ... then the first shared/datasets folder above the working directory.
    monkeypatch.delenv("SHADOWROUTE_DATASETS")
    walked = tmp_path / "shared" / "datasets" / "llmbar"
    walked.mkdir(parents=True)
    (walked / "mt_bench_human.json").write_text(json.dumps(data))
    deep = tmp_path / "project" / "sub"
    deep.mkdir(parents=True)
    assert resolve_dataset("mt_bench_human", cwd=deep) == walked / "mt_bench_human.json"
    assert load_dataset(walked / "mt_bench_human.json") == [HumanPair("q", "a", "b", "2")]


@pytest.mark.parametrize("content, expected", [
    (None, "No such file"),
    ("{not json", "not JSON"),
    ('{"input": "x"}', "expected a non-empty JSON list"),
    ("[]", "expected a non-empty JSON list"),
    ('[{"input": "q", "output_1": "a", "output_2": "b", "label": 3}]', "item 0: label must be 1 or 2"),
    ('[{"input": "q", "output_1": "a", "label": 1}]', "item 0: missing 'output_2'"),
])
def test_an_unreadable_dataset_is_one_error_naming_the_file(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "pairs.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_dataset(path)
    message = str(info.value)
    assert message.startswith(f"cannot read the dataset {path}: ") and expected in message
    assert "\n" not in message


# --------------------------------------------------------------------------- 3. the judge run


def test_the_calibration_runs_the_judge_scorers_version() -> None:
    """The stored version is the one `shadowroute score` stores judge scores under for a task
    type with the default judge settings (model, prompt, rubric, threshold)."""
    config = judge_config(judge={"rubric": "Correct beats wrong."},
                          t={"candidates": ["mini"], "scorers": ["similarity", "judge"]})
    spec = judge_spec(config)
    task_judge = plan_for(config, "t").judge
    assert task_judge is not None and spec.version == task_judge.version
    assert spec.rubric == "Correct beats wrong." and spec.threshold == 0.5
    other = judge_config(judge={"rubric": "Something else."})
    assert judge_spec(other).version != spec.version
    with pytest.raises(ConfigError, match=r"no \[judge\] configured"):
        judge_spec(load_config(data={}))


class LengthJudge:
    """A judge provider that prefers the longer response (the same verdict in both orders)."""

    def __init__(self, price: float = 0.0) -> None:
        self.price = price
        self.calls = 0

    async def complete(self, request: dict[str, Any]) -> Completion:
        import re

        self.calls += 1
        prompt = request["messages"][1]["content"]
        blocks = dict(re.findall(r"<<(RESPONSE-[AB])-[0-9a-f]+>>\n(.*?)\n<<END-\1", prompt, re.S))
        a, b = len(blocks["RESPONSE-A"]), len(blocks["RESPONSE-B"])
        verdict = "A" if a > b else "B" if b > a else "same"
        return Completion(model="judge", text=json.dumps({"verdict": verdict, "reason": "longer"}),
                          response={}, input_tokens=1000, output_tokens=20, cost_usd=self.price)

    async def aclose(self) -> None:
        pass


def test_a_scripted_judge_on_the_real_pairs_agrees_as_counted_independently(mt_bench: Path) -> None:
    """The length judge's agreement, counted straight from the data: it predicts label 2 when
    output_2 (the candidate) is longer, 1 when shorter, and ties on the 5 pairs of equal length.
    Kappa from the 2x2 table's closed form 2(ad - bc) / ((a + b)(b + d) + (a + c)(c + d))."""
    pairs = load_dataset(mt_bench, find_questions(mt_bench, cwd=ROOT))
    provider = LengthJudge()
    run = anyio.run(lambda: calibrate(judge_config(), pairs, dataset="mt_bench_human",
                                      provider=provider, concurrency=16))
    predicted = ["2" if len(p.output_2) > len(p.output_1) else
                 "1" if len(p.output_2) < len(p.output_1) else None for p in pairs]
    table = Counter((p.label, guess) for p, guess in zip(pairs, predicted, strict=True))
    a, b, c, d = table["1", "1"], table["1", "2"], table["2", "1"], table["2", "2"]
    assert a + b + c + d == 195
    overall = run.overall
    assert (overall.n, overall.ties, overall.agreements) == (200, 5, a + d)
    assert overall.agreement == pytest.approx((a + d) / 195)
    assert overall.agreement_with_ties == pytest.approx((a + d) / 200)
    assert overall.kappa == pytest.approx(2 * (a * d - b * c) / ((a + b) * (b + d) + (a + c) * (c + d)))
    math_pairs = [(p, g) for p, g in zip(pairs, predicted, strict=True) if p.category == "math"]
    assert run.per_category["math"].agreements == sum(p.label == g for p, g in math_pairs)
    assert provider.calls == 400 and run.calls == 400 and run.flips == 0
    row = run.row()
    assert row["n"] == 200 and row["agreement"] == overall.agreement
    assert sum(x["n"] for x in row["per_category"].values()) == 200


def test_the_judge_budget_stops_the_run_cleanly(mt_bench: Path) -> None:
    """`[judge] budget_usd` applies, as in `shadowroute score`: no call beyond the cap."""
    pairs = load_dataset(mt_bench)[:30]
    config = judge_config(judge={"budget_usd": 0.05}, price=5.0)
    run = anyio.run(lambda: calibrate(config, pairs, dataset="x", provider=LengthJudge(0.005)))
    assert run.budget_exhausted and 0 < len(run.judged) < 30
    assert len(run.judged) + run.not_judged == 30
    assert run.cost_usd <= 0.05 and run.budget_usd == 0.05
    assert any("budget" in line for line in run.lines())


# --------------------------------------------------------------------------- 4. CLI, fake judge


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default_settings(latency_scale=0.0)) as server:
        yield server


@pytest.fixture
def cli(cli: Callable[..., Any]) -> Callable[..., Any]:
    """The command line with SHADOWROUTE_CONFIG and SHADOWROUTE_DATABASE_URL unset."""
    return functools.partial(cli, env={"SHADOWROUTE_CONFIG": None, "SHADOWROUTE_DATABASE_URL": None})


def write_toml(tmp_path: Path, server: FakeLLMServer, db_url: str) -> Path:
    toml = tmp_path / "shadowroute.toml"
    toml.write_text(
        f'database_url = "{db_url}"\n'
        f'[models.judge]\nbase_url = "{server.base_url}/v1"\ninput_price = 1.0\noutput_price = 4.0\n'
        '[judge]\nmodel = "judge"\n'
    )
    return toml


def test_calibrate_judge_with_the_fake_llm_judge_end_to_end(
    fake_llm: FakeLLMServer, mt_bench: Path, db_url: str, tmp_path: Path, cli
) -> None:
    toml = write_toml(tmp_path, fake_llm, db_url)
    result = cli("calibrate-judge", str(mt_bench), "--limit", "40", "--config", str(toml),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("coding", "humanities", "math", "writing", "all", "ties left out"):
        assert name in out
    assert "GPT-4 judge vs humans (MT-Bench paper)" in out and "85%" in out and "81%" in out
    assert "judged 40 of 40 pairs" in out and "stored calibration" in out

    async def stored() -> list[dict[str, Any]]:
        async with await Store.open(db_url) as store:
            return await calibrations(store)

    (row,) = anyio.run(stored)
    config = load_config(toml)
    assert row["judge_model"] == "judge" and row["dataset"] == "mt_bench_human"
    assert row["judge_version"] == judge_spec(config).version
    assert row["id"] in out and row["n"] == 40 and row["created_at"].tzinfo is not None
    overall = row["details"]["overall"]
    assert overall["ties"] + overall["agreements"] + overall["disagreements"] == row["n"] == 40
    assert row["ties"] == overall["ties"]
    assert row["kappa"] is None or -1.0 <= row["kappa"] <= 1.0
    assert row["agreement"] is None or 0.0 <= row["agreement"] <= 1.0
    per = row["per_category"]
    assert sum(c["n"] for c in per.values()) == 40 and "other" not in per
    for c in per.values():
        assert c["ties"] + c["agreements"] + c["disagreements"] == c["n"]
    # The simulated judge only knows its own tasks' answers: on real MT-Bench answers it
    # calls (almost) every pair a tie, so the report will flag it.
    if row["agreement"] is None:
        assert "picked a side on none of the 40 pairs" in out


def test_calibrate_judge_errors_are_one_clear_line(
    fake_llm: FakeLLMServer, mt_bench: Path, tmp_path: Path, cli
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    toml = write_toml(tmp_path, fake_llm, url)
    no_judge = tmp_path / "nojudge.toml"
    no_judge.write_text('[models.m]\nbase_url = "http://127.0.0.1:9/v1"\n')
    missing = tmp_path / "nope.json"
    cases = [
        (["calibrate-judge", str(mt_bench), "-c", str(no_judge)], "no [judge] configured"),
        (["calibrate-judge", str(missing), "-c", str(toml)], f"cannot read the dataset {missing}"),
    ]
    for args, expected in cases:
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.startswith("error: ") and expected in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()  # nothing opened before the input was checked


def test_calibrate_judge_stops_at_the_budget_and_stores_what_it_judged(
    fake_llm: FakeLLMServer, mt_bench: Path, tmp_path: Path, cli
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    toml = write_toml(tmp_path, fake_llm, url)
    result = cli("calibrate-judge", str(mt_bench), "--limit", "40", "--budget", "0.01",
                 "--concurrency", "1", "-c", str(toml), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "judge budget of $0.01 reached: stopped cleanly (raise [judge] budget_usd" in result.stdout

    async def stored() -> dict[str, Any] | None:
        async with await Store.open(url) as store:
            return await latest_calibration(store, "judge")

    row = anyio.run(stored)
    assert row is not None and 0 < row["n"] < 40 and row["details"]["budget_exhausted"]
    assert row["details"]["cost_usd"] <= 0.01
    assert row["n"] + row["details"]["not_judged"] == 40


# --------------------------------------------------------------------------- 5. the report


def calibration_row(agreement_: float | None, *, model: str = "judge", days_ago: float = 0,
                    dataset: str = "mt_bench_human", version: str = "1-whatever") -> dict[str, Any]:
    n, ties = 200, 20
    return {
        "id": os.urandom(16).hex(), "created_at": utcnow() - timedelta(days=days_ago),
        "judge_model": model, "judge_version": version, "dataset": dataset, "n": n,
        "ties": ties, "agreement": agreement_, "kappa": None if agreement_ is None else 0.22,
        "per_category": {"math": {"n": 20, "ties": 2, "agreements": 11, "disagreements": 7,
                                  "agreement": 11 / 18, "agreement_with_ties": 0.55,
                                  "kappa": 0.21}},
        "details": {"overall": {"agreement_with_ties": 0.55}},
    }


@pytest.mark.anyio
async def test_the_report_shows_the_calibration_and_warns_below_min_agreement(store: Store) -> None:
    config = judge_config(
        db_url=store.url, judge={"min_agreement": 0.75},
        judged={"candidates": ["mini"], "scorers": ["similarity", "judge"]},
        plain={"candidates": ["mini"], "scorers": ["similarity"]},
    )
    # No calibration yet: a one-line hint, nothing else.
    report = await build_report(config, store)
    html = render_html(report)
    assert report.judge_calibration is None and "judge calibrated" not in html
    assert "The judge is uncalibrated" in html
    assert json.loads(report_json(report))["judge_calibration"] is None

    version = judge_spec(config).version
    await save_calibration(store, calibration_row(0.9, days_ago=3, version=version))
    await save_calibration(store, calibration_row(0.6101, days_ago=1, version=version,
                                                         dataset="<b>hostile</b>"))
    await save_calibration(store, calibration_row(0.95, model="other-judge"))  # not ours
    assert (await latest_calibration(store, "judge"))["agreement"] == pytest.approx(0.6101)

    report = await build_report(config, store)
    cal = report.judge_calibration
    assert cal is not None and cal["agreement"] == pytest.approx(0.6101) and cal["below"]
    assert cal["summary"].startswith("judge calibrated: 61% agreement with people (kappa 0.22, "
                                     "n 200, 20 ties, ")
    warning = ("the judge agrees with people only 61% of the time: treat its verdicts with care; "
               "see shadowroute calibrate-judge")
    assert cal["warning"] == warning
    html = render_html(report)
    # Overview, plus the task type that uses the judge (and not the one that does not).
    assert html.count(warning) == 2 and html.count(cal["summary"]) == 2
    judged, plain = html.split('<h2>judged</h2>')[1], html.split('<h2>plain</h2>')[1]
    assert warning in judged.split("</section>")[0] and warning not in plain.split("</section>")[0]
    assert "<b>hostile</b>" not in html and "&lt;b&gt;hostile&lt;/b&gt;" in html
    assert "<script" not in html
    twin = json.loads(report_json(report))["judge_calibration"]
    assert twin["agreement"] == pytest.approx(0.6101) and twin["warning"] == warning
    assert twin["per_category"]["math"]["n"] == 20
    caption = str(render_verdicts(report).caption)
    assert "61% agreement with people" in caption and "treat its verdicts with care" in caption

    # A newer calibration at or above min_agreement: shown, no warning.
    await save_calibration(store, calibration_row(0.8333, version="2-newer"))
    report = await build_report(config, store)
    html = render_html(report)
    assert report.judge_calibration is not None and not report.judge_calibration["below"]
    assert "judge calibrated: 83% agreement with people" in html
    assert "treat its verdicts with care" not in html
    assert "Calibrated with judge version 2-newer" in html  # not the task type's version


def test_a_calibration_where_the_judge_never_picked_a_side_warns() -> None:
    from shadowroute.report.build import _describe_calibration

    row = calibration_row(None)
    cal = _describe_calibration(row, 0.75)
    assert cal["below"] and "picked a side on none of the 200" in cal["warning"]
    # Just under the floor never reads as the floor itself.
    assert "74%" in _describe_calibration(calibration_row(0.7499), 0.75)["warning"]
    assert _describe_calibration(calibration_row(0.75), 0.75)["warning"] is None

