"""``Router``: send each task type's requests to the model the route map says, and keep watching.

    router = Router.from_config("shadowroute.toml")
    model = router.model_for("classify_intent", default="gpt-4o")     # a dict lookup per call

    async with Shadow.from_config("shadowroute.toml"), router:
        reply = await router.route_and_shadow(
            task="classify_intent", request=req,
            call=lambda r: client.chat.completions.create(**r))

For a task type still on its primary, ``route_and_shadow`` is :func:`shadowroute.shadow`: the
primary answers and a sample is mirrored to the candidates. For a promoted one the promoted
model answers, and a slice (``[routes] reverse_shadow_rate``) is mirrored back to the primary
it replaced, in the background: the reverse shadow whose pairs the report checks for drift.

The reply is of one type, promoted or not: what ``call`` returned, untouched; without ``call``
(shadowroute makes the call through the model's ``[models]`` entry), a
:class:`~shadowroute.routing.completion.ChatCompletion` read like the OpenAI SDK's.

A cascade route (``shadowroute promote --cascade``) answers a non-streamed call with the
promoted model, runs the route's checks on its answer and, when one fails (or the call
raises), calls the primary with the original request and returns the primary's answer; a
streamed call goes to the primary. A partial route (``--partial``) decides before the call, by
its rule on the request's features. Every such call's outcome is counted (:attr:`Router.routed`,
and the running Shadow's stats and ``routed_daily``); see :mod:`.modes`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from os import PathLike
from typing import Any, TypeVar, overload

from ..capture.calls import Api
from ..config import Config, ModelConfig, load_config
from ..errors import ConfigError
from ..formats.anthropic import anthropic_request_to_openai
from ..formats.chat import NotShadowable, stateful_feature
from ..formats.responses import responses_request_to_openai
from ..mirror.provider import Provider
from ..mirror.wiring import new_provider
from ..pipeline.core import Shadow, active_shadow
from .completion import ChatCompletion
from .modes import BYPASSED, ESCALATED, KEPT, PRIMARY, RouteModes, answer_of, canonical_request
from .routemap import MODE_PARTIAL, Route, RouteMap

__all__ = ["Router"]

log = logging.getLogger("shadowroute")

T = TypeVar("T")
Call = Callable[[dict[str, Any]], Awaitable[Any]]


class Router:
    """Which model serves each task type, read from the route map file (``[routes] file``)
    and re-read when it changes (checked at most every ``[routes] reload_interval_s``)."""

    def __init__(self, config: Config | None = None, *, routes: RouteMap | None = None) -> None:
        self.config = config or load_config()
        self.routes = routes or RouteMap(
            self.config.routes_file(), interval_s=self.config.routes.reload_interval_s
        )
        self._providers: dict[str, Provider] = {}
        self._warned: set[tuple[str, str]] = set()
        self.modes = RouteModes(self.config)
        self.routed: Counter[tuple[str, str, str]] = Counter()
        """Calls of cascade and partial routes this router served, by (task type, route
        model, outcome). A running :class:`Shadow` counts them too (its stats, Prometheus)
        and stores them per day; without one, they are only counted here."""

    @classmethod
    def from_config(cls, path: str | PathLike[str] | None = None, **kwargs: Any) -> Router:
        return cls(load_config(path), **kwargs)

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pools of models called with ``call=None``."""
        providers, self._providers = self._providers, {}
        for provider in providers.values():
            await provider.aclose()

    def route(self, task: str) -> Route | None:
        """The task type's route while it is promoted, else ``None`` (its primary serves it)."""
        return self.routes.get(task)

    def model_for(self, task: str, default: str | None = None) -> str | None:
        """The model id to send for ``task``: the promoted model's (its ``[models]`` entry's
        upstream id), else ``default`` (your primary). :meth:`route_and_shadow` also keeps
        calls the promoted model cannot take on the primary (see there). A cascade or partial
        route gives ``default``: which model serves a call depends on its answer or its
        request, so only :meth:`route_and_shadow` (or the sidecar) can apply it."""
        route = self.routes.get(task)
        if route is None or not route.whole:
            return default
        model = self.config.models.get(route.model)
        return model.model if model is not None else route.model

    @overload
    async def route_and_shadow(
        self, *, task: str, request: dict[str, Any], call: None = None,
        metadata: dict[str, Any] | None = None, api: Api = "openai", via: Shadow | None = None,
    ) -> ChatCompletion: ...

    @overload
    async def route_and_shadow(
        self, *, task: str, request: dict[str, Any], call: Callable[[dict[str, Any]], Awaitable[T]],
        metadata: dict[str, Any] | None = None, api: Api = "openai", via: Shadow | None = None,
    ) -> T: ...

    async def route_and_shadow(
        self,
        *,
        task: str,
        request: dict[str, Any],
        call: Call | None = None,
        metadata: dict[str, Any] | None = None,
        api: Api = "openai",
        via: Shadow | None = None,
    ) -> Any:
        """Answer ``request`` with the model that serves ``task`` and shadow it.

        ``api`` says which API ``request`` is in: ``openai`` (chat completions; a request with
        ``input`` and no ``messages`` is read as ``responses``, as :func:`shadowroute.shadow`
        reads it), ``anthropic`` or ``responses``.

        What comes back does not depend on whether ``task`` is promoted:

        - With ``call``: whatever ``call(request)`` returns, untouched (your SDK's object, a
          dict, ...), promoted or not. When promoted, ``call`` gets the request with ``model``
          set to the promoted model's id. A promoted model whose ``[models]`` entry speaks the
          other provider's API (Anthropic for an OpenAI ``api``, or the reverse) is not given
          to ``call``, whose client cannot reach it: the task stays on its primary (logged
          once).
        - Without ``call``: a :class:`~shadowroute.routing.completion.ChatCompletion`, read
          like the OpenAI SDK's (``reply.choices[0].message.content``, ``reply.usage``,
          ``reply.model``, ``model_dump()``), whichever model served and whatever API it
          speaks. shadowroute calls the model through its ``[models]`` entry (the request
          translated to that model's API); the primary is found by the request's ``model``, and
          a route to a model not declared there leaves the task on its primary (logged once).

        Either way a request that depends on its provider's stored state (e.g. a Responses
        ``previous_response_id``) stays on the primary. Shadowing goes through ``via`` or the
        running :class:`Shadow`; with none, this only routes. Errors of the production call
        reach the caller as they are.

        A cascade route calls the promoted model first (non-streamed calls; a request with
        ``stream`` set goes to the primary, counted ``bypassed:stream``) and, when its answer
        fails a check or the call raises, ``call(request)`` again with the original request
        (without ``call``: the request's model): the primary's result (or error) is returned.
        A partial route sends the calls its rule picks to the promoted model, the rest to the
        primary. ``metadata`` gives the rule its declared fields.
        """
        shadow = via or active_shadow()
        if api == "openai" and "messages" not in request and "input" in request:
            api = "responses"  # client.responses.create(...) passed without api=
        route, skipped = self._serving(task, request, call, api)
        if route is not None and not route.whole:
            return await self._by_mode(route, task, request, call, metadata, api, shadow)
        if skipped is not None:  # a cascade or partial route that cannot take this call
            self._count(shadow, task, skipped[0], BYPASSED + skipped[1])
        return await self._serve(route, task, request, call, metadata, api, shadow)

    async def _serve(
        self, route: Route | None, task: str, request: dict[str, Any], call: Call | None,
        metadata: dict[str, Any] | None, api: Api, shadow: Shadow | None,
        production: Callable[[], Awaitable[Any]] | None = None,
    ) -> Any:
        """Answer with ``route``'s model (``None``: the primary) and offer the call to
        ``shadow``: sampled for the candidates, or for the reverse shadow when routed.
        ``production``: the primary's call, when the caller has built it already."""
        sent, offered = self._requests(route, request, call, api)
        if production is None:
            production = self._caller(call, sent, None if route is None else route.model)
        began = time.perf_counter()
        try:
            result = await production()
        except Exception:
            if shadow is not None:
                shadow.count_primary_error()
            raise
        if shadow is not None:
            shadow.offer(task, offered, result, (time.perf_counter() - began) * 1000,
                         metadata=metadata, api=api,
                         reverse_of=None if route is None else route.primary)
        return result if call is not None else ChatCompletion.from_response(result)

    def _requests(self, route: Route | None, request: dict[str, Any], call: Call | None,
                  api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
        """(what the production call is sent, what the Shadow is offered) for ``route``'s
        model (``None``: the primary)."""
        sent = request if call is not None or api == "openai" else _canonical(request, api)
        if route is None:
            return sent, request
        declared = self.config.models.get(route.model)
        model_id = declared.model if declared is not None else route.model
        offered = {**request, "model": model_id}
        return (offered if sent is request else {**sent, "model": model_id}), offered

    async def _by_mode(
        self, route: Route, task: str, request: dict[str, Any], call: Call | None,
        metadata: dict[str, Any] | None, api: Api, shadow: Shadow | None,
    ) -> Any:
        """Serve a call of a cascade or partial route (see :mod:`.modes`)."""
        if route.mode == MODE_PARTIAL:
            try:
                picked = self.modes.partial_serves(route, canonical_request(request, api),
                                                   metadata)
            except Exception:  # a request the rule cannot read: the primary serves it
                self._count(shadow, task, route.model, BYPASSED + "unreadable")
                return await self._serve(None, task, request, call, metadata, api, shadow)
            self._count(shadow, task, route.model, KEPT if picked else PRIMARY)
            return await self._serve(route if picked else None, task, request, call, metadata,
                                     api, shadow)
        if request.get("stream"):  # a check needs the whole answer: streams stay on the primary
            self._count(shadow, task, route.model, BYPASSED + "stream")
            return await self._serve(None, task, request, call, metadata, api, shadow)
        if self.modes.checks(route) is None:
            self._count(shadow, task, route.model, BYPASSED + "checks")
            return await self._serve(None, task, request, call, metadata, api, shadow)
        primary = self._caller(call, self._requests(None, request, call, api)[0])
        sent, offered = self._requests(route, request, call, api)
        candidate = self._caller(call, sent, route.model)
        began = time.perf_counter()
        try:
            result = await candidate()
        except Exception:  # the candidate failed: the primary answers (escalated:error)
            why: str | None = "error"
        else:
            latency_ms = (time.perf_counter() - began) * 1000
            try:
                canonical = canonical_request(request, api)
            except Exception:
                canonical = {}
            why = self.modes.escalation(route, answer_of(result), canonical)
        if why is not None:
            self._count(shadow, task, route.model, ESCALATED + why)
            return await self._serve(None, task, request, call, metadata, api, shadow,
                                     production=primary)
        self._count(shadow, task, route.model, KEPT)
        if shadow is not None:
            shadow.offer(task, offered, result, latency_ms, metadata=metadata, api=api,
                         reverse_of=route.primary)
        return result if call is not None else ChatCompletion.from_response(result)

    def _count(self, shadow: Shadow | None, task: str, model: str, outcome: str) -> None:
        """One outcome of a cascade or partial route: in :attr:`routed`, and in the Shadow's
        stats and daily counts (stored) when one runs."""
        self.routed[(task, model, outcome)] += 1
        if shadow is not None:
            shadow.count_routed(task, model, outcome)

    def _serving(self, task: str, request: dict[str, Any], call: Call | None,
                 api: Api) -> tuple[Route | None, tuple[str, str] | None]:
        """(the task type's route if its promoted model can serve this call, else ``None``;
        (the route's model, why not) when a route cannot)."""
        route = self.routes.get(task)
        if route is None:
            return None, None
        if stateful_feature(api, request) is not None:
            # a stateful call depends on the primary's provider: no evidence for it
            return None, (route.model, "not_shadowable")
        declared = self.config.models.get(route.model)
        if declared is None and call is None:  # nothing to call it with (as the sidecar does)
            self._skip(task, route.model, "which is not declared under [models]")
            return None, (route.model, "undeclared")
        if declared is not None and call is not None and _family(declared.api) != _family(api):
            # call= is your client, in `api`: it cannot send the request to that model.
            self._skip(task, route.model, f"whose [models] entry speaks the {declared.api} API, "
                       f"not the {api} API this call= is in (without call=, shadowroute "
                       "translates the request)")
            return None, (route.model, "api_mismatch")
        return route, None

    def _skip(self, task: str, model: str, why: str) -> None:
        if (model, why) not in self._warned:
            self._warned.add((model, why))
            log.warning("shadowroute: %s is promoted to %r, %s: its calls stay on the primary",
                        task, model, why)

    def provider_for(self, model: ModelConfig) -> Provider:
        """The provider this router calls ``model`` (a ``[models]`` entry) with: made on first
        use, then reused (one connection pool per model until :meth:`aclose`)."""
        provider = self._providers.get(model.name)
        if provider is None:
            provider = self._providers[model.name] = new_provider(model)
        return provider

    def _caller(
        self, call: Call | None, request: dict[str, Any], model: str | None = None
    ) -> Callable[[], Awaitable[Any]]:
        """The production call: ``call(request)``, else ``model`` (a ``[models]`` key; by
        default the request's ``model``) called through its provider, returning its canonical
        chat completion (a dict)."""
        if call is not None:
            return lambda: call(request)
        name = model or str(request.get("model") or "")
        declared = self.config.model_named(name)
        if declared is None:
            raise ConfigError(
                f"cannot call model {name!r}: it is not declared under [models] (declare it, "
                "or pass call= to make the call yourself)", path=self.config.source,
            )
        provider = self.provider_for(declared)

        async def complete() -> dict[str, Any]:
            return (await provider.complete(request)).response

        return complete


def _family(api: str) -> str:
    """The provider family of an API: a model of one is called in any API of it."""
    return "anthropic" if api == "anthropic" else "openai"


def _canonical(request: dict[str, Any], api: Api) -> dict[str, Any]:
    """``request`` (Anthropic or Responses API) as the canonical chat request a provider takes.
    A request that depends on its provider's state cannot be sent for the caller this way."""
    try:
        if api == "anthropic":
            return anthropic_request_to_openai(request)
        return responses_request_to_openai(request)
    except NotShadowable as exc:
        raise ConfigError(f"this {api} request uses {exc.feature}, which only its own provider "
                          "can serve: pass call= to make the call yourself") from exc
