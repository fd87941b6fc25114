"""``shadowroute init``: a starter config that loads, never overwriting one by accident."""

from __future__ import annotations

from pathlib import Path

from shadowroute.config import load_config


def test_init_writes_a_commented_starter_that_config_check_accepts(tmp_path: Path, cli) -> None:
    result = cli("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "shadowroute.toml"
    text = written.read_text()
    assert text.count("\n# ") > 10  # commented, not a bare file
    config = load_config(written)
    assert config.judge is None  # judge off
    assert list(config.tasks) == ["default"]
    task = config.tasks["default"]
    assert task.candidates and set(task.candidates) <= set(config.models)
    assert all(m.api_key_env for m in config.models.values())  # keys from the environment
    assert f"wrote shadowroute.toml: models {', '.join(config.models)}" in result.stdout
    checked = cli("config", "check", cwd=tmp_path, env={"SHADOWROUTE_CONFIG": None})
    assert checked.returncode == 0, checked.stderr
    assert "gpt-4o-mini" in checked.stdout and "default" in checked.stdout


def test_init_refuses_to_overwrite_in_one_line(tmp_path: Path, cli) -> None:
    existing = tmp_path / "shadowroute.toml"
    existing.write_text("# mine\n")
    refused = cli("init", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: shadowroute.toml already exists; edit it, or write elsewhere with "
        "`shadowroute init OTHER.toml` (--force overwrites)")
    assert existing.read_text() == "# mine\n"
    elsewhere = cli("init", "other.toml", cwd=tmp_path)
    assert elsewhere.returncode == 0 and (tmp_path / "other.toml").exists()
    forced = cli("init", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and "[tasks.default]" in existing.read_text()


def test_init_into_a_missing_folder_is_one_line(tmp_path: Path, cli) -> None:
    result = cli("init", "nowhere/shadowroute.toml", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: cannot write nowhere/shadowroute.toml: ")
    assert not (tmp_path / "nowhere").exists()
