"""The shape of the code: stages import only the stages before them, the store is the only door to
the database, no import cycle, tests do not import each other, and the README's command table
matches the CLI.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and are checked by
import-linter on the import graph grimp builds from the source.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (or a node importing itself),
    each sorted, by Tarjan's algorithm (iterative: the graph is a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_cycles() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["e"], "f": ["d"]}
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["e"]]
    assert cycles({"a": ["b"], "b": []}) == []


def test_no_import_cycle_in_src() -> None:
    graph = grimp.build_graph("shadowroute", exclude_type_checking_imports=True)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert cycles(imports) == []


def test_import_contracts_hold() -> None:
    """Layers (stages import only the stages before them), no SQLAlchemy outside the store,
    pure decisions: see ``[tool.importlinter]`` in pyproject.toml."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def _test_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if p.name.startswith("test_"))


def test_no_test_module_imports_another() -> None:
    """Shared fakes and builders live in tests/support and reach tests as fixtures or imports
    from there; a test module never imports another test module (or conftest)."""
    offenders = []
    for path in _test_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if any(p.startswith("test_") or p == "conftest" for p in parts):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert offenders == []


# --------------------------------------------------------------------------- README commands


def _readme_commands() -> list[tuple[str, str]]:
    """(command cell, whole row) of each row of the README's "Commands" table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = re.match(r"\|\s*`(shadowroute [^`]*)`\s*\|(.*)\|\s*$", line)
        if match:
            rows.append((match.group(1), line))
    return rows


def _cli_commands() -> dict[tuple[str, ...], set[str]]:
    """Every runnable command path of the CLI, with the option names it takes."""
    import click
    import typer

    from shadowroute.cli import app

    out: dict[tuple[str, ...], set[str]] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if hasattr(command, "list_commands"):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), (*path, name))
            return
        out[path] = {opt for param in command.params for opt in getattr(param, "opts", ())
                     if opt.startswith("-")}

    walk(typer.main.get_command(app), ())
    return out


def test_readme_command_table_matches_the_cli() -> None:
    commands = _cli_commands()
    rows = _readme_commands()
    assert rows, "README.md has no Commands table"
    documented: set[tuple[str, ...]] = set()
    problems = []
    for cell, row in rows:
        words = cell.split()[1:]
        path: tuple[str, ...] = ()
        for word in words:
            if any(p[: len(path) + 1] == (*path, word) for p in commands):
                path = (*path, word)
            else:
                break
        if path not in commands:
            problems.append(f"README row {cell!r} names no command of the CLI")
            continue
        documented.add(path)
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", row):
            if option not in commands[path]:
                problems.append(f"README row {cell!r}: {' '.join(path)} has no option {option}")
    for path in sorted(set(commands) - documented):
        problems.append(f"`shadowroute {' '.join(path)}` is missing from the README's Commands table")
    assert problems == []


@pytest.mark.parametrize("row", ["| `shadowroute nope` | x |", "| `shadowroute score` | (`--nope`) |"])
def test_readme_check_catches_a_wrong_row(row: str, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text().replace(
        "\n## Commands\n", f"\n## Commands\n\n{row}\n", 1)
    (tmp_path / "README.md").write_text(readme)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError):
        test_readme_command_table_matches_the_cli()
