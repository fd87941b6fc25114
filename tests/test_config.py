"""shadowroute.toml: the README's reference file is valid, paths and env overrides resolve."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shadowroute import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shadowroute.toml"


def readme_toml() -> str:
    """The annotated example config the docs link to."""
    return EXAMPLE.read_text()


def test_readme_reference_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHADOWROUTE_DATABASE_URL", raising=False)
    path = tmp_path / "shadowroute.toml"
    path.write_text(readme_toml())
    config = load_config(path)
    assert config.models["claude-haiku"].api == "anthropic"
    assert config.models["gpt-4o-mini"].model == "gpt-4o-mini"
    assert config.tasks["classify_intent"].candidates == ("gpt-4o-mini", "claude-haiku")
    assert config.models["gpt-4o-mini"].cost(1_000_000, 1_000_000) == pytest.approx(0.75)
    # Every key the README documents exists in the model (a typo would fail load_config).
    assert config.mirror.queue_size == 2000 and config.store.batch_size == 500
    assert config.judge is not None and config.judge.model == "claude-sonnet"
    assert set(config.scorers_for("classify_intent")) == {"label", "judge"}
    assert config.scorers_for("summarize_ticket")["similarity"].threshold == 0.85
    assert config.routes_file() == tmp_path / "routes.yaml"  # relative to the config file
    assert config.reverse_rate("classify_intent") == 0.05


def test_a_task_type_can_override_the_reverse_shadow_rate() -> None:
    config = load_config(data={"routes": {"reverse_shadow_rate": 0.02},
                               "tasks": {"risky": {"reverse_shadow_rate": 0.5}}})
    assert config.reverse_rate("risky") == 0.5
    assert config.reverse_rate("other") == 0.02
    with pytest.raises(ConfigError, match="routes.reverse_shadow_rate"):
        load_config(data={"routes": {"reverse_shadow_rate": 2}})


def test_database_url_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "shadowroute.toml"
    path.write_text('database_url = "sqlite+aiosqlite:///from-file.db"\n')
    monkeypatch.setenv("SHADOWROUTE_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert load_config(path).database_url == "postgresql+psycopg://u@h/db"


def test_json_schema_is_read_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "order.json").write_text(json.dumps({"type": "object"}))
    path = tmp_path / "shadowroute.toml"
    path.write_text('[tasks.extract_order]\njson_schema = "schemas/order.json"\n')
    assert load_config(path).schema_for("extract_order") == {"type": "object"}


def test_api_key_comes_from_the_named_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-123")
    config = load_config(data={"models": {"m": {"base_url": "http://h", "api_key_env": "MY_KEY"}}})
    assert config.models["m"].api_key() == "sk-123"


def test_undeclared_task_gets_default_rate_and_no_candidates() -> None:
    assert load_config(data={}).task("anything").sample_rate == 0.1
    config = load_config(data={"default_sample_rate": 0.25})
    task = config.task("anything")
    assert task.sample_rate == 0.25 and task.candidates == ()


@pytest.mark.parametrize(
    "data, key",
    [
        ({"tasks": {"t": {"sample_rate": -0.1}}}, "tasks.t.sample_rate"),
        ({"models": {"m": {"base_url": "http://h", "input_price": -1}}}, "models.m.input_price"),
        ({"mirror": {"queue_size": 0}}, "mirror.queue_size"),
        ({"models": {"m": {"base_url": "http://h", "api": "cohere"}}}, "models.m.api"),
    ],
)
def test_errors_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(data=data)
    assert caught.value.key == key and str(caught.value).startswith(f"<dict>: {key}: ")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"tasks": {"t": {"scorers": ["bleu"]}}}, "unknown scorer 'bleu'"),
        ({"tasks": {"t": {"scorers": {"exact": {"method": "ratio"}}}}}, "scorer 'exact' takes no option 'method'"),
        ({"tasks": {"t": {"scorers": {"similarity": {"threshold": 1.5}}}}}, "less than or equal to 1"),
        ({"tasks": {"t": {"scorers": ["schema"]}}}, "uses 'schema' but the task has no json_schema"),
        ({"tasks": {"t": {"scorers": ["judge"]}}}, "uses 'judge' but no [judge] is configured"),
        ({"judge": {"model": "nope"}}, "judge.model names unknown model 'nope'"),
    ],
)
def test_scorer_and_judge_errors_are_clear(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(data=data)


def test_scorer_defaults() -> None:
    judge = {"models": {"j": {"base_url": "http://h"}}, "judge": {"model": "j"}}
    assert set(load_config(data={}).scorers_for("t")) == {"similarity"}
    assert set(load_config(data=judge).scorers_for("t")) == {"similarity", "judge"}
    assert load_config(data={"tasks": {"t": {"scorers": ["exact"]}}}).task("t").noise_floor_rate == 0.1


def test_every_problem_is_listed_with_its_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(data={
            "tasks": {"t": {"sample_rate": 2, "sampel_rate": 0.5}},
            "models": {"m": {"base_ulr": "http://h"}},
        })
    error = caught.value
    assert sorted(error.problems) == sorted([
        ("models.m.base_url", "Field required"),
        ("models.m.base_ulr", "unknown key; did you mean `base_url`?"),
        ("tasks.t.sample_rate", "Input should be less than or equal to 1"),
        ("tasks.t.sampel_rate", "unknown key; did you mean `sample_rate`?"),
    ])
    lines = str(error).splitlines()
    assert lines[0] == "<dict> has 4 problems:" and len(lines) == 5
    assert error.key == error.problems[0][0]  # the first problem's, as before


@pytest.mark.parametrize(
    "data, key, suggestion",
    [
        ({"judge": {"modle": "j"}}, "judge.modle", "did you mean `model`?"),
        ({"sidecar": {"rules": [{"task": "a", "modl": "x*"}]}}, "sidecar.rules.0.modl",
         "did you mean `model`?"),
        ({"redaction": {"patterns": [{"name": "t", "regex": "x", "regx": "y"}]}},
         "redaction.patterns.0.regx", "did you mean `regex`?"),
        ({"databse_url": "sqlite:///x.db"}, "databse_url", "did you mean `database_url`?"),
    ],
)
def test_an_unknown_key_suggests_the_nearest_key_of_its_table(
    data: dict, key: str, suggestion: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(data=data)
    problems = [(k, m) for k, m in caught.value.problems if k == key]
    assert problems == [(key, f"unknown key; {suggestion}")]


def test_an_unknown_key_far_from_any_lists_the_table_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(data={"mirror": {"zzz": 1}})
    assert str(caught.value) == (
        "<dict>: mirror.zzz: unknown key (this table takes: circuit_failures, circuit_reset_s, "
        "queue_size, retry_backoff_max_s, retry_backoff_s, shutdown_deadline_s, workers)")


def test_every_reference_problem_is_listed() -> None:
    models = {"small": {"base_url": "http://h"}}
    with pytest.raises(ConfigError) as caught:
        load_config(data={"models": models, "tasks": {
            "a": {"candidates": ["smal"], "scorers": ["judge"]},
            "b": {"candidates": ["tiny"], "scorers": ["schema"]},
        }})
    assert [m for _, m in caught.value.problems] == [
        "tasks.a.candidates names unknown model 'smal' (models: small); did you mean 'small'?",
        ("tasks.a.scorers uses 'judge' but no [judge] is configured: add a [judge] section, "
         "or remove 'judge' from the task's scorers"),
        "tasks.b.candidates names unknown model 'tiny' (models: small)",
        "tasks.b.scorers uses 'schema' but the task has no json_schema",
    ]


def test_default_scorers_without_a_judge_are_a_warning() -> None:
    judge = {"models": {"j": {"base_url": "http://h"}}, "judge": {"model": "j"}}
    tasks = {"b": {}, "a": {}, "listed": {"scorers": ["similarity"]}}
    (warning,) = load_config(data={"tasks": tasks}).warnings()
    assert warning.startswith("no [judge] configured: the default scorers of task types a, b "
                              "leave the LLM judge out")
    assert load_config(data={**judge, "tasks": tasks}).warnings() == []
    assert load_config(data={"tasks": {"listed": {"scorers": ["exact"]}}}).warnings() == []
    assert load_config(data={}).warnings() == []


# --------------------------------------------------------------------------- scorer plugins
# (the plugins themselves, installed and run: tests/scoring/test_plugins.py)


@pytest.mark.parametrize(
    "scorers, key, message",
    [
        (["similarity", "bleu"], "tasks.t.scorers.bleu",
         "unknown scorer 'bleu' (scorers: schema, exact, label, similarity, extract, judge, "
         "correctness; plugins: "),
        (["simlarity"], "tasks.t.scorers.simlarity", "did you mean 'similarity'?"),
        ({"pii": {"plugin": "no_such_pkg_xyz.checks:factory"}}, "tasks.t.scorers.pii.plugin",
         "cannot import 'no_such_pkg_xyz.checks:factory': ModuleNotFoundError: No module named "
         "'no_such_pkg_xyz'"),
        ({"pii": {"plugin": "no_such_plugin_xyz"}}, "tasks.t.scorers.pii.plugin",
         "no scorer plugin 'no_such_plugin_xyz' is installed (entry points of group "
         "'shadowroute.scorers': "),
        ({"pii": {"plugin": "json.loads"}}, "tasks.t.scorers.pii.plugin",
         "no scorer plugin 'json.loads' is installed"),
        ({"pii": {"plugin": "json:dumps"}}, "tasks.t.scorers.pii.plugin",
         "scorer plugin 'json:dumps' declares no name"),
        ({"similarity": {"plugin": "pkg:factory"}}, "tasks.t.scorers.similarity",
         "'similarity' is a built-in scorer: it takes no 'plugin' or 'options'"),
        ({"exact": {"options": {"x": 1}}}, "tasks.t.scorers.exact",
         "'exact' is a built-in scorer: it takes no 'plugin' or 'options'"),
    ],
)
def test_a_scorer_plugin_that_cannot_load_is_one_line_naming_the_key(
    scorers: Any, key: str, message: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(data={"tasks": {"t": {"scorers": scorers}}})
    assert caught.value.key == key
    assert str(caught.value).startswith(f"<dict>: {key}: ") and message in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


def test_a_bad_plugin_path_is_one_line_from_the_cli(tmp_path: Path, cli) -> None:
    (tmp_path / "bad.toml").write_text(
        '[tasks.t.scorers.pii]\nplugin = "no_such_pkg_xyz:factory"\n')
    result = cli("config", "check", "--config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "error: bad.toml: tasks.t.scorers.pii.plugin: cannot import 'no_such_pkg_xyz:factory': "
        "ModuleNotFoundError: No module named 'no_such_pkg_xyz'")


def test_a_plugin_options_are_its_own_and_checked_against_its_declaration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "sr_cfg_plugin.py").write_text(
        "from shadowroute.scoring.plugins import plugin_info\n"
        "@plugin_info(name='tone', version='3', options={'words': ['sorry'], 'strict': False})\n"
        "def factory(words, strict):\n    raise NotImplementedError\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    table = {"plugin": "sr_cfg_plugin:factory", "options": {"words": ["oops"]}}
    config = load_config(data={"tasks": {"t": {"scorers": {"tone": table}}}})
    assert config.scorers_for("t")["tone"].options == {"words": ["oops"]}
    for options, problem in [({"strict": "yes"}, "option 'strict' must be a boolean"),
                             ({"word": []}, "takes no option 'word'; did you mean 'words'?")]:
        with pytest.raises(ConfigError, match=re.escape(problem)) as caught:
            load_config(data={"tasks": {"t": {"scorers": {"tone": {**table,
                                                                   "options": options}}}}})
        assert caught.value.key == "tasks.t.scorers.tone.options"
