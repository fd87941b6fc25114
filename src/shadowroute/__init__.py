"""shadowroute: prove, on your own production traffic, which task types a cheaper model can take.

    async with Shadow.from_config("shadowroute.toml"):
        reply = await shadow(task="classify_intent", request=req,
                             call=lambda: client.chat.completions.create(**req))

The primary answer returns unchanged and on time; a sample is mirrored in the background to the
task's candidate models and the pairs are stored for scoring.
"""

from typing import TYPE_CHECKING, Any

# The names are imported on first use (PEP 562): `shadowroute serve --help` or `import
# shadowroute.config` should not pay for SQLAlchemy, httpx and the pipeline (~1.5 s).
_EXPORTS = {
    "Config": "config", "load_config": "config",
    "BadResponse": "errors", "ClientError": "errors", "ConfigError": "errors",
    "ProviderError": "errors", "ProviderTimeout": "errors", "PromotionRefused": "errors",
    "ProviderUnavailable": "errors", "RateLimited": "errors", "ServerError": "errors",
    "ShadowrouteError": "errors", "StoreError": "errors",
    "Shadow": "pipeline.core", "ShutdownReport": "pipeline.core", "shadow": "pipeline.core",
    "ChatCompletion": "routing", "Route": "routing", "Router": "routing",
    "Stats": "stats",
    "SyncShadow": "pipeline.sync",
    "ShadowTransport": "capture.transport", "SyncShadowTransport": "capture.transport",
    "task": "capture.transport",
}

if TYPE_CHECKING:
    from .capture.transport import ShadowTransport, SyncShadowTransport, task
    from .config import Config, load_config
    from .errors import (
        BadResponse,
        ClientError,
        ConfigError,
        PromotionRefused,
        ProviderError,
        ProviderTimeout,
        ProviderUnavailable,
        RateLimited,
        ServerError,
        ShadowrouteError,
        StoreError,
    )
    from .pipeline.core import Shadow, ShutdownReport, shadow
    from .pipeline.sync import SyncShadow
    from .routing import ChatCompletion, Route, Router
    from .stats import Stats


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shadowroute' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "BadResponse",
    "ChatCompletion",
    "ClientError",
    "Config",
    "ConfigError",
    "ProviderError",
    "ProviderTimeout",
    "PromotionRefused",
    "ProviderUnavailable",
    "RateLimited",
    "Route",
    "Router",
    "ServerError",
    "Shadow",
    "ShadowTransport",
    "ShadowrouteError",
    "ShutdownReport",
    "Stats",
    "StoreError",
    "SyncShadow",
    "SyncShadowTransport",
    "__version__",
    "load_config",
    "shadow",
    "task",
]
