"""``shadowroute.toml``: models, task types, database, mirror and store settings.

Validated with pydantic; any problem becomes one :class:`ConfigError` naming the file and the
key. Secrets never live here: a model names the environment variable that holds its key.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

__all__ = [
    "DEFAULT_DATABASE_URL",
    "Config",
    "MirrorConfig",
    "ModelConfig",
    "SidecarConfig",
    "StoreConfig",
    "TaskConfig",
    "TaskRule",
    "load_config",
]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///shadowroute.db"
CONFIG_ENV = "SHADOWROUTE_CONFIG"
DATABASE_URL_ENV = "SHADOWROUTE_DATABASE_URL"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """A model shadowroute can call: a candidate, a primary replay, or later a judge."""

    name: str = ""
    model: str = ""
    """Model id sent upstream; defaults to the table key."""
    base_url: str
    """As the provider's SDK takes it: ``https://api.openai.com/v1``, ``https://api.anthropic.com``."""
    api: Literal["openai", "anthropic"] = "openai"
    api_key_env: str | None = None
    input_price: float = Field(0.0, ge=0)
    """USD per 1M input tokens."""
    output_price: float = Field(0.0, ge=0)
    """USD per 1M output tokens."""
    max_concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(2, ge=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_price + output_tokens * self.output_price) / 1_000_000

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class TaskConfig(_Strict):
    """A task type: which candidates shadow it and how much of its traffic is sampled."""

    name: str = ""
    candidates: tuple[str, ...] = ()
    sample_rate: float = Field(0.1, ge=0.0, le=1.0)
    json_schema: Path | None = None
    """Path to a JSON Schema file, relative to the config file."""
    daily_budget_usd: float | None = Field(None, ge=0)
    """Cap on candidate spend per UTC day for this task; ``None`` means no cap."""


class MirrorConfig(_Strict):
    queue_size: int = Field(2000, ge=1)
    """Captures waiting for mirroring; when full, new captures are dropped and counted."""
    workers: int = Field(32, ge=1)
    shutdown_deadline_s: float = Field(10.0, ge=0)
    retry_backoff_s: float = Field(0.5, ge=0)
    retry_backoff_max_s: float = Field(30.0, ge=0)
    circuit_failures: int = Field(5, ge=1)
    """Consecutive failures that open a candidate's circuit."""
    circuit_reset_s: float = Field(30.0, gt=0)
    """How long an open circuit waits before letting one trial call through."""


class StoreConfig(_Strict):
    batch_size: int = Field(500, ge=1)
    flush_interval_s: float = Field(0.25, gt=0)
    spool_dir: Path = Path(".shadowroute/spool")
    """Where batches go while the database is unreachable; replayed when it returns."""
    retry_interval_s: float = Field(5.0, gt=0)
    """How often the spool is replayed while it is not empty."""


class TaskRule(_Strict):
    """How the sidecar names the task type of a call without an ``X-Shadowroute-Task`` header.

    Every condition given must match: ``model`` is a glob on the request's model
    (``"gpt-4o-mini*"``), ``metadata`` compares fields of the request's ``metadata`` object.
    """

    task: str
    model: str | None = None
    metadata: dict[str, str] = {}


class SidecarConfig(_Strict):
    upstream: str | None = None
    """Where production calls go: ``https://api.openai.com``; paths are forwarded as they come
    (``/v1/chat/completions``). Upstreams come from here (or ``--upstream``) only, never from a
    request."""
    anthropic_upstream: str | None = None
    """Upstream for ``/v1/messages`` when it differs (``https://api.anthropic.com``)."""
    rules: tuple[TaskRule, ...] = ()
    default_task: str = "default"
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    """Larger request bodies are refused with 413."""
    upstream_timeout_s: float = Field(600.0, gt=0)
    max_connections: int = Field(512, ge=1)

    @field_validator("upstream", "anthropic_upstream")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value


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
    models: dict[str, ModelConfig] = {}
    tasks: dict[str, TaskConfig] = {}
    mirror: MirrorConfig = MirrorConfig()
    store: StoreConfig = StoreConfig()
    sidecar: SidecarConfig = SidecarConfig()
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
        return self

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
