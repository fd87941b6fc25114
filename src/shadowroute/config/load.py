"""The whole configuration (:class:`Config`) and :func:`load_config`.

Validated with pydantic; any problem becomes one :class:`~shadowroute.errors.ConfigError`
naming the file and the key. Secrets never live here: a model names the environment variable
that holds its key. ``$SHADOWROUTE_CONFIG`` names the file, ``$SHADOWROUTE_DATABASE_URL``
overrides its database.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from ..errors import ConfigError
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
        for task in self.tasks.values():
            for candidate in task.candidates:
                if candidate not in self.models:
                    known = ", ".join(sorted(self.models)) or "none declared"
                    raise ValueError(
                        f"tasks.{task.name}.candidates names unknown model {candidate!r} "
                        f"(models: {known})"
                    )
            if "schema" in task.scorers and task.json_schema is None:
                raise ValueError(
                    f"tasks.{task.name}.scorers uses 'schema' but the task has no json_schema"
                )
            if "judge" in task.scorers and self.judge is None:
                raise ValueError(
                    f"tasks.{task.name}.scorers uses 'judge' but no [judge] is configured"
                )
        if self.judge is not None:
            if self.judge.model not in self.models:
                known = ", ".join(sorted(self.models)) or "none declared"
                raise ValueError(f"judge.model names unknown model {self.judge.model!r} "
                                 f"(models: {known})")
            for task in self.tasks.values():
                if self.judge.model in task.candidates:
                    raise ValueError(
                        f"judge.model {self.judge.model!r} is also a candidate of task "
                        f"{task.name!r}; a model cannot judge its own answers: choose another "
                        "judge"
                    )
        return self

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


def _format_validation_error(exc: ValidationError) -> tuple[str, str | None]:
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"]) or None
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key (check the spelling against the config reference in README.md)"
    extra = len(exc.errors()) - 1
    if extra:
        message += f" (and {extra} more problem{'s' if extra > 1 else ''})"
    return message, key


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
        message, key = _format_validation_error(exc)
        raise ConfigError(message, path=source, key=key) from exc
    for name, task in config.tasks.items():
        if task.json_schema is not None:
            config.schema_for(name)  # fail at load time, not at 3 a.m.
    return config

