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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from os import PathLike
from typing import Any

from ..capture.calls import Api
from ..config import Config, ModelConfig, load_config
from ..errors import ConfigError
from ..formats.anthropic import anthropic_request_to_openai
from ..formats.chat import NotShadowable, stateful_feature
from ..formats.responses import responses_request_to_openai
from ..mirror.provider import Provider
from ..mirror.wiring import new_provider
from ..pipeline.core import Shadow, active_shadow
from .routemap import Route, RouteMap

__all__ = ["Router"]

log = logging.getLogger("shadowroute")

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
        self._warned: set[str] = set()

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
        upstream id), else ``default`` (your primary)."""
        route = self.routes.get(task)
        if route is None:
            return default
        model = self.config.models.get(route.model)
        return model.model if model is not None else route.model

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

        ``call(request)`` makes the production call with the request it is given (``model``
        set to the promoted model's id when the task type is promoted) and its result comes
        back untouched; ``api`` says which API ``request`` is in (``openai`` chat,
        ``anthropic``, ``responses``). Without ``call``, shadowroute calls the model itself
        through its ``[models]`` entry (the request translated to that model's API) and returns
        an OpenAI-shaped chat completion (a dict), whatever the model's API. Shadowing goes through ``via`` or the running :class:`Shadow`; with none,
        this only routes. Errors of the production call reach the caller as they are.
        """
        shadow = via or active_shadow()
        route = self.routes.get(task)
        if route is not None and stateful_feature(api, request) is not None:
            route = None  # it depends on the primary's provider-side state: no evidence for it
        if route is not None and call is None and route.model not in self.config.models:
            # Nothing to call it with: production stays on its primary (as the sidecar does).
            if route.model not in self._warned:
                self._warned.add(route.model)
                log.warning("shadowroute: %s is promoted to %r, which is not declared under "
                            "[models]: its calls stay on the primary", task, route.model)
            route = None
        canonical = request if call is not None or api == "openai" else _canonical(request, api)
        if route is None:
            primary = self._caller(call, canonical)
            if shadow is None:
                return await primary()
            return await shadow.shadow(task=task, request=request, call=primary,
                                       metadata=metadata, api=api)
        routed = {**request, "model": self.model_for(task)}
        began = time.perf_counter()
        try:
            sent = routed if call is not None else {**canonical, "model": routed["model"]}
            result = await self._caller(call, sent, route.model)()
        except Exception:
            if shadow is not None:
                shadow.count_primary_error()
            raise
        if shadow is not None:
            shadow.offer(task, routed, result, (time.perf_counter() - began) * 1000,
                         metadata=metadata, api=api, reverse_of=route.primary)
        return result

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
