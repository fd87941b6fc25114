"""Mirror: call candidate models safely with the same request the primary got.

:mod:`.provider` is one model over HTTP (one pooled client, one attempt, every failure a typed
:class:`~shadowroute.errors.ProviderError`); :mod:`.policy` is the resilience around it
(per-model concurrency limit, retries honouring ``Retry-After``, circuit breaker, daily budget).
A candidate's failure becomes part of its observation, never an exception for the caller.
:mod:`.wiring` is the one way to build them from the config (providers for a set of models, the
mirror with each model's limits, closing only the providers it made). A new provider API is a
branch in :class:`~.provider.Provider` over a translation in :mod:`shadowroute.formats`.
"""

from .policy import CircuitBreaker, Completer, DailyBudget, Mirror
from .provider import Provider, parse_retry_after
from .wiring import MirrorWiring, new_provider, wire_mirror

__all__ = [
    "CircuitBreaker",
    "Completer",
    "DailyBudget",
    "Mirror",
    "MirrorWiring",
    "Provider",
    "new_provider",
    "parse_retry_after",
    "wire_mirror",
]
