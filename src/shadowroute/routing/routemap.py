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
      extract_order:
        model: small
        tier: promoted
        mode: cascade           # small answers; a failed check escalates to the primary
        checks: [schema]
        primary: frontier
        ...
        evidence: {..., policy: schema, promise: {escalation_rate: 0.08, escalation_upper: 0.12,
                                                  break_even: 0.93}}
      summarize_ticket:
        model: small
        tier: promoted
        mode: partial           # small serves the requests the rule picks, the primary the rest
        rule: {any_of: [[[chars, <=, 412.0], [has_code, <=, 0.5]]], fields: []}
        ...
        evidence: {..., promise: {routed_share: 0.71}}

``mode`` is ``promote`` (the whole task type; left out of the file) unless a cascade or partial
route was promoted (``shadowroute promote --cascade`` / ``--partial``); a file without it reads
as ``promote``.

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
from .rules import PartialRule

__all__ = [
    "MODES",
    "MODE_CASCADE",
    "MODE_PARTIAL",
    "MODE_PROMOTE",
    "TIER_PRIMARY",
    "TIER_PROMOTED",
    "Route",
    "RouteMap",
    "dump_routes",
    "parse_routes",
    "read_routes",
    "route_fields",
    "routes_from_changes",
    "write_routes",
]

log = logging.getLogger("shadowroute")

TIER_PROMOTED = "promoted"
TIER_PRIMARY = "primary"
MODE_PROMOTE = "promote"
"""The promoted model serves every call of the task type."""
MODE_CASCADE = "cascade"
"""The promoted model answers; a failed check on its answer escalates to the primary."""
MODE_PARTIAL = "partial"
"""A rule on the request picks the calls the promoted model serves; the primary serves the
rest."""
MODES = (MODE_PROMOTE, MODE_CASCADE, MODE_PARTIAL)
_ROUTE_KEYS = ("mode", "checks", "rule")
"""Keys of a route change's ``evidence`` (in the database) that say how the route serves."""
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
    mode: str = MODE_PROMOTE
    """:data:`MODE_PROMOTE`, :data:`MODE_CASCADE` or :data:`MODE_PARTIAL`."""
    checks: tuple[str, ...] = ()
    """A cascade's checks (names of :data:`shadowroute.scoring.checks.CHECKS`)."""
    rule: PartialRule | None = None
    """A partial route's rule: the requests the promoted model serves."""

    @property
    def promoted(self) -> bool:
        return self.tier == TIER_PROMOTED

    @property
    def whole(self) -> bool:
        """The promoted model serves every call (a plain promotion): no check, no rule."""
        return self.mode == MODE_PROMOTE


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
    mode: Literal["promote", "cascade", "partial"] = "promote"
    checks: list[str] = []
    rule: dict[str, Any] | None = None
    evidence: dict[str, Any] = {}

    @model_validator(mode="after")
    def _one_time(self) -> _Entry:
        wanted = "promoted_at" if self.tier == TIER_PROMOTED else "demoted_at"
        if getattr(self, wanted) is None:
            raise ValueError(f"a {self.tier!r} route needs {wanted}")
        _shape(self.mode, self.checks, self.rule)
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


def _shape(mode: str, checks: Any, rule: Any) -> PartialRule | None:
    """Check what a route of ``mode`` needs (:class:`ValueError` says what is wrong); the
    partial rule, parsed."""
    if mode == MODE_CASCADE:
        from ..scoring.checks import CHECKS  # on first use: a map of promotions needs none

        if not checks or not isinstance(checks, list | tuple):
            raise ValueError("a cascade route needs checks: a list of check names")
        unknown = [c for c in checks if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown check {unknown[0]!r} (checks: {', '.join(CHECKS)})")
    elif checks:
        raise ValueError(f"checks belong to a cascade route, not a {mode!r} one")
    if mode == MODE_PARTIAL:
        if not isinstance(rule, Mapping):
            raise ValueError("a partial route needs rule: {any_of: [...], fields: [...]}")
        return PartialRule.from_dict(rule)
    if rule is not None:
        raise ValueError(f"a rule belongs to a partial route, not a {mode!r} one")
    return None


def _how(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """A route change's evidence (a database row's) split into how the route serves (the
    :class:`Route` fields ``mode``, ``checks``, ``rule``) and the evidence proper."""
    mode = evidence.get("mode") or MODE_PROMOTE
    checks = tuple(evidence.get("checks") or ())
    return {"mode": mode, "checks": checks,
            "rule": _shape(mode, list(checks), evidence.get("rule")),
            "evidence": {k: v for k, v in evidence.items() if k not in _ROUTE_KEYS}}


def route_fields(route: Route) -> dict[str, Any]:
    """How ``route`` serves, as a route change's evidence keys (the inverse of reading them):
    nothing for a plain promotion."""
    if route.mode == MODE_PROMOTE:
        return {}
    out: dict[str, Any] = {"mode": route.mode}
    if route.checks:
        out["checks"] = list(route.checks)
    if route.rule is not None:
        out["rule"] = route.rule.to_dict()
    return out


def routes_from_changes(changes: Iterable[Mapping[str, Any]]) -> dict[str, Route]:
    """The current map from route changes (database rows, oldest first): the latest per task.
    A demotion's route serves the whole task type (its primary): no mode."""
    current: dict[str, Route] = {}
    for c in changes:
        promoted = c["action"] == "promote"
        how = _how(c["evidence"] or {})
        if not promoted:
            how = {"evidence": how["evidence"]}
        current[c["task_type"]] = Route(
            task=c["task_type"], model=c["model"],
            tier=TIER_PROMOTED if promoted else TIER_PRIMARY, primary=c["primary_model"],
            since=c["created_at"], by=c["actor"], forced=bool(c["forced"]), reason=c["reason"],
            **how,
        )
    return current


def dump_routes(routes: Mapping[str, Route]) -> str:
    """The file's text: stable (task types sorted) so that a change shows as a small diff."""
    body = {
        "version": 1,
        "routes": {
            task: {
                "model": r.model, "tier": r.tier, **route_fields(r), "primary": r.primary,
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
                    by=e.by, forced=e.forced, reason=e.reason, evidence=e.evidence,
                    mode=e.mode, checks=tuple(e.checks),
                    rule=PartialRule.from_dict(e.rule) if e.rule is not None else None)
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
