"""Mirror: call candidate models safely with the same request the primary got.

:mod:`.provider` is one model over HTTP (one pooled client, one attempt, every failure a typed
:class:`~shadowroute.errors.ProviderError`); :mod:`.policy` is the resilience around it
(per-model concurrency limit, retries honouring ``Retry-After``, circuit breaker, daily budget).
A candidate's failure becomes part of its observation, never an exception for the caller.
A new provider API is a branch in :class:`~.provider.Provider` over a translation in
:mod:`shadowroute.formats`.
"""

from .policy import CircuitBreaker, Completer, DailyBudget, Mirror
from .provider import Provider, parse_retry_after

__all__ = ["CircuitBreaker", "Completer", "DailyBudget", "Mirror", "Provider", "parse_retry_after"]
