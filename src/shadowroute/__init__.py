"""shadowroute: prove, on your own production traffic, which task types a cheaper model can take.

    async with Shadow.from_config("shadowroute.toml"):
        reply = await shadow(task="classify_intent", request=req,
                             call=lambda: client.chat.completions.create(**req))

The primary answer returns unchanged and on time; a sample is mirrored in the background to the
task's candidate models and the pairs are stored for scoring.
"""

from .config import Config, load_config
from .errors import (
    BadResponse,
    ClientError,
    ConfigError,
    ProviderError,
    ProviderTimeout,
    PromotionRefused,
    ProviderUnavailable,
    RateLimited,
    ServerError,
    ShadowrouteError,
    StoreError,
)
from .pipeline import Shadow, ShutdownReport, shadow
from .routing import Route, Router
from .stats import Stats
from .sync import SyncShadow
from .transport import ShadowTransport, SyncShadowTransport, task

__version__ = "0.1.0"

__all__ = [
    "BadResponse",
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
