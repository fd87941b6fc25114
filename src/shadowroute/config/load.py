"""The whole configuration (:class:`Config`) and :func:`load_config`.

Validated with pydantic; the problems become one :class:`~shadowroute.errors.ConfigError`
naming the file and, for each problem (all are listed), its dotted key; an unknown key comes with
the nearest known one ("did you mean"). ``Config.warnings()`` holds what is valid but probably
not meant. Secrets never live here: a model names the environment variable
that holds its key. ``$SHADOWROUTE_CONFIG`` names the file, ``$SHADOWROUTE_DATABASE_URL``
overrides its database.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import tomllib
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, Field, ValidationError, model_validator

from ..errors import ConfigError
from .hooks import ScorerKeyError, did_you_mean
from .sections import (
    DecisionConfig,
    JudgeConfig,
    MirrorConfig,
    ModelConfig,
    NotifyConfig,
    RedactionConfig,
    RetentionConfig,
    RoutesConfig,
    ScorerConfig,
    SidecarConfig,
    StoreConfig,
    TaskConfig,
    _Strict,
)

__all__ = ["CONFIG_ENV", "DATABASE_URL_ENV", "DEFAULT_DATABASE_URL", "Config", "load_config"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///shadowroute.db"
CONFIG_ENV = "SHADOWROUTE_CONFIG"
DATABASE_URL_ENV = "SHADOWROUTE_DATABASE_URL"


class Config(_Strict):
    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy URL of the store: ``sqlite+aiosqlite:///file.db`` or
    ``postgresql+psycopg://user@host/db``; ``$SHADOWROUTE_DATABASE_URL`` overrides it."""
    seed: int | None = None
    """When set, sampling is a deterministic function of the request (same request, same choice)."""
    default_sample_rate: float = Field(0.1, ge=0.0, le=1.0)
    """Sample rate for task types not declared under [tasks] (they have no candidates: their
    exchanges are stored for later replay); 0 only counts them."""
    remote: str | None = None
    """Remote mode: send captures to this sidecar (``http://127.0.0.1:8787``) instead of
    mirroring and storing them in this process."""
    remote_token_env: str | None = None
    """The environment variable holding the sidecar's ingest token (its
    ``[sidecar] ingest_token_env``), sent as ``Authorization: Bearer``."""
    remote_name: str | None = None
    """How this app's captures are labelled in the store (``remote:<name>``); the host name by
    default."""
    models: dict[str, ModelConfig] = {}
    tasks: dict[str, TaskConfig] = {}
    judge: JudgeConfig | None = None
    decision: DecisionConfig = DecisionConfig()
    routes: RoutesConfig = RoutesConfig()
    mirror: MirrorConfig = MirrorConfig()
    store: StoreConfig = StoreConfig()
    sidecar: SidecarConfig = SidecarConfig()
    redaction: RedactionConfig = RedactionConfig()
    retention: RetentionConfig = RetentionConfig()
    notify: NotifyConfig = NotifyConfig()
    source: str = "<defaults>"
    """Where this configuration came from, for error messages."""

    @model_validator(mode="before")
    @classmethod
    def _fill_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for section in ("models", "tasks"):
                table = data.get(section)
                if isinstance(table, dict):
                    data[section] = {key: _named(section, key, value) for key, value in table.items()}
        return data

    @model_validator(mode="after")
    def _check_references(self) -> Config:
        problems: list[str] = []
        known = ", ".join(sorted(self.models)) or "none declared"
        for task in self.tasks.values():
            for candidate in task.candidates:
                if candidate not in self.models:
                    problems.append(
                        f"tasks.{task.name}.candidates names unknown model {candidate!r} "
                        f"(models: {known}){did_you_mean(candidate, self.models)}"
                    )
            if "schema" in task.scorers and task.json_schema is None:
                problems.append(
                    f"tasks.{task.name}.scorers uses 'schema' but the task has no json_schema"
                )
            if "judge" in task.scorers and self.judge is None:
                problems.append(
                    f"tasks.{task.name}.scorers uses 'judge' but no [judge] is configured: add "
                    "a [judge] section, or remove 'judge' from the task's scorers"
                )
        if self.judge is not None:
            if self.judge.model not in self.models:
                problems.append(f"judge.model names unknown model {self.judge.model!r} "
                                f"(models: {known}){did_you_mean(self.judge.model, self.models)}")
            for task in self.tasks.values():
                if self.judge.model in task.candidates:
                    problems.append(
                        f"judge.model {self.judge.model!r} is also a candidate of task "
                        f"{task.name!r}; a model cannot judge its own answers: choose another "
                        "judge"
                    )
        if problems:
            raise _Problems(problems)
        return self

    def warnings(self) -> list[str]:
        """What is valid but probably not meant, one line each (``config check`` and
        ``score`` print them): today, task types whose default scorers leave the judge out
        because there is no ``[judge]``."""
        out = []
        defaulted = sorted(t.name for t in self.tasks.values() if not t.scorers)
        if self.judge is None and defaulted:
            names = ", ".join(defaulted)
            out.append(
                f"no [judge] configured: the default scorers of task type"
                f"{'s' if len(defaulted) > 1 else ''} {names} leave the LLM judge out "
                "(similarity, or schema with a json_schema, only); add a [judge] section, or "
                "list their scorers explicitly to keep it this way"
            )
        return out

    def scorers_for(self, task: str) -> dict[str, ScorerConfig]:
        """The task's scorers: as configured, else ``schema`` (with a JSON schema) or
        ``similarity``, plus ``judge`` when a judge is configured."""
        settings = self.task(task)
        if settings.scorers:
            return dict(settings.scorers)
        chosen = {"schema" if settings.json_schema is not None else "similarity": ScorerConfig()}
        if self.judge is not None:
            chosen["judge"] = ScorerConfig()
        return chosen

    def task(self, name: str) -> TaskConfig:
        """The task's settings; undeclared task types get no candidates and the default rate."""
        found = self.tasks.get(name)
        if found is not None:
            return found
        return TaskConfig(name=name, sample_rate=self.default_sample_rate)

    def policy_fingerprint(self, name: str) -> str:
        """A digest of what a verdict of task ``name`` rests on here: its settings (scorers,
        bar, candidates, schema) and ``[decision]``. A settled verdict holds only while this
        is unchanged (see ``[decision] maintenance_rate``)."""
        settings = {"task": self.task(name).model_dump(mode="json", exclude={
                        "sample_rate", "daily_budget_usd", "route_features"}),
                    "decision": self.decision.model_dump(
                        mode="json", exclude={"maintenance_rate", "evaluation_replay_rate"}),
                    "judge": self.judge.model_dump(mode="json") if self.judge else None}
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def model_named(self, name: str) -> ModelConfig | None:
        """A declared model by its table key or by the upstream id it sends."""
        found = self.models.get(name)
        if found is not None:
            return found
        return next((m for m in self.models.values() if m.model == name), None)

    def reverse_rate(self, task: str) -> float:
        """The reverse-shadow rate of a promoted task type (its own, else ``[routes]``)."""
        own = self.task(task).reverse_shadow_rate
        return self.routes.reverse_shadow_rate if own is None else own

    def routes_file(self) -> Path:
        """The route map file, resolved against the config file's folder."""
        return self._resolve(self.routes.file)

    def schema_for(self, task: str) -> dict[str, Any] | None:
        """The task's JSON Schema, loaded from its file (relative to the config file)."""
        path = self.task(task).json_schema
        if path is None:
            return None
        return _read_schema(self._resolve(path), self.source, f"tasks.{task}.json_schema")

    def _resolve(self, path: Path) -> Path:
        if path.is_absolute() or self.source.startswith("<"):
            return path
        return Path(self.source).parent / path


def _named(section: str, key: str, value: Any) -> Any:
    """Give each [models.X] / [tasks.X] table its key as ``name`` (and a model its upstream id)."""
    if not isinstance(value, dict):
        return value
    if section == "models":
        return {"model": key, **value, "name": key}
    return {**value, "name": key}


def _read_schema(path: Path, source: str, key: str) -> dict[str, Any]:
    try:
        schema = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"JSON schema file {str(path)!r} not found", path=source, key=key) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read JSON schema {str(path)!r}: {exc}", path=source, key=key) from exc
    if not isinstance(schema, dict):
        raise ConfigError(f"JSON schema {str(path)!r} must be an object", path=source, key=key)
    return schema


class _Problems(ValueError):
    """Every cross-reference problem of a :class:`Config` at once (pydantic keeps the
    exception, so :func:`_problems` lists them one by one)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


_INTERNAL_KEYS = {"source"}
"""Fields of :class:`Config` that are not written in the file."""


def _table_keys(loc: tuple[int | str, ...]) -> list[str] | None:
    """The keys allowed in the table that holds ``loc``'s last part (``None`` if unknown)."""
    annotation: Any = Config
    parts = list(loc[:-1])
    while True:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not parts:
                names = set(annotation.model_fields)
                if annotation in (Config,):
                    names -= _INTERNAL_KEYS
                if annotation in (ModelConfig, TaskConfig):
                    names.discard("name")  # the table's own key
                return sorted(names)
            field = annotation.model_fields.get(str(parts.pop(0)))
            if field is None:
                return None
            annotation = field.annotation
        elif get_origin(annotation) in (dict, tuple, list) and parts:
            args = [a for a in get_args(annotation) if a is not Ellipsis]
            annotation = args[-1] if get_origin(annotation) is dict else args[0]
            parts.pop(0)
        else:
            return None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _problems(exc: ValidationError) -> list[tuple[str | None, str]]:
    """Every problem of ``exc`` as (dotted key, message), unknown keys with a suggestion."""
    out: list[tuple[str | None, str]] = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, _Problems):
            out += [(None, problem) for problem in cause.problems]
            continue
        key = ".".join(str(part) for part in err["loc"]) or None
        message = err["msg"].removeprefix("Value error, ")
        if isinstance(cause, ScorerKeyError):  # a problem of one scorer's table: name it
            key, message = f"{key}.{cause.subkey}" if key else cause.subkey, str(cause)
        if err["type"] == "extra_forbidden":
            known = _table_keys(err["loc"]) or []
            match = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
            if match:
                message = f"unknown key; did you mean `{match[0]}`?"
            elif known:
                message = f"unknown key (this table takes: {', '.join(known)})"
            else:
                message = "unknown key (check the spelling against the config reference in README.md)"
        out.append((key, message))
    return out


def load_config(
    path: str | os.PathLike[str] | None = None, *, data: dict[str, Any] | None = None
) -> Config:
    """Load and validate a configuration.

    ``path`` defaults to ``$SHADOWROUTE_CONFIG``, then ``./shadowroute.toml`` if it exists, else
    built-in defaults. ``data`` validates an in-memory mapping instead (tests, embedding).
    ``$SHADOWROUTE_DATABASE_URL`` overrides the file's ``database_url``.
    """
    source = "<dict>"
    if data is None:
        if path is None:
            path = os.environ.get(CONFIG_ENV) or (
                "shadowroute.toml" if Path("shadowroute.toml").exists() else None
            )
        if path is None:
            data, source = {}, "<defaults>"
        else:
            source = str(path)
            try:
                data = tomllib.loads(Path(path).read_text())
            except FileNotFoundError:
                raise ConfigError("config file not found", path=source) from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"invalid TOML: {exc}", path=source) from exc
            except OSError as exc:
                raise ConfigError(f"cannot read config file: {exc}", path=source) from exc
    data = dict(data)
    data["source"] = source
    env_url = os.environ.get(DATABASE_URL_ENV)
    if env_url:
        data["database_url"] = env_url
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc)
        key, message = problems[0]
        raise ConfigError(message, path=source, key=key, problems=problems) from exc
    unreadable: list[tuple[str | None, str]] = []
    for name, task in config.tasks.items():
        if task.json_schema is not None:
            try:
                config.schema_for(name)  # fail at load time, not at 3 a.m.
            except ConfigError as exc:
                unreadable.append((exc.key, str(exc).removeprefix(f"{source}: {exc.key}: ")))
    if unreadable:
        key, message = unreadable[0]
        raise ConfigError(message, path=source, key=key, problems=unreadable)
    return config

