"""`shadowroute calibrate TASK`: how far each scorer agrees with labels a team already has.

The arithmetic on small sets worked out by hand (kappa's edge cases included), the threshold
sweep and its best threshold, the labels file (good and bad lines), labels from
`metadata.outcomes`, the run over stored scores (the judge's too, never called again) with
storage and read-back on both backends, and the command's table and one-line errors."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from shadowroute.errors import ConfigError
from shadowroute.records import NOISE_FLOOR_MODEL
from shadowroute.scoring import ScoreOptions, plan_for, score
from shadowroute.scoring.calibration import cohens_kappa
from shadowroute.scoring.labels import LabelLine, outcome_label, read_labels
from shadowroute.scoring.scorer_calibration import calibrate_scorers
from shadowroute.scoring.validity import (
    MIN_KAPPA,
    LabelledScore,
    metrics,
    scorer_agreement,
    shown_thresholds,
    sweep,
)
from shadowroute.store import Store
from shadowroute.store.queries.calibrations import (
    latest_scorer_calibrations,
    save_scorer_calibrations,
    scorer_calibrations,
)

# --------------------------------------------------------------------------- 1. arithmetic


def test_metrics_of_a_hand_checked_table() -> None:
    """tp 6, fp 2, fn 1, tn 3 (n 12). precision 6/8, recall 6/7, specificity 3/5, accuracy
    9/12. p_o = 108/144; p_e = ((6+2)(6+1) + (1+3)(2+3)) / 144 = (56 + 20) / 144 = 76/144;
    kappa = (108 - 76) / (144 - 76) = 32/68 = 8/17."""
    m = metrics(6, 2, 1, 3)
    assert (m.n, m.passes) == (12, 8)
    assert m.precision == pytest.approx(6 / 8) and m.recall == pytest.approx(6 / 7)
    assert m.specificity == pytest.approx(3 / 5) and m.accuracy == pytest.approx(9 / 12)
    assert m.kappa == pytest.approx(8 / 17)
    assert m.youden == pytest.approx(6 / 7 + 3 / 5 - 1)
    # The same kappa as calibrate-judge's, from the label pairs (scorer, label).
    pairs = [("pass", "ok")] * 6 + [("pass", "bad")] * 2 + [("fail", "ok")] + [("fail", "bad")] * 3
    relabel = {"pass": "ok", "fail": "bad"}
    assert cohens_kappa([(relabel[s], lab) for s, lab in pairs]) == pytest.approx(8 / 17)


def _items(rows: list[tuple[bool, bool]]) -> list[LabelledScore]:
    """(scorer passed, label) -> items valued 1/0 by ``passed``."""
    return [LabelledScore(1.0 if p else 0.0, p, label) for p, label in rows]


@pytest.mark.parametrize("rows, kappa, informative, low", [
    ([], None, False, False),                                             # nothing to compare
    ([(True, True), (False, False), (True, True)], 1.0, True, False),     # perfect
    ([(True, False), (False, True)], -1.0, True, True),                   # always wrong
    # Labels all acceptable, the scorer passes all: p_e = 1, undefined.
    ([(True, True)] * 4, None, False, False),
    # Labels all acceptable, the scorer fails one: kappa 0 whatever it does; not flagged,
    # labels of one class cannot measure agreement.
    ([(True, True)] * 3 + [(False, True)], 0.0, False, False),
    # Labels all not acceptable, the scorer fails all: undefined again.
    ([(False, False)] * 3, None, False, False),
    # Both classes, the scorer passes everything: chance level, flagged.
    ([(True, True)] * 3 + [(True, False)], 0.0, True, True),
    # p_o 3/4; scorer passes 2 of 4, labels 3 acceptable: p_e = (2*3 + 2*1)/16 = 1/2 -> 0.5.
    ([(True, True), (True, True), (False, True), (False, False)], 0.5, True, False),
])
def test_kappa_edge_cases(rows: list[tuple[bool, bool]], kappa: float | None,
                          informative: bool, low: bool) -> None:
    a = scorer_agreement(_items(rows), threshold=1.0)
    got = a.configured.kappa
    assert got == (None if kappa is None else pytest.approx(kappa))
    assert a.configured.informative is informative and a.low is low
    assert a.n == len(rows)
    if not rows:
        c = a.configured
        assert (c.precision, c.recall, c.accuracy, a.best, a.sweep) == (None, None, None, None, [])


# (value, label) of six outputs; worked by hand for every distinct value t (pass: value >= t):
#   t 0.1: passes 6, tp 3 fp 3 fn 0 tn 0 -> p_o 1/2, p_e 1/2 -> kappa 0
#   t 0.3: passes 5, tp 3 fp 2 fn 0 tn 1 -> p_o 4/6, p_e (5*3 + 1*3)/36 = 1/2 -> 1/3
#   t 0.5: passes 4, tp 3 fp 1 fn 0 tn 2 -> p_o 5/6, p_e (4*3 + 2*3)/36 = 1/2 -> 2/3
#   t 0.7: passes 2, tp 2 fp 0 fn 1 tn 3 -> p_o 5/6, p_e (2*3 + 4*3)/36 = 1/2 -> 2/3
#   t 0.9: passes 1, tp 1 fp 0 fn 2 tn 3 -> p_o 4/6, p_e 1/2 -> 1/3
SWEPT = [(0.1, False), (0.3, False), (0.5, True), (0.5, False), (0.7, True), (0.9, True)]


def _swept(passed_from: float = 0.8) -> list[LabelledScore]:
    return [LabelledScore(v, v >= passed_from, label) for v, label in SWEPT]


def test_the_threshold_sweep_by_hand() -> None:
    table = {m.threshold: m for m in sweep(_swept(), [0.9, 0.1, 0.3, 0.5, 0.7, 0.5])}
    assert list(table) == [0.1, 0.3, 0.5, 0.7, 0.9]
    expected = {0.1: (3, 3, 0, 0, 0.0), 0.3: (3, 2, 0, 1, 1 / 3), 0.5: (3, 1, 0, 2, 2 / 3),
                0.7: (2, 0, 1, 3, 2 / 3), 0.9: (1, 0, 2, 3, 1 / 3)}
    for t, (tp, fp, fn, tn, kappa) in expected.items():
        m = table[t]
        assert (m.tp, m.fp, m.fn, m.tn) == (tp, fp, fn, tn)
        assert m.kappa == pytest.approx(kappa)
    assert (table[0.5].precision, table[0.5].recall) == (pytest.approx(3 / 4), 1.0)
    assert (table[0.7].precision, table[0.7].recall) == (1.0, pytest.approx(2 / 3))
    # Between stored values: the same split as the next value up.
    (between,) = sweep(_swept(), [0.6])
    assert (between.tp, between.fp) == (2, 0)


def test_the_best_threshold_is_max_kappa_then_the_configured_one() -> None:
    # 0.5 and 0.7 tie (kappa 2/3, accuracy 5/6): the one closer to the configured 0.8 wins ...
    a = scorer_agreement(_swept(), threshold=0.8)
    assert a.best is not None and a.best.threshold == 0.7
    assert a.best.kappa == pytest.approx(2 / 3)
    # ... and the configured threshold itself when it splits as well as any (0.4 = 0.5's split).
    b = scorer_agreement(_swept(0.4), threshold=0.4)
    assert b.best is not None and b.best.threshold == 0.4
    # Without a configured threshold: the lower one.
    c = scorer_agreement(_swept(), threshold=None)
    assert c.best is not None and c.best.threshold == 0.5
    # As configured comes from the stored ``passed`` (here: value >= 0.8 -> t 0.9's split).
    assert (a.configured.tp, a.configured.fp, a.configured.fn, a.configured.tn) == (1, 0, 2, 3)
    assert a.configured.kappa == pytest.approx(1 / 3) and a.low is True and MIN_KAPPA == 0.4
    # The table shows every distinct value (few of them) plus the configured threshold.
    assert [m.threshold for m in a.sweep] == [0.1, 0.3, 0.5, 0.7, 0.8, 0.9]


def test_shown_thresholds_list_few_values_and_a_grid_for_many() -> None:
    assert shown_thresholds([0.5, 1.0, 0.5], 0.8, None) == [0.5, 0.8, 1.0]
    many = [i / 100 for i in range(50)]
    assert shown_thresholds(many, 0.83, 0.37) == sorted({i / 10 for i in range(11)} | {0.83, 0.37})


def test_a_score_without_a_value_sweeps_as_one_or_zero() -> None:
    items = [LabelledScore(None, True, True), LabelledScore(None, False, False)]
    (m,) = sweep(items, [0.5])
    assert (m.tp, m.tn) == (1, 1)


# --------------------------------------------------------------------------- 2. labels


def test_a_labels_file_with_good_lines(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join([
        json.dumps({"output_id": "o1", "label": True}),
        "",
        json.dumps({"exchange_id": "x2", "model": "mini", "label": False, "note": "wrong"}),
        json.dumps({"output_id": " o3 ", "label": 1}),
        json.dumps({"output_id": "o4", "label": 0, "rater": "qa"}),
    ]) + "\n\n")
    assert read_labels(path) == [
        LabelLine(1, True, output_id="o1"),
        LabelLine(3, False, exchange_id="x2", model="mini"),
        LabelLine(4, True, output_id="o3"),
        LabelLine(5, False, output_id="o4"),
    ]


@pytest.mark.parametrize("line, expected", [
    ("{not json", "line 2: not JSON"),
    ('["o1", true]', "line 2: expected an object like"),
    ('{"output_id": "o1"}', "line 2: no label (true or false)"),
    ('{"output_id": "o1", "label": "yes"}', 'line 2: label must be true or false, got "yes"'),
    ('{"output_id": "o1", "label": 2}', "line 2: label must be true or false, got 2"),
    ('{"output_id": "o1", "label": null}', "line 2: label must be true or false, got null"),
    ('{"label": true}', "line 2: names no output"),
    ('{"exchange_id": "x1", "label": true}', "line 2: names no output"),
    ('{"output_id": "", "label": true}', 'line 2: output_id must be a non-empty string, got ""'),
    ('{"output_id": 7, "label": true}', "line 2: output_id must be a non-empty string, got 7"),
    ('{"output_id": "o1", "model": "m", "label": true}', "line 2: give output_id, or exchange_id"),
])
def test_a_bad_label_line_is_one_error_naming_the_file_and_line(
    tmp_path: Path, line: str, expected: str,
) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"output_id": "o0", "label": True}) + "\n" + line + "\n")
    with pytest.raises(ConfigError) as info:
        read_labels(path)
    message = str(info.value)
    assert message.startswith(f"cannot read the labels {path}: ") and expected in message
    assert "\n" not in message


def test_an_empty_or_missing_labels_file_is_one_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(ConfigError, match=r"no labels found in .*empty\.jsonl"):
        read_labels(empty)
    with pytest.raises(ConfigError, match=r"cannot read the labels .*nope\.jsonl: No such file"):
        read_labels(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("outcomes, expected", [
    ({"mini": {"correct": True}, "big": {"correct": True}}, True),
    ({"mini": {"correct": True}}, True),                    # right: acceptable, primary or not
    ({"mini": {"correct": False}, "big": {"correct": False}}, True),  # both wrong
    ({"mini": {"correct": False}, "big": {"correct": True}}, False),
    ({"mini": False, "big": True}, False),                  # bare booleans
    ({"mini": {"correct": False}}, None),                   # wrong, primary unknown
    ({"mini": {"grade": 0.7}, "big": {"grade": 0.7}}, True),
    ({"mini": {"grade": 0.6}, "big": {"grade": 0.7}}, False),
    ({"mini": {"grade": 0.6}}, None),
    ({"mini": {"grade": 0.6}, "big": {"correct": True}}, None),  # different kinds
    ({"mini": "maybe", "big": True}, None),                 # unreadable
    ({"big": {"correct": True}}, None),                     # no outcome for the candidate
    ({"gpt-mini-2": {"correct": False}, "big": {"correct": False}}, True),  # upstream id
])
def test_labels_from_recorded_outcomes(outcomes: dict[str, Any], expected: bool | None) -> None:
    meta = {"outcomes": outcomes}
    assert outcome_label(meta, "mini", "big", {"mini": "gpt-mini-2"}) is expected
    assert outcome_label({}, "mini", "big") is None
    assert outcome_label({"outcomes": ["x"]}, "mini", "big") is None


# --------------------------------------------------------------------------- 3. the run

# classify: exact + judge. Primary "good"; the scripted judge prefers the answer containing
# "good" (both or neither: same, 0.5, passes; the other: worse, 0, fails).
#   mini answers   exact   judge        label
#   "good"  x 4    pass    same  pass   ok x3, not ok x1
#   "good one" x 3 fail    same  pass   ok
#   "bad" x 2      fail    worse fail   not ok
#   call failed x1 (left out of every scorer)
MINI = ["good"] * 4 + ["good one"] * 3 + ["bad"] * 2 + [None]
MINI_LABELS = [True, True, True, False, True, True, True, False, False, True]


def _config(make_config: Callable[..., Any], url: str, scoring_preset: dict[str, Any]) -> Any:
    return make_config(url, scoring_preset)


async def _seed(store: Store, config: Any, scoring_exchange, scripted_judge, prefers) -> list[Any]:
    batch = [scoring_exchange("classify", "good", {"mini": text, "tiny": "good"},
                              error="timeout") for text in MINI]
    batch.append(scoring_exchange("extract", '{"sku": "A", "qty": 1}', {"mini": "{}"}))
    await store.write(batch)
    judge = scripted_judge(prefers("good"))
    await score(config, store, ScoreOptions(), judge_provider=judge)
    assert judge.calls  # the judge scored them once, here
    return batch


def _lines(batch: list[Any]) -> list[LabelLine]:
    lines = [LabelLine(i + 1, label, output_id=x.outputs[0].id)
             for i, (x, label) in enumerate(zip(batch, MINI_LABELS, strict=False))]
    # The same output labelled again the same way (counted once), and by exchange and model.
    lines.append(LabelLine(20, True, output_id=batch[0].outputs[0].id))
    lines.append(LabelLine(21, True, exchange_id=batch[1].id, model="tiny"))
    return lines


@pytest.mark.anyio
async def test_each_scorer_against_a_labels_file_stored_and_read_back(
    store: Store, make_config, scoring_preset, scoring_exchange, scripted_judge, prefers,
) -> None:
    config = _config(make_config, store.url, scoring_preset)
    batch = await _seed(store, config, scoring_exchange, scripted_judge, prefers)
    # No judge provider here: a judge call would go to a closed port and fail.
    run = await calibrate_scorers(config, store, "classify", _lines(batch),
                                  labels_path="labels.jsonl")
    assert (run.label_source, run.labelled, run.acceptable, run.call_failed, run.repeated) \
        == ("file", 11, 8, 1, 1)
    exact, judge = run.scorers
    assert (exact.scorer, judge.scorer) == ("exact", "judge")
    # exact over the 10 answered outputs (9 mini + tiny "good", labelled ok):
    #   passes: "good" x4 (3 ok, 1 not) + tiny "good" (ok) -> tp 4, fp 1
    #   fails: "good one" x3 (ok) -> fn 3; "bad" x2 (not ok) -> tn 2
    c = exact.agreement.configured
    assert (c.tp, c.fp, c.fn, c.tn) == (4, 1, 3, 2)
    assert c.precision == pytest.approx(4 / 5) and c.recall == pytest.approx(4 / 7)
    # p_o 6/10; p_e = (5*7 + 5*3)/100 = 1/2 -> kappa 0.2
    assert c.kappa == pytest.approx(0.2) and exact.agreement.low
    # judge: passes the 8 non-"bad" answers (7 ok, 1 not), fails "bad" x2 -> tp 7 fp 1 fn 0 tn 2
    j = judge.agreement.configured
    assert (j.tp, j.fp, j.fn, j.tn) == (7, 1, 0, 2)
    # p_o 9/10; p_e = (8*7 + 2*3)/100 = 62/100 -> kappa (90 - 62)/(100 - 62) = 28/38
    assert j.kappa == pytest.approx(28 / 38) and not judge.agreement.low
    assert judge.agreement.threshold == 0.5 and judge.agreement.best is not None
    assert judge.agreement.best.threshold == 0.5  # values 0 / 0.5: the configured split wins
    assert (exact.unscored, judge.unscored, exact.not_applicable) == (0, 0, 0)

    rows = run.rows()
    await save_scorer_calibrations(store, rows)
    stored = await scorer_calibrations(store, "classify")
    assert {r["scorer"] for r in stored} == {"exact", "judge"}
    by = {r["scorer"]: r for r in stored}
    plan = dict(plan_for(config, "classify").keys())
    assert by["exact"]["scorer_version"] == plan["exact"]
    assert by["judge"]["scorer_version"] == plan["judge"]
    assert by["exact"]["kappa"] == pytest.approx(0.2) and by["exact"]["n"] == 10
    assert by["exact"]["precision"] == pytest.approx(0.8) and by["exact"]["threshold"] == 1.0
    assert by["exact"]["label_source"] == "file" and by["exact"]["criterion"] == "max kappa"
    assert by["exact"]["created_at"].tzinfo is not None and by["exact"]["run_id"] == run.id
    assert by["exact"]["details"]["labels_path"] == "labels.jsonl"
    assert by["exact"]["details"]["call_failed"] == 1
    assert [m["threshold"] for m in by["exact"]["sweep"]] == [0.0, 1.0]
    assert by["judge"]["best_kappa"] == pytest.approx(28 / 38)
    latest = await latest_scorer_calibrations(store, {"classify": list(plan.items())})
    assert latest[("classify", "exact")]["kappa"] == pytest.approx(0.2)


@pytest.mark.anyio
async def test_labels_from_recorded_outcomes_when_no_file_is_given(
    store: Store, make_config, scoring_exchange,
) -> None:
    config = make_config(store.url, models={
        "big": {"base_url": "http://127.0.0.1:9/v1"},
        "mini": {"base_url": "http://127.0.0.1:9/v1", "model": "vendor/mini-1"},
    }, tasks={"qa": {"candidates": ["mini"], "scorers": ["exact", "correctness"]}})
    # (mini's answer, mini correct, primary correct) -> label: correct, or the primary wrong too
    cases = [("42", True, True), ("42", True, True), ("41", False, True), ("41", False, False),
             ("40", True, True)]
    batch = []
    for answer, mine, primary in cases:
        x = scoring_exchange("qa", "42", {"mini": answer})
        x.metadata = {"outcomes": {"vendor/mini-1": {"correct": mine}, "big": primary}}
        batch.append(x)
    no_outcome = scoring_exchange("qa", "42", {"mini": "42"})
    replay = scoring_exchange("qa", "42", {"mini": "42", NOISE_FLOOR_MODEL: "42"})
    replay.metadata = {"outcomes": {"mini": True, NOISE_FLOOR_MODEL: True, "big": True}}
    await store.write([*batch, no_outcome, replay])
    await score(config, store, ScoreOptions())
    run = await calibrate_scorers(config, store, "qa")
    assert run.label_source == "outcomes" and run.outputs == 7
    assert "metadata.outcomes" in run.lines()[0] and "no --labels given" in run.lines()[0]
    assert (run.labelled, run.acceptable) == (6, 5)  # labels: T T F T T + replay's mini T
    exact, correctness = run.scorers
    e = exact.agreement.configured  # passes "42" x3 (ok), fails 41 (not ok), 41 (ok), 40 (ok)
    assert (e.tp, e.fp, e.fn, e.tn) == (3, 0, 2, 1)
    k = correctness.agreement.configured  # reads the same outcomes: agrees by construction
    assert (k.tp, k.fp, k.fn, k.tn) == (5, 0, 0, 1) and k.kappa == pytest.approx(1.0)
    assert correctness.note and "by construction" in correctness.note
    assert correctness.agreement.threshold is None  # correctness has no threshold


@pytest.mark.anyio
async def test_bad_input_is_one_error_and_nothing_is_stored(
    store: Store, make_config, scoring_preset, scoring_exchange, scripted_judge, prefers,
) -> None:
    config = _config(make_config, store.url, scoring_preset)
    batch = await _seed(store, config, scoring_exchange, scripted_judge, prefers)
    first = batch[0].outputs[0].id
    extract_output = batch[-1].outputs[0].id
    replay = scoring_exchange("classify", "good", {NOISE_FLOOR_MODEL: "good"})
    unscored = scoring_exchange("classify", "good", {"mini": "good"})
    await store.write([replay, unscored])
    cases: list[tuple[str, list[LabelLine] | None, str]] = [
        ("nope", [LabelLine(1, True, output_id=first)], ("unknown task type 'nope': not in "
                                                         "[tasks] and no stored exchanges "
                                                         "(task types: classify, extract)")),
        ("classify", [LabelLine(1, True, output_id=first), LabelLine(2, True, output_id="zz")],
         "labels l.jsonl: line 2: no stored candidate output is output 'zz'"),
        ("classify", [LabelLine(3, True, exchange_id=batch[0].id, model="nobody")],
         (f"line 3: no stored candidate output is the 'nobody' output of exchange "
          f"'{batch[0].id}'")),
        ("classify", [LabelLine(4, False, output_id=extract_output)],
         f"line 4: output '{extract_output}' answers task type 'extract', not 'classify'"),
        ("classify", [LabelLine(5, True, output_id=replay.outputs[0].id)],
         "is the primary's replay (noise floor), not a candidate's answer"),
        ("classify", [LabelLine(6, True, output_id=first), LabelLine(9, False, output_id=first)],
         f"line 9: labels output '{first}' false, line 6 labelled it true"),
        ("classify", None, ("no labels for task type 'classify': no --labels file given, and "
                            "none of its 21 stored candidate outputs has a recorded outcome")),
        ("classify", [LabelLine(7, True, output_id=unscored.outputs[0].id)],
         ("no scorer of 'classify' (exact, judge) has a current score on any of the 1 labelled "
          "outputs with an answer (1 lack one): run shadowroute score --task classify first")),
    ]
    for task, lines, expected in cases:
        with pytest.raises(ConfigError) as info:
            await calibrate_scorers(config, store, task, lines, labels_path="l.jsonl")
        assert expected in str(info.value), str(info.value)
        assert "\n" not in str(info.value)
    assert await scorer_calibrations(store) == []


# --------------------------------------------------------------------------- 4. the command


@pytest.fixture
def cli(cli: Callable[..., Any]) -> Callable[..., Any]:
    """The command line with SHADOWROUTE_CONFIG and SHADOWROUTE_DATABASE_URL unset."""
    return functools.partial(cli, env={"SHADOWROUTE_CONFIG": None, "SHADOWROUTE_DATABASE_URL": None})


def _toml(tmp_path: Path, url: str) -> Path:
    toml = tmp_path / "shadowroute.toml"
    toml.write_text(
        f'database_url = "{url}"\n'
        '[models.big]\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[models.mini]\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[tasks.classify]\ncandidates = ["mini"]\nscorers = ["exact", "similarity"]\n')
    return toml


def _seed_cli(url: str, scoring_exchange, make_config) -> list[Any]:
    async def main() -> list[Any]:
        config = make_config(url, models={"big": {"base_url": "http://127.0.0.1:9/v1"},
                                          "mini": {"base_url": "http://127.0.0.1:9/v1"}},
                             tasks={"classify": {"candidates": ["mini"],
                                                 "scorers": ["exact", "similarity"]}})
        batch = [scoring_exchange("classify", "refund", {"mini": text})
                 for text in ["refund"] * 3 + ["refunds"] * 2 + ["shipping"] * 2]
        for x, ok in zip(batch, [True, True, True, True, True, False, False], strict=True):
            x.metadata = {"outcomes": {"mini": ok, "big": True}}
        async with await Store.open(url) as store:
            await store.write(batch)
            await score(config, store, ScoreOptions())
        return batch

    return anyio.run(main)


def _stored(url: str) -> list[dict[str, Any]]:
    async def main() -> list[dict[str, Any]]:
        async with await Store.open(url) as store:
            return await scorer_calibrations(store)

    return anyio.run(main)


def test_calibrate_prints_the_sweep_and_stores_a_row_per_scorer(
    db_url: str, tmp_path: Path, cli, scoring_exchange, make_config,
) -> None:
    batch = _seed_cli(db_url, scoring_exchange, make_config)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"output_id": x.outputs[0].id, "label": ok}) + "\n"
                              for x, ok in zip(batch, [1, 1, 1, 1, 1, 0, 0], strict=True)))
    toml = _toml(tmp_path, db_url)
    result = cli("calibrate", "classify", "--labels", str(labels), "-c", str(toml), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("classify: each scorer's pass vs 7 labels, by threshold",
                 "as configured (stored pass)", "best (max kappa)", "scorers of classify vs labels",
                 f"labels file {labels}",
                 "labels: 7 labelled outputs of classify (5 acceptable, 2 not)",
                 "stored calibration"):
        assert text in out, text
    rows = _stored(db_url)
    assert sorted(r["scorer"] for r in rows) == ["exact", "similarity"]
    exact = next(r for r in rows if r["scorer"] == "exact")
    # exact passes "refund" x3 (ok), fails "refunds" x2 (ok) and "shipping" x2 (not ok):
    # tp 3 fn 2 tn 2 -> p_o 5/7, p_e (3*5 + 4*2)/49 = 23/49 -> kappa (35 - 23)/(49 - 23) = 6/13
    assert exact["kappa"] == pytest.approx(6 / 13) and exact["n"] == 7
    assert exact["precision"] == 1.0 and exact["recall"] == pytest.approx(3 / 5)

    # Without --labels: the recorded outcomes, and the command says so.
    again = cli("calibrate", "classify", "--no-sweep", "-c", str(toml), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "metadata.outcomes of the stored exchanges" in again.stdout
    assert "by threshold" not in again.stdout
    assert len(_stored(db_url)) == 4


def test_calibrate_errors_are_one_clear_line(
    tmp_path: Path, cli, scoring_exchange, make_config,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    batch = _seed_cli(url, scoring_exchange, make_config)
    toml = _toml(tmp_path, url)
    bad = tmp_path / "bad.jsonl"
    first = json.dumps({"output_id": batch[0].outputs[0].id, "label": True})
    bad.write_text(f'{first}\n{{"output_id": "x", "label": "yes"}}\n')
    ghost = tmp_path / "ghost.jsonl"
    ghost.write_text('{"output_id": "ghost", "label": true}\n')
    missing = tmp_path / "missing.jsonl"
    cases = [
        (["calibrate", "nope", "--labels", str(ghost)], "unknown task type 'nope'"),
        (["calibrate", "classify", "--labels", str(bad)],
         f"cannot read the labels {bad}: line 2: label must be true or false"),
        (["calibrate", "classify", "--labels", str(missing)], f"cannot read the labels {missing}"),
        (["calibrate", "classify", "--labels", str(ghost)],
         f"labels {ghost}: line 1: no stored candidate output is output 'ghost'"),
    ]
    for args, expected in cases:
        result = cli(*args, "-c", str(toml), cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error: ") and expected in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert _stored(url) == []
