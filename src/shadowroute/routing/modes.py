"""How a cascade or a partial route serves one call, for the :class:`~shadowroute.Router` and the
sidecar alike, so both count the same outcomes for the same reasons.

* **cascade**: the route's model answers; its answer goes through the route's checks
  (:class:`~shadowroute.scoring.checks.Checks`, the very ones the report's what-if ran on the
  stored pairs); the first that fails (or a failed call: ``error``) escalates the call to the
  primary, whose answer is served. Non-streamed calls only: a check needs the whole answer,
  and holding a stream back until it ends would take away what streaming is for, so a streamed
  call of a cascaded task goes to the primary (``bypassed:stream``).
* **partial**: the rule looks at the request's features (:mod:`.features`) before the call:
  a match goes to the route's model, anything else to the primary. Streams included.

Outcomes (counted per task type and route model, in ``Stats.routed``, Prometheus and
``routed_daily``): :data:`KEPT`, ``escalated:<check>``, :data:`PRIMARY`, ``bypassed:<why>``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..config import Config
from ..formats.anthropic import anthropic_request_to_openai, anthropic_response_to_openai
from ..formats.chat import completion_text
from ..formats.responses import responses_request_to_openai, responses_response_to_openai
from ..formats.sse import reassemble
from .features import request_features
from .routemap import Route

__all__ = [
    "BYPASSED",
    "ESCALATED",
    "KEPT",
    "PRIMARY",
    "RouteModes",
    "answer_of",
    "answer_of_body",
    "canonical_request",
]

log = logging.getLogger("shadowroute")

KEPT = "kept"
"""The route's model answered and its answer was served (a cascade's check passed, or a
partial rule picked the call)."""
PRIMARY = "primary"
"""A partial rule left the call to the primary."""
ESCALATED = "escalated:"
"""Prefix: a cascade's check (named after it) failed, the primary's answer was served."""
BYPASSED = "bypassed:"
"""Prefix: the route could not apply to the call (``stream``, ``checks``: its checks cannot be
built from the config, ...); the primary served it."""

_Answer = tuple[str | None, str | None]


class RouteModes:
    """The checks of the cascades one Router or sidecar serves, built once per (task type,
    checks) from its config; the problems met, logged once each."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._checks: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._warned: set[tuple[str, str]] = set()

    def checks(self, route: Route) -> Any | None:
        """The route's :class:`~shadowroute.scoring.checks.Checks`; ``None`` when the config
        cannot run them (e.g. ``schema`` and the task has no ``json_schema``), logged once:
        the primary then serves the task's calls (``bypassed:checks``)."""
        key = (route.task, route.checks)
        try:
            return self._checks[key]
        except KeyError:
            pass
        from ..scoring.checks import Checks  # on first use: plain promotions need no checks

        try:
            found = Checks.for_task(self.config, route.task, route.checks)
        except Exception as exc:  # a config that cannot run them: the primary serves
            self.warn(route.task, f"its cascade's checks cannot run ({exc}); its calls go to "
                      "the primary")
            found = None
        self._checks[key] = found
        return found

    def escalation(self, route: Route, answer: _Answer | None,
                   request: Mapping[str, Any]) -> str | None:
        """Why the cascade escalates this ``answer`` (text, finish reason; ``None``: the call
        failed or its answer could not be read): the first failed check, ``error``; ``None``
        to keep it. ``request``: the canonical chat request (its tools, for ``tool_args``)."""
        checks = self.checks(route)
        if answer is None or checks is None:
            return "error"
        try:
            return checks.failed(answer[0], answer[1], request)
        except Exception as exc:  # a check that breaks cannot vouch for the answer
            self.warn(route.task, f"a check failed to run ({type(exc).__name__}: {exc}); "
                      "such answers are escalated")
            return "error"

    def partial_serves(self, route: Route, request: Mapping[str, Any],
                       metadata: Mapping[str, Any] | None) -> bool:
        """Whether the partial rule sends this call (``request`` canonical) to the route's
        model."""
        rule = route.rule
        if rule is None:
            return False
        return rule.matches(request_features(request, metadata, rule.fields))

    def warn(self, task: str, why: str) -> None:
        if (task, why) not in self._warned:
            self._warned.add((task, why))
            log.warning("shadowroute: %s: %s", task, why)


def canonical_request(request: Mapping[str, Any], api: str) -> dict[str, Any]:
    """``request`` (in ``api``) as the canonical chat request that checks and rules read, as
    the stored pairs hold it; ``ValueError`` when it cannot be read."""
    if api == "anthropic":
        return anthropic_request_to_openai(dict(request))
    if api == "responses":
        return responses_request_to_openai(dict(request))
    return dict(request)


def _of_completion(response: Mapping[str, Any]) -> _Answer:
    choices = response.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    finish = first.get("finish_reason") if isinstance(first, Mapping) else None
    return completion_text(dict(response)), finish if isinstance(finish, str) else None


def answer_of(result: Any) -> _Answer | None:
    """(the answer as stored, finish reason) of a production call's result: an OpenAI chat
    completion, a Responses API response or an Anthropic message, as a dict or an SDK object
    (``model_dump``), or a string (its text; no finish reason). ``None``: unreadable (the
    cascade cannot vouch for it, so it escalates)."""
    try:
        if isinstance(result, str):
            return result, None
        if hasattr(result, "model_dump"):  # OpenAI / Anthropic SDK objects, ChatCompletion
            result = result.model_dump()
        if not isinstance(result, dict):
            return None
        if result.get("type") == "message" and "content" in result:
            return _of_completion(anthropic_response_to_openai(result))
        if result.get("object") == "response" and "output" in result:
            return _of_completion(responses_response_to_openai(result))
        if "choices" in result:
            return _of_completion(result)
    except Exception:  # whatever the result is, it cannot be read: not vouched for
        return None
    return None


def answer_of_body(raw: bytes, api: str) -> _Answer | None:
    """(answer, finish reason) of a whole, decoded response body of ``api``; ``None`` when it
    is not a readable answer (an error body, garbage)."""
    try:
        return _of_completion(reassemble(raw, api, False))  # type: ignore[arg-type]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
