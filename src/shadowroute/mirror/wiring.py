"""The one way to build the model-calling machinery from the config.

:func:`new_provider` is the only place a :class:`~.provider.Provider` is made from a
``[models]`` entry (the pipeline, replay and the judge through :func:`wire_mirror`; the router
for the models it calls itself). :func:`wire_mirror` builds, for a set of model names, their
providers and the :class:`~.policy.Mirror` around them, each model limited by its own
``max_concurrency`` / ``max_retries``, and returns them as a :class:`MirrorWiring` that knows
whether it made the providers: :meth:`MirrorWiring.aclose` closes only those it made, never
providers it was given (test fakes, a caller's shared pool).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .. import telemetry
from ..config import Config, ModelConfig
from ..stats import Stats
from .policy import Completer, Mirror
from .provider import Provider

__all__ = ["UNDECLARED_LIMITS", "MirrorWiring", "new_provider", "wire_mirror"]

UNDECLARED_LIMITS = (
    ModelConfig.model_fields["max_concurrency"].default,
    ModelConfig.model_fields["max_retries"].default,
)
"""(max_concurrency, max_retries) of a given provider that no ``[models]`` entry declares (a
test fake): a declared model's defaults, (8, 2)."""


def new_provider(model: ModelConfig) -> Provider:
    """A provider with its own connection pool for ``model``; the caller closes it."""
    return Provider(model)


@dataclass(frozen=True, slots=True)
class MirrorWiring:
    """A :class:`Mirror` and the providers it calls, by model name."""

    mirror: Mirror
    providers: Mapping[str, Completer]
    owns_providers: bool
    """Whether :func:`wire_mirror` made the providers (then :meth:`aclose` closes them)."""

    async def aclose(self) -> None:
        """Close the providers' connection pools if they were made here; given ones stay open."""
        if self.owns_providers:
            for provider in self.providers.values():
                await provider.aclose()  # type: ignore[attr-defined]


def wire_mirror(
    config: Config,
    names: Iterable[str],
    *,
    stats: Stats,
    on_error: Callable[[str, BaseException], None],
    providers: Mapping[str, Completer] | None = None,
    concurrency: Mapping[str, int] | None = None,
) -> MirrorWiring:
    """The providers for the models ``names`` and a mirror over them (``[mirror]`` settings).

    Without ``providers`` each name must be a ``[models]`` key and gets a :func:`new_provider`
    that the wiring owns. With ``providers`` (tests, a caller's own clients) the names found in
    it are used as given, and a name it lacks is left out (the mirror cannot call it). Limits
    per model are its ``[models]`` ``max_concurrency`` (or ``concurrency[name]`` when given,
    e.g. the judge's own) and ``max_retries``; a given provider no model declares gets
    :data:`UNDECLARED_LIMITS`. ``stats`` and ``on_error`` are the mirror's (see
    :class:`Mirror`).
    """
    models = config.models
    chosen: dict[str, Completer]
    if providers is None:
        chosen = {name: new_provider(models[name]) for name in names}
    else:
        chosen = {name: providers[name] for name in names if name in providers}
    overrides = concurrency or {}
    limits = {
        name: (overrides.get(name, models[name].max_concurrency), models[name].max_retries)
        if name in models
        else UNDECLARED_LIMITS
        for name in chosen
    }
    targets = {name: telemetry.target(name, models.get(name)) for name in chosen}
    mirror = Mirror(chosen, settings=config.mirror, limits=limits, stats=stats,
                    on_error=on_error, targets=targets)
    return MirrorWiring(mirror, chosen, owns_providers=providers is None)
