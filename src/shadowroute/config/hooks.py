"""User code named in the config, resolved once when the config is loaded so that a typo fails at
startup, not on traffic: ``"package.module:function"`` hooks (e.g. ``[redaction] hook``) and
scorer plugins (``[tasks.X.scorers.NAME]``: a ``"package.module:factory"`` path or the name of an
installed ``shadowroute.scorers`` entry point).

A scorer plugin's factory declares itself with three attributes (set by
:func:`shadowroute.scoring.plugins.plugin_info`, or class attributes): ``name``, ``version``
and ``options`` (option name -> default), and optionally ``hard``. :func:`declaration_of`
reads them; :func:`plugin_options` checks a table's options against them.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import json
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SCORER_GROUP",
    "Hook",
    "PluginDeclaration",
    "ScorerKeyError",
    "check_plugin_table",
    "declaration_of",
    "import_hook",
    "load_scorer_plugin",
    "plugin_options",
    "scorer_entry_points",
]

Hook = Callable[[str], str]

SCORER_GROUP = "shadowroute.scorers"
"""The entry-point group scorer plugins are installed under."""


def _resolve(path: str, what: str) -> Any:
    if ":" not in path:
        raise ValueError(f"{path!r} must look like 'package.module:{what}'")
    try:
        return pkgutil.resolve_name(path)
    except Exception as exc:  # ImportError, AttributeError, or the module failing to import
        raise ValueError(f"cannot import {path!r}: {type(exc).__name__}: {exc}") from exc


def import_hook(path: str) -> Hook:
    """The function named by ``"package.module:function"``; ValueError when it is not one."""
    found = _resolve(path, "function")
    if not callable(found):
        raise ValueError(f"{path!r} is not a function (str -> str)")
    return found  # type: ignore[no-any-return]


def scorer_entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The installed scorer plugins by entry-point name (group ``shadowroute.scorers``)."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=SCORER_GROUP)}


def did_you_mean(name: str, known: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


def load_scorer_plugin(ref: str) -> Any:
    """The factory ``ref`` names: ``"package.module:factory"``, or the name of an installed
    ``shadowroute.scorers`` entry point. ValueError (one line, with a "did you mean" for
    entry-point names) when it cannot be loaded."""
    if ":" in ref:
        found = _resolve(ref, "factory")
    else:
        installed = scorer_entry_points()
        entry = installed.get(ref)
        if entry is None:
            names = ", ".join(sorted(installed)) or "none"
            raise ValueError(
                f"no scorer plugin {ref!r} is installed (entry points of group {SCORER_GROUP!r}: "
                f"{names}){did_you_mean(ref, installed)}"
            )
        try:
            found = entry.load()
        except Exception as exc:  # noqa: BLE001 - the plugin's own import failing, whatever it is
            raise ValueError(
                f"cannot load scorer plugin {ref!r} ({entry.value}): {type(exc).__name__}: {exc}"
            ) from exc
    if not callable(found):
        raise ValueError(f"scorer plugin {ref!r} is not a factory (a class or a function)")
    return found


@dataclass(frozen=True, slots=True)
class PluginDeclaration:
    """What a scorer plugin says about itself."""

    name: str
    version: str
    options: Mapping[str, Any]
    """Every option it takes, with its default."""
    hard: bool = False
    """Its failure is deterministic and no judge may override it (like ``schema``)."""


def declaration_of(factory: Any, ref: str) -> PluginDeclaration:
    """The declaration of the plugin ``ref`` loaded as ``factory``; ValueError when missing."""
    name, version = getattr(factory, "name", None), getattr(factory, "version", None)
    options = getattr(factory, "options", None)
    hint = "declare it with @shadowroute.scoring.plugins.plugin_info(name=..., version=...)"
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"scorer plugin {ref!r} declares no name: {hint}")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str) or not version.strip() or any(c.isspace() for c in version):
        raise ValueError(f"scorer plugin {ref!r} declares no version (a string without spaces, "
                         f"bumped when its results change): {hint}")
    if options is None:
        options = {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise ValueError(f"scorer plugin {ref!r}: its options must be a mapping of option "
                         "name -> default")
    try:
        json.dumps(dict(options))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"scorer plugin {ref!r}: its option defaults must be JSON-like "
                         f"(strings, numbers, booleans, lists, tables): {exc}") from None
    return PluginDeclaration(name, version, dict(options), bool(getattr(factory, "hard", False)))


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"), ((int, float), "a number"), (str, "a string"),
    ((list, tuple), "a list"), (Mapping, "a table"),
)


def _kind(value: Any) -> str | None:
    for types, label in _KINDS:
        if isinstance(value, types):
            return label
    return None


def plugin_options(declaration: PluginDeclaration, given: Mapping[str, Any]) -> dict[str, Any]:
    """The declared defaults overridden by ``given``; ValueError for an option the plugin does
    not declare, or a value of another kind than its default (a default of ``None`` takes
    anything)."""
    declared = declaration.options
    for key, value in given.items():
        if key not in declared:
            takes = ", ".join(sorted(declared)) or "no options"
            raise ValueError(f"plugin {declaration.name!r} takes no option {key!r}"
                             f"{did_you_mean(key, declared)} (it takes: {takes})")
        default = declared[key]
        expected = _kind(default)
        if default is None or expected is None:
            continue
        got = _kind(value)
        if got != expected:
            raise ValueError(f"plugin {declaration.name!r} option {key!r} must be {expected} "
                             f"(like its default {default!r}), got {value!r}")
    return {**declared, **given}


class ScorerKeyError(ValueError):
    """A problem of one scorer table: ``subkey`` (``pii_leak.plugin``) is appended to the
    dotted key of the ``scorers`` table the error is reported at."""

    def __init__(self, subkey: str, message: str) -> None:
        self.subkey = subkey
        super().__init__(message)


def check_plugin_table(name: str, plugin: str | None, options: Mapping[str, Any] | None,
                       other_keys: Sequence[str], builtin: Sequence[str]) -> None:
    """``[tasks.X.scorers.<name>]``, no built-in scorer: its plugin (``plugin``, else the
    entry point ``name``) must load and declare itself, and the table may only hold ``plugin``
    and the plugin's own ``options`` (:class:`ScorerKeyError` naming the key otherwise)."""
    if plugin is None:
        installed = scorer_entry_points()
        if name not in installed:
            plugins = ", ".join(sorted(installed)) or "none installed"
            raise ScorerKeyError(
                name, f"unknown scorer {name!r} (scorers: {', '.join(builtin)}; plugins: "
                f"{plugins}){did_you_mean(name, [*builtin, *installed])}; a plugin that is not "
                'installed is named with plugin = "package.module:factory"'
            )
    ref = plugin or name
    try:
        declaration = declaration_of(load_scorer_plugin(ref), ref)
    except ValueError as exc:
        raise ScorerKeyError(f"{name}.plugin" if plugin else name, str(exc)) from None
    if other_keys:
        raise ScorerKeyError(
            f"{name}.{other_keys[0]}", f"a plugin scorer takes its options in options = "
            f"{{...}}, not {other_keys[0]!r} (it takes: "
            f"{', '.join(sorted(declaration.options)) or 'no options'})"
        )
    try:
        plugin_options(declaration, options or {})
    except ValueError as exc:
        raise ScorerKeyError(f"{name}.options", str(exc)) from None
