"""shadowroute's pytest plugin (``shadowroute.testing``, entry point ``pytest11``): its fixtures
in a fresh project (a pytest run in a subprocess, which loads the plugin as a user's run
would), per-test isolation of the fake server and of the database, and a cheap import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shadowroute.testing import build_config

pytest_plugins = ["pytester"]

CHAT = '{"model": "frontier", "messages": [{"role": "user", "content": "hello there"}]}'


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run pytest on pytester's project in a subprocess; the plugin is loaded from its entry
    point, like in any project where shadowroute is installed."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("SHADOWROUTE_CONFIG", raising=False)

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist",
                                             "-p", "no:randomly", *args, timeout=240)

    return run


def test_the_fixtures_work_in_a_fresh_project(pytester: pytest.Pytester, run) -> None:
    """A call through ShadowTransport / SyncShadowTransport is answered unchanged and stored
    with the candidate's answer; a wrong expectation about what was stored fails."""
    pytester.makepyfile(test_app=f'''
        import httpx, pytest
        from shadowroute import ShadowTransport, SyncShadowTransport

        pytestmark = pytest.mark.anyio
        CHAT = {CHAT}

        async def post(fake_llm, shadow):
            transport = ShadowTransport(shadow, task="classify_intent")
            async with httpx.AsyncClient(base_url=fake_llm.openai_url, transport=transport) as c:
                reply = await c.post("/chat/completions", json=CHAT)
            assert reply.status_code == 200
            return reply.json()["choices"][0]["message"]["content"]

        async def test_async_shadow(fake_llm, shadow, shadow_stored):
            answer = await post(fake_llm, shadow)
            [x] = await shadow_stored(shadow)
            assert x.task == "classify_intent" and x.primary_model == "frontier"
            assert x.primary_output == answer and x.source == "transport"
            assert x.outputs["small"].output and x.outputs["small"].error_kind is None
            assert fake_llm.calls("small") == 1

        def test_sync_shadow(fake_llm, sync_shadow, shadow_stored):
            transport = SyncShadowTransport(sync_shadow)
            with httpx.Client(base_url=fake_llm.openai_url, transport=transport) as c:
                answer = c.post("/chat/completions", json=CHAT).json()
            [x] = shadow_stored.sync(sync_shadow)
            assert x.task == "default"
            assert x.primary_output == answer["choices"][0]["message"]["content"]
            assert list(x.outputs) == ["small"]

        async def test_make_shadow_takes_tasks(fake_llm, make_shadow, shadow_stored):
            shadow = await make_shadow(tasks={{"classify_intent": ["tiny", "claude-small"]}})
            await post(fake_llm, shadow)
            [x] = await shadow_stored(shadow)
            assert sorted(x.outputs) == ["claude-small", "tiny"]
            assert fake_llm.stats()["models"]["claude-small"]["anthropic"] == 1

        async def test_expecting_an_unconfigured_candidate_fails(fake_llm, shadow, shadow_stored):
            await post(fake_llm, shadow)
            [x] = await shadow_stored(shadow)
            assert "tiny" in x.outputs, "tiny was not configured"
    ''')
    result = run("-rf")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["FAILED *test_expecting_an_unconfigured_candidate_fails*"])


def test_model_changes_do_not_leak_into_the_next_test(pytester: pytest.Pytester, run) -> None:
    """One server per session, a fresh roster and statistics per test; ``fake_llm_settings``
    sets the roster; a project's own ``fake_llm`` fixture wins over the plugin's."""
    leak = f'''
        import httpx

        CHAT = {CHAT}
        seen = []

        def post(fake_llm, model):
            return httpx.post(fake_llm.openai_url + "/chat/completions",
                              json={{**CHAT, "model": model}})

        def test_a_breaks_small_and_adds_a_model(fake_llm):
            seen.append(fake_llm.base_url)
            fake_llm.update_model("small", error_rate=1.0, error_status=503)
            fake_llm.update_model("extra", accuracy=0.1)
            assert post(fake_llm, "small").status_code == 503
            assert post(fake_llm, "extra").status_code == 200
            assert fake_llm.calls("small") == 1

        def test_b_sees_the_roster_as_it_was(fake_llm):
            assert fake_llm.base_url == seen[0]  # the same server
            assert fake_llm.model("small").error_rate == 0.0
            assert "extra" not in fake_llm.models
            assert fake_llm.stats() == {{"total_calls": 0, "models": {{}}}}
            assert post(fake_llm, "small").status_code == 200
    '''
    pytester.makepyfile(test_leak=leak)
    pytester.mkdir("leaky")
    pytester.makepyfile(**{
        "leaky/conftest.py": '''
            import pytest
            from shadowroute.testing import FakeLLM

            @pytest.fixture
            def fake_llm(fake_llm_server):
                return FakeLLM(fake_llm_server)  # the session's state, never reset
        ''',
        "leaky/test_leaky.py": leak,
    })
    pytester.mkdir("roster")
    pytester.makepyfile(**{
        "roster/conftest.py": '''
            import pytest
            from shadowroute.fakellm import FakeLLMSettings, FakeModel

            @pytest.fixture
            def fake_llm_settings():
                return FakeLLMSettings(models=[FakeModel(name="mine", accuracy=0.5)])
        ''',
        "roster/test_roster.py": '''
            def test_the_roster_comes_from_fake_llm_settings(fake_llm, shadow_config):
                assert list(fake_llm.models) == ["mine"]
                assert list(shadow_config["models"]) == ["mine"]
        ''',
    })
    pytester.mkdir("local")
    pytester.makepyfile(**{
        "local/conftest.py": '''
            import pytest

            @pytest.fixture
            def fake_llm():
                return "the project's own"
        ''',
        "local/test_local.py": '''
            def test_a_local_fixture_wins(fake_llm):
                assert fake_llm == "the project's own"
        ''',
    })
    run("test_leak.py", "roster", "local").assert_outcomes(passed=4)
    # the check can fail: without the per-test state, test_a's changes reach test_b
    leaky = run("leaky", "-rf")
    leaky.assert_outcomes(passed=1, failed=1)
    leaky.stdout.fnmatch_lines(["FAILED *test_b_sees_the_roster_as_it_was*"])


def test_each_shadow_drains_into_its_own_database(pytester: pytest.Pytester, run) -> None:
    """A test that fails with a capture still in flight: teardown drains it into that test's
    database and closes the Shadow; the next test starts on an empty database."""
    pytester.makepyfile(test_db=f'''
        import httpx, pytest
        from shadowroute import ShadowTransport

        pytestmark = pytest.mark.anyio
        CHAT = {CHAT}
        seen = []

        async def test_a_fails_while_small_is_still_answering(fake_llm, shadow, shadow_config):
            fake_llm.update_model("small", latency_ms=300)
            seen.append((shadow, shadow_config["database_url"]))
            transport = ShadowTransport(shadow, task="classify_intent")
            async with httpx.AsyncClient(base_url=fake_llm.openai_url, transport=transport) as c:
                await c.post("/chat/completions", json=CHAT)
            assert shadow.stats.stored_exchanges == 0
            raise AssertionError("deliberately, with the capture in flight")

        async def test_b_starts_empty(shadow, shadow_config, shadow_stored):
            first, first_url = seen[0]
            report = first.shutdown_report
            assert report is not None and report.drained == 1 and report.lost == 0
            assert shadow_config["database_url"] != first_url
            assert await shadow_stored(shadow) == []
            [x] = await shadow_stored(first_url)
            assert x.outputs["small"].output
    ''')
    run().assert_outcomes(passed=1, failed=1)


def test_importing_the_plugin_loads_nothing_heavy() -> None:
    """pytest imports the plugin at every start: no server, database layer or HTTP client."""
    heavy = ("sqlalchemy", "httpx", "anyio", "uvicorn", "shadowroute.fakellm",
             "shadowroute.pipeline", "shadowroute.store")
    code = ("import sys, shadowroute.testing; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_build_config_shapes_tasks_and_keeps_its_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHADOWROUTE_DATABASE_URL", "postgresql+psycopg://prod/db")
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    data = {
        "database_url": url,
        "models": {name: {"base_url": "http://127.0.0.1:9/v1"} for name in ("small", "tiny")},
        "mirror": {"queue_size": 10, "workers": 2},
    }
    config = build_config(
        data,
        tasks={"a": "small", "b": ["small", "tiny"],
               "c": {"candidates": ["tiny"], "sample_rate": 0.5}},
        mirror={"workers": 3},
    )
    assert config.database_url == url
    assert config.tasks["a"].candidates == ("small",) and config.tasks["a"].sample_rate == 1.0
    assert config.tasks["b"].candidates == ("small", "tiny")
    assert config.tasks["c"].sample_rate == 0.5 and config.tasks["c"].noise_floor_rate == 0.0
    assert (config.mirror.queue_size, config.mirror.workers) == (10, 3)
    assert data["mirror"] == {"queue_size": 10, "workers": 2}  # the data is not changed
    with pytest.raises(TypeError, match="list of candidates"):
        build_config(data, tasks={"a": 3})
