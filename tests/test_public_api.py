"""The curated public API: what `import shadowroute` offers, and nothing private leaking."""

import shadowroute

EXPECTED = {
    "BadResponse", "ChatCompletion", "ClientError", "Config", "ConfigError", "ProviderError",
    "ProviderTimeout", "PromotionRefused", "ProviderUnavailable", "RateLimited", "Route",
    "Router", "ServerError", "Shadow", "ShadowTransport", "ShadowrouteError", "ShutdownReport",
    "Stats", "StoreError", "SyncShadow", "SyncShadowTransport", "__version__", "load_config",
    "shadow", "task",
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


def test_every_exported_name_is_listed_once_and_resolves_lazily() -> None:
    import subprocess
    import sys

    assert sorted(shadowroute._EXPORTS) == sorted(EXPECTED - {"__version__"})
    # The CLI and `import shadowroute.config` must not load the pipeline and its database layer.
    code = ("import sys, shadowroute.config, shadowroute.cli; "
            "print(sorted(m for m in ('sqlalchemy', 'httpx', 'shadowroute.pipeline') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
