"""What changed since the last report, from the stored decisions of both.

A change is something a person should hear about: a candidate that can now be promoted, one
that no longer can, a promoted model the drift check says to demote, a task type whose setup
cannot give a verdict (CONFIG PROBLEM). Each carries its one-line reason and, where there is
one, the command to act.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Change", "changes_between"]

Key = tuple[str, str, str]
"""(task type, model, kind) of a stored decision."""


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    """``new PROMOTE``, ``PROMOTE withdrawn``, ``DEMOTE RECOMMENDED``, ``CONFIG PROBLEM``."""
    task: str
    model: str
    verdict: str
    previous: str | None
    reason: str
    command: str | None = None

    def line(self) -> str:
        act = f" -> run `{self.command}`" if self.command else ""
        was = f" (was {self.previous})" if self.previous else ""
        return f"{self.kind}: {self.task} -> {self.model}{was}: {self.reason}{act}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _by_key(rows: Iterable[Mapping[str, Any]]) -> dict[Key, Mapping[str, Any]]:
    return {(r["task_type"], r["model"], r["kind"]): r for r in rows}


def changes_between(previous: Iterable[Mapping[str, Any]], current: Iterable[Mapping[str, Any]],
                    commands: Mapping[Key, str] | None = None) -> list[Change]:
    """The changes from the ``previous`` report's decision rows to the ``current`` ones (both
    as stored: ``task_type``, ``model``, ``kind``, ``verdict``, ``reason``); ``commands`` gives
    the command to act on a current decision. No previous report: every current PROMOTE,
    DEMOTE RECOMMENDED and CONFIG PROBLEM is new."""
    before, now = _by_key(previous), _by_key(current)
    commands = commands or {}
    out = []
    for key, row in sorted(now.items()):
        task, model, kind = key
        old = before.get(key)
        was = old["verdict"] if old is not None else None
        verdict = row["verdict"]
        if verdict == was:
            continue
        named = {"PROMOTE": "new PROMOTE", "CONFIG PROBLEM": "CONFIG PROBLEM",
                 "DEMOTE RECOMMENDED": "DEMOTE RECOMMENDED"}.get(verdict)
        if named is not None:
            out.append(Change(named, task, model, verdict, was, row["reason"],
                              commands.get(key)))
        elif was == "PROMOTE" and kind == "shadow":
            out.append(Change("PROMOTE withdrawn", task, model, verdict, was, row["reason"]))
    for key, old in sorted(before.items()):
        if key not in now and old["verdict"] == "PROMOTE" and key[2] == "shadow":
            out.append(Change("PROMOTE withdrawn", key[0], key[1], "no verdict", "PROMOTE",
                              "no longer decided (the candidate or task type is gone)"))
    return out
