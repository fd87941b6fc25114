"""The curated public API: what `import shadowroute` offers, and nothing private leaking."""

import shadowroute

EXPECTED = {
    "BadResponse", "ClientError", "Config", "ConfigError", "ProviderError", "ProviderTimeout",
    "PromotionRefused", "ProviderUnavailable", "RateLimited", "Route", "Router", "ServerError",
    "Shadow", "ShadowTransport",
    "ShadowrouteError", "ShutdownReport", "Stats", "StoreError", "SyncShadow",
    "SyncShadowTransport", "__version__", "load_config", "shadow", "task",
}


def test_public_api_is_exactly_the_curated_set() -> None:
    assert set(shadowroute.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(shadowroute, name) is not None


def test_every_error_is_a_shadowroute_error() -> None:
    for name in EXPECTED:
        value = getattr(shadowroute, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, shadowroute.ShadowrouteError)
