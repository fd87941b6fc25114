"""The route map file, ``routes.yaml``: which model serves each task type, and on what evidence.

    version: 1
    routes:
      classify_intent:
        model: small            # serves the task type
        tier: promoted          # or "primary": demoted, the primary serves it again
        primary: frontier       # the model it replaced (the reverse shadow calls it)
        promoted_at: '2026-11-29T23:59:01+00:00'   # demoted_at for tier "primary"
        by: alice
        forced: false
        reason: null
        evidence: {report: 3f2a..., n: 1204, pass_rate: 0.981, lower_bound: 0.957, ...}

The database keeps every change (``shadowroute routes --history``); this file is the current
map exported from it, meant to be committed to the application's repository and reviewed like
code. :class:`RouteMap` reads it and re-reads it when it changes, at most once per interval, so
asking it for a task type's route costs a dict lookup.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..errors import ConfigError

__all__ = [
    "TIER_PRIMARY",
    "TIER_PROMOTED",
    "Route",
    "RouteMap",
    "dump_routes",
    "parse_routes",
    "read_routes",
    "routes_from_changes",
    "write_routes",
]

log = logging.getLogger("shadowroute")

TIER_PROMOTED = "promoted"
TIER_PRIMARY = "primary"
_HEADER = (
    "# shadowroute route map: which model serves each task type. Written by `shadowroute\n"
    "# promote` and `shadowroute demote` from the database, which keeps every change\n"
    "# (`shadowroute routes --history`). Review it like code; do not edit it by hand.\n"
)


@dataclass(frozen=True, slots=True)
class Route:
    task: str
    model: str
    """The model serving the task type: the promoted model, or the primary after a demotion."""
    tier: str
    """:data:`TIER_PROMOTED` or :data:`TIER_PRIMARY`."""
    primary: str
    """The primary the promoted model replaced (called again by the reverse shadow)."""
    since: datetime
    """When this route took effect (``promoted_at`` / ``demoted_at`` in the file)."""
    by: str
    forced: bool = False
    reason: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.tier == TIER_PROMOTED


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    tier: Literal["promoted", "primary"]
    primary: str
    promoted_at: datetime | None = None
    demoted_at: datetime | None = None
    by: str
    forced: bool = False
    reason: str | None = None
    evidence: dict[str, Any] = {}

    @model_validator(mode="after")
    def _one_time(self) -> _Entry:
        wanted = "promoted_at" if self.tier == TIER_PROMOTED else "demoted_at"
        if getattr(self, wanted) is None:
            raise ValueError(f"a {self.tier!r} route needs {wanted}")
        return self

    @property
    def since(self) -> datetime:
        found = self.promoted_at if self.tier == TIER_PROMOTED else self.demoted_at
        assert found is not None  # checked by the validator
        return found


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    routes: dict[str, _Entry] = {}


def routes_from_changes(changes: Iterable[Mapping[str, Any]]) -> dict[str, Route]:
    """The current map from route changes (database rows, oldest first): the latest per task."""
    current: dict[str, Route] = {}
    for c in changes:
        promoted = c["action"] == "promote"
        current[c["task_type"]] = Route(
            task=c["task_type"], model=c["model"],
            tier=TIER_PROMOTED if promoted else TIER_PRIMARY, primary=c["primary_model"],
            since=c["created_at"], by=c["actor"], forced=bool(c["forced"]), reason=c["reason"],
            evidence=dict(c["evidence"] or {}),
        )
    return current


def dump_routes(routes: Mapping[str, Route]) -> str:
    """The file's text: stable (task types sorted) so that a change shows as a small diff."""
    body = {
        "version": 1,
        "routes": {
            task: {
                "model": r.model, "tier": r.tier, "primary": r.primary,
                "promoted_at" if r.promoted else "demoted_at": r.since.isoformat(),
                "by": r.by, "forced": r.forced,
                "reason": r.reason, "evidence": dict(r.evidence),
            }
            for task, r in sorted(routes.items())
        },
    }
    return _HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


def parse_routes(text: str, source: str = "routes.yaml") -> dict[str, Route]:
    """Read the file's text; anything malformed is a :class:`ConfigError` naming the key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}".replace("\n", " "), path=source) from exc
    try:
        parsed = _File.model_validate(data if data is not None else {"version": 1})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"]) or None
        raise ConfigError(err["msg"].removeprefix("Value error, "), path=source,
                          key=key) from exc
    return {
        task: Route(task=task, model=e.model, tier=e.tier, primary=e.primary, since=e.since,
                    by=e.by, forced=e.forced, reason=e.reason, evidence=e.evidence)
        for task, e in parsed.routes.items()
    }


def read_routes(path: str | os.PathLike[str]) -> dict[str, Route]:
    """The map in ``path``; an absent file is an empty map (nothing promoted yet)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the route map: {exc}", path=str(path)) from exc
    return parse_routes(text, str(path))


def write_routes(path: str | os.PathLike[str], routes: Mapping[str, Route]) -> None:
    """Replace the file atomically: a reader sees the old map or the new one, never half."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(dump_routes(routes))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RouteMap:
    """The route map file, re-read when it changes (checked at most every ``interval_s``).

    A file that becomes unreadable or malformed keeps the last good map in force (production
    keeps its routes), is logged once and counted in :attr:`errors`; one that is bad from the
    start leaves every task type on its primary until it is fixed.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        self.errors = 0
        self.loads = 0
        self._clock = clock
        self._routes: dict[str, Route] = {}
        self._signature: tuple[int, int, int] | None = (-1, -1, -1)  # not read yet
        self._checked = -float("inf")
        self.get("")

    def get(self, task: str) -> Route | None:
        """The task type's route while it is promoted; ``None`` when the primary serves it."""
        now = self._clock()
        if now - self._checked >= self.interval_s:
            self._checked = now
            self._refresh()
        route = self._routes.get(task)
        return route if route is not None and route.promoted else None

    def routes(self) -> dict[str, Route]:
        """Every entry of the file, demoted ones included."""
        self.get("")
        return dict(self._routes)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _refresh(self) -> None:
        signature = self._stat()
        if signature == self._signature:
            return
        self._signature = signature
        try:
            self._routes = read_routes(self.path)
            self.loads += 1
        except ConfigError as exc:
            self.errors += 1
            log.warning("shadowroute: keeping the previous route map: %s", exc)
