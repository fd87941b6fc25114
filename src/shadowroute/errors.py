"""Every error shadowroute raises, with a message a user can act on.

    ShadowrouteError
    ├── ConfigError              bad or missing configuration (names the key and the file)
    ├── ProviderError            a model call failed; ``kind`` classifies it
    │   ├── ProviderTimeout      no answer within the model's timeout            kind="timeout"
    │   ├── ProviderUnavailable  connection refused / reset, DNS, protocol error kind="connection"
    │   ├── RateLimited          HTTP 429; ``retry_after`` seconds when sent     kind="rate_limited"
    │   ├── ServerError          HTTP 5xx (503/529 may carry ``retry_after``)   kind="server_error"
    │   ├── ClientError          HTTP 4xx other than 429                         kind="client_error"
    │   └── BadResponse          2xx whose body is not a usable completion      kind="bad_response"
    ├── StoreError               the database could not be read or written
    └── PromotionRefused         the latest evidence does not allow this route change

A candidate skipped by policy (its circuit is open, its task's daily budget is spent) is not an
error: it is counted in ``Stats.skipped_circuit_open`` / ``Stats.skipped_budget``.
Lower-level exceptions (httpx, SQLAlchemy, pydantic) are translated with ``raise ... from exc``.
None of these ever reach production code through ``shadow()`` or ``ShadowTransport``: there they
are counted in :class:`shadowroute.Stats` and reported through the ``on_error`` hook.
"""

from __future__ import annotations

__all__ = [
    "BadResponse",
    "ClientError",
    "ConfigError",
    "ProviderError",
    "ProviderTimeout",
    "PromotionRefused",
    "ProviderUnavailable",
    "RateLimited",
    "ServerError",
    "ShadowrouteError",
    "StoreError",
    "raised_as_itself",
]


class ShadowrouteError(Exception):
    """Base class of every error shadowroute raises on purpose."""


class ConfigError(ShadowrouteError):
    """The configuration is invalid; the message names the file and the key.

    ``problems`` lists every problem found at once as ``(key, message)`` pairs: with more than
    one, the error reads ``{path} has N problems:`` and then one indented line per problem
    (``key`` and ``message`` are then the first problem's).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        key: str | None = None,
        problems: list[tuple[str | None, str]] | None = None,
    ) -> None:
        self.path = path
        self.key = key
        self.problems = list(problems) if problems else [(key, message)]
        if len(self.problems) > 1:
            lines = [f"{path or 'the configuration'} has {len(self.problems)} problems:"]
            lines += [f"  {k}: {m}" if k else f"  {m}" for k, m in self.problems]
            super().__init__("\n".join(lines))
            return
        where = ""
        if path and key:
            where = f"{path}: {key}: "
        elif path:
            where = f"{path}: "
        elif key:
            where = f"{key}: "
        super().__init__(f"{where}{message}")


class ProviderError(ShadowrouteError):
    """A call to a model failed. ``kind`` is a short stable label used in stats and storage."""

    kind = "provider_error"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.model = model
        self.status = status
        self.retry_after = retry_after
        """Seconds the provider asked us to wait (``Retry-After``), when it said."""
        super().__init__(f"{model}: {message}" if model else message)


class ProviderTimeout(ProviderError):
    kind = "timeout"
    retryable = True


class ProviderUnavailable(ProviderError):
    kind = "connection"
    retryable = True


class RateLimited(ProviderError):
    kind = "rate_limited"
    retryable = True


class ServerError(ProviderError):
    kind = "server_error"
    retryable = True


class ClientError(ProviderError):
    kind = "client_error"


class BadResponse(ProviderError):
    kind = "bad_response"


class StoreError(ShadowrouteError):
    """The database could not be reached or written; captures go to the spool instead.

    ``rejected`` is true when the database refused the data itself (a constraint, a value it
    cannot store) rather than being unreachable: retrying that batch would never succeed.
    """

    def __init__(self, message: str, *, rejected: bool = False) -> None:
        self.rejected = rejected
        super().__init__(message)


class PromotionRefused(ShadowrouteError):
    """``shadowroute promote`` / ``demote`` / ``retire`` refused: the message names the failing
    criterion (or what is missing) and, when forcing could work, how to go ahead anyway
    (``--force --reason``); an unknown task type is named with the nearest known ones instead."""


def raised_as_itself(group: BaseExceptionGroup) -> BaseException | None:
    """The first :class:`ShadowrouteError` (or Ctrl-C) among the leaves of a task group's
    error, to raise as itself (the CLI prints it as one line); ``None`` when there is none."""
    for exc in group.exceptions:
        found = raised_as_itself(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(found, ShadowrouteError | KeyboardInterrupt):
            return found
    return None
