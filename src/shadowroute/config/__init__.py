"""``shadowroute.toml``: models, task types, the judge, decisions, routes, mirror, store,
redaction and sidecar settings, validated once at load (:func:`load_config`).

Importing this package is cheap: it loads pydantic, not the pipeline or the database layer.
"""

from .load import CONFIG_ENV, DATABASE_URL_ENV, DEFAULT_DATABASE_URL, Config, load_config
from .sections import (
    SCORER_NAMES,
    DecisionConfig,
    JudgeConfig,
    MirrorConfig,
    ModelConfig,
    NotifyConfig,
    RedactionConfig,
    RedactionPattern,
    RetentionConfig,
    RoutesConfig,
    ScorerConfig,
    SidecarConfig,
    StoreConfig,
    TaskConfig,
    TaskRule,
)

__all__ = [
    "CONFIG_ENV",
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "SCORER_NAMES",
    "Config",
    "DecisionConfig",
    "JudgeConfig",
    "MirrorConfig",
    "ModelConfig",
    "NotifyConfig",
    "RedactionConfig",
    "RedactionPattern",
    "RetentionConfig",
    "RoutesConfig",
    "ScorerConfig",
    "SidecarConfig",
    "StoreConfig",
    "TaskConfig",
    "TaskRule",
    "load_config",
]
