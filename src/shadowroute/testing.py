"""pytest plugin (entry point ``pytest11``, loaded by pytest wherever shadowroute is installed):
test an integration with shadowroute the way shadowroute tests itself -- against the fake
LLM server on loopback, with a real :class:`~shadowroute.Shadow` on a throwaway SQLite file.

============================ ======== ==============================================================
fixture                      scope    what it gives
============================ ======== ==============================================================
fake_llm                     function :class:`FakeLLM`: the fake server, this test's own models
fake_llm_settings            session  the roster every test starts from (override to change)
fake_llm_server              session  the ``FakeLLMServer`` behind ``fake_llm``
shadow_config                function the shadows' config data: every fake model, a temp database
make_shadow                  function ``await make_shadow(tasks={"t": ["small"]})``: a Shadow
shadow                       function ``await make_shadow()``: a started Shadow, drained at teardown
sync_shadow                  function a started ``SyncShadow`` on ``shadow_config``
shadow_stored                session  :class:`StoredReader`: ``await shadow_stored(shadow)``
shadowroute_sqlite_template  session  a migrated SQLite file each new database copies
============================ ======== ==============================================================

The async fixtures run on anyio's pytest plugin (anyio is a dependency of shadowroute): mark
async tests ``@pytest.mark.anyio``. One fake server runs per session (per xdist worker); each
test gets a fresh :class:`~shadowroute.fakellm.FakeState` (roster, statistics, call counters),
so what a test changes never reaches the next one. Importing this module loads only pytest and
the standard library; shadowroute's modules load when a fixture is first used. Reference and
example: ``docs/testing.md``.
"""

from __future__ import annotations

import copy
import shutil
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from shadowroute import Config, Shadow, SyncShadow
    from shadowroute.fakellm import FakeLLMServer, FakeLLMSettings, FakeModel

__all__ = [
    "DEFAULT_TASKS",
    "TASK_DEFAULTS",
    "FakeLLM",
    "StoredExchange",
    "StoredOutput",
    "StoredReader",
    "build_config",
    "default_config",
]

TASK_DEFAULTS: dict[str, Any] = {"sample_rate": 1.0, "noise_floor_rate": 0.0}
"""What a task type of ``make_shadow(tasks=...)`` gets unless it says otherwise: every call
mirrored, no noise-floor replays of the primary (so the stored outputs are the candidates')."""

DEFAULT_TASKS = ("default", "classify_intent", "sentiment", "extract_order", "summarize_ticket",
                 "lookup_order")
"""Task types of the default ``shadow_config``, each mirrored to ``small``: ``default`` (what
the transport calls an unlabelled call) and the fake server's own task types."""


# --------------------------------------------------------------------------- the fake server


class FakeLLM:
    """The session's fake LLM server, with the state of the current test.

    ``openai_url`` is what an OpenAI SDK takes as ``base_url``, ``anthropic_url`` what an
    Anthropic SDK takes. Models change with :meth:`update_model` (any field of
    :class:`~shadowroute.fakellm.FakeModel`: ``accuracy``, ``task_accuracy``, ``latency_ms``,
    ``error_rate``, ``error_status``, ``retry_after``, ``hang``, ``garbage``, ...) until the
    test ends. The server counts calls (:meth:`stats`, :meth:`calls`); it does not keep the
    request bodies.
    """

    def __init__(self, server: FakeLLMServer) -> None:
        self.server = server

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def openai_url(self) -> str:
        """``base_url + "/v1"``: chat completions, Responses, models."""
        return self.server.base_url + "/v1"

    @property
    def anthropic_url(self) -> str:
        """The Anthropic SDK's ``base_url`` (it adds ``/v1/messages`` itself)."""
        return self.server.base_url

    @property
    def settings(self) -> FakeLLMSettings:
        """Seed, latency scale and every model as they are now (runtime changes included)."""
        return self.server.state.settings()

    @property
    def models(self) -> dict[str, FakeModel]:
        return dict(self.settings.models)

    def model(self, name: str) -> FakeModel:
        """Model ``name`` as it is now (``KeyError`` naming the roster if there is none)."""
        found = self.server.model(name)
        if found is None:
            raise KeyError(f"the fake server has no model {name!r} "
                           f"(models: {', '.join(sorted(self.models))})")
        return found

    def update_model(self, name: str, **changes: Any) -> FakeModel:
        """Change model ``name`` for the rest of this test (a new name adds a model); returns
        it, validated. ``fake_llm.update_model("small", error_rate=1.0, error_status=429)``."""
        return self.server.update_model(name, **changes)

    def stats(self) -> dict[str, Any]:
        """``{"total_calls": n, "models": {name: {"calls", "ok", "errors", "hangs", "garbage",
        "openai", "anthropic", "responses", "tasks": {task: n}}}}`` for this test."""
        return self.server.stats()

    def calls(self, name: str) -> int:
        """How many calls model ``name`` received in this test."""
        return self.server.calls(name)

    def reset_stats(self) -> None:
        self.server.reset_stats()

    def __repr__(self) -> str:
        return f"<FakeLLM {self.base_url} models={sorted(self.models)}>"


@pytest.fixture(scope="session")
def fake_llm_settings() -> FakeLLMSettings:
    """The fake server's default roster (``frontier``, ``small``, ``tiny``, ``claude-small``,
    ``judge``) with no latency: answers are immediate until a test sets ``latency_ms``.
    Override this fixture (any scope) to start every test from another roster."""
    from shadowroute.fakellm import FakeLLMSettings, default_settings

    roster = default_settings()
    return FakeLLMSettings(
        seed=roster.seed,
        latency_scale=1.0,
        models=[m.with_changes(latency_ms=0.0, latency_jitter_ms=0.0)
                for m in roster.models.values()],
    )


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLMServer]:
    """One fake server on loopback for the session (started on first use). Use ``fake_llm``:
    it gives each test a fresh state on this server."""
    from shadowroute.fakellm import FakeLLMServer

    server = FakeLLMServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_llm(fake_llm_server: FakeLLMServer, fake_llm_settings: FakeLLMSettings,
             ) -> Iterator[FakeLLM]:
    """The fake LLM server with this test's own models and statistics (from
    ``fake_llm_settings``); nothing a test changes reaches the next test."""
    from shadowroute.fakellm import FakeState

    state = FakeState(fake_llm_settings)
    fake_llm_server.app.state.fake = state  # every request reads its state from here
    try:
        yield FakeLLM(fake_llm_server)
    finally:
        state.closing.set()  # ends this test's hanging requests, if any


# --------------------------------------------------------------------------- the pipeline


def default_config(fake: FakeLLM, folder: Path) -> dict[str, Any]:
    """The data of the default ``shadow_config``: every model of ``fake`` (the Anthropic ones
    called in the Messages API), the :data:`DEFAULT_TASKS` mirrored to ``small``, every other
    task type stored without candidates, a SQLite database and spool in ``folder``, and
    retries and timeouts short enough for tests."""
    models = {}
    for model in fake.models.values():
        anthropic = model.owned_by.endswith("anthropic")
        models[model.name] = {
            "base_url": fake.anthropic_url if anthropic else fake.openai_url,
            "api": "anthropic" if anthropic else "openai",
            "input_price": model.input_price,
            "output_price": model.output_price,
            "timeout_s": 10.0,
            "max_retries": 1,
        }
    return {
        "database_url": f"sqlite+aiosqlite:///{folder / 'shadowroute.db'}",
        "default_sample_rate": 1.0,
        "models": models,
        "tasks": {name: {"candidates": ["small"], **TASK_DEFAULTS} for name in DEFAULT_TASKS},
        "mirror": {"retry_backoff_s": 0.01, "retry_backoff_max_s": 0.1,
                   "shutdown_deadline_s": 5.0},
        "store": {"spool_dir": str(folder / "spool"), "flush_interval_s": 0.02},
    }


def build_config(data: Mapping[str, Any], tasks: Mapping[str, Any] | None = None,
                 **overrides: Any) -> Config:
    """A validated :class:`~shadowroute.Config` from ``data`` with ``tasks`` replacing its
    task types (a list of candidates, or a task table over :data:`TASK_DEFAULTS`) and each of
    ``overrides`` replacing a top-level key (a table is merged into the one it replaces).
    The database is ``data``'s, never ``$SHADOWROUTE_DATABASE_URL``'s."""
    from shadowroute import load_config

    merged = copy.deepcopy(dict(data))
    if tasks is not None:
        merged["tasks"] = {name: _task(spec) for name, spec in tasks.items()}
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = {**current, **value}
        else:
            merged[key] = value
    config = load_config(data=merged)
    url = merged.get("database_url")
    if url and config.database_url != url:  # the environment variable won: undo it
        config = config.model_copy(update={"database_url": url})
    return config


def _task(spec: Any) -> dict[str, Any]:
    if isinstance(spec, str):
        return {"candidates": [spec], **TASK_DEFAULTS}
    if isinstance(spec, Sequence):
        return {"candidates": list(spec), **TASK_DEFAULTS}
    if isinstance(spec, Mapping):
        return {**TASK_DEFAULTS, **spec}
    raise TypeError(f"a task is a list of candidates or a task table, not {spec!r}")


def _backend_name(anyio_backend: Any) -> str:
    return anyio_backend if isinstance(anyio_backend, str) else anyio_backend[0]


def _from_template(config: Config, template: Path) -> None:
    """A SQLite database that does not exist yet starts as a copy of the session's migrated
    one: what opening it would do (SQLite migrates on open), without running every migration
    again in every test."""
    from shadowroute.store.engine import sqlite_file

    target = sqlite_file(config.database_url)
    if target is None:
        return
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, target)


@pytest.fixture(scope="session")
def shadowroute_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the latest schema, once per session; each test's new
    database starts as a copy of it."""
    import anyio

    from shadowroute.store import migrate

    path = tmp_path_factory.mktemp("shadowroute-template") / "shadowroute.db"
    anyio.run(migrate, f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def shadow_config(fake_llm: FakeLLM, tmp_path: Path) -> dict[str, Any]:
    """The configuration (as data for :func:`~shadowroute.load_config`) of ``shadow``,
    ``make_shadow`` and ``sync_shadow``: see :func:`default_config`; the database is
    ``tmp_path / "shadowroute" / "shadowroute.db"``. Override it, or change it in a test
    before the shadow starts, to configure them."""
    return default_config(fake_llm, tmp_path / "shadowroute")


@pytest.fixture
async def make_shadow(shadow_config: dict[str, Any], shadowroute_sqlite_template: Path,
                      anyio_backend: Any) -> AsyncIterator[Callable[..., Awaitable[Shadow]]]:
    """``await make_shadow(tasks=None, *, on_error=None, **overrides)``: a started
    :class:`~shadowroute.Shadow` on ``shadow_config`` (see :func:`build_config` for ``tasks``
    and ``overrides``), drained and closed at teardown, newest first. Shadows made in one
    test share its database unless given another ``database_url``. Runs on asyncio."""
    if _backend_name(anyio_backend) != "asyncio":
        pytest.skip("shadowroute's Shadow runs on asyncio (aiosqlite): anyio_backend must be "
                    "'asyncio'")
    from shadowroute import Shadow

    started: list[Shadow] = []

    async def make(tasks: Mapping[str, Any] | None = None, *,
                   on_error: Callable[[str, BaseException], None] | None = None,
                   **overrides: Any) -> Shadow:
        config = build_config(shadow_config, tasks, **overrides)
        _from_template(config, shadowroute_sqlite_template)
        made = Shadow(config, on_error=on_error)
        await made.start()
        started.append(made)
        return made

    yield make
    for made in reversed(started):
        report = await made.aclose()  # a second close (the test closed it) returns the report
        if report.lost:
            warnings.warn(f"shadowroute lost captures: {report}", RuntimeWarning, stacklevel=1)


@pytest.fixture
async def shadow(make_shadow: Callable[..., Awaitable[Shadow]]) -> Shadow:
    """A started :class:`~shadowroute.Shadow` on ``shadow_config`` (every fake model declared;
    :data:`DEFAULT_TASKS` mirrored to ``small``; a fresh SQLite file), drained and closed at
    teardown. Wrap clients with ``ShadowTransport(shadow)`` or call ``shadow.shadow(...)``."""
    return await make_shadow()


@pytest.fixture
def sync_shadow(shadow_config: dict[str, Any], shadowroute_sqlite_template: Path,
                ) -> Iterator[SyncShadow]:
    """A started :class:`~shadowroute.SyncShadow` on ``shadow_config`` (its own event-loop
    thread, so plain ``def`` tests can use it), closed at teardown."""
    from shadowroute import SyncShadow

    config = build_config(shadow_config)
    _from_template(config, shadowroute_sqlite_template)
    made = SyncShadow(config)
    made.start()
    try:
        yield made
    finally:
        made.close()


# --------------------------------------------------------------------------- what was stored


@dataclass(frozen=True)
class StoredOutput:
    """A candidate's stored answer to an exchange, or how its call failed."""

    model: str
    output: str | None
    error_kind: str | None
    """``None`` on success; else ``timeout``, ``rate_limited``, ``server_error``, ..."""
    error: str | None
    latency_ms: float | None
    cost_usd: float | None
    input_tokens: int | None
    output_tokens: int | None
    attempts: int


@dataclass(frozen=True)
class StoredExchange:
    """A stored production call: the request, the primary's answer, and the candidates'."""

    id: str
    task: str
    primary_model: str
    request: dict[str, Any]
    primary_output: str | None
    source: str | None
    """``transport``, ``shadow()``, ..."""
    route: str
    metadata: dict[str, Any]
    created_at: datetime
    outputs: dict[str, StoredOutput] = field(default_factory=dict)
    """By candidate model name."""


class StoredReader:
    """Reads what a shadow stored (the ``shadow_stored`` fixture).

    ``await shadow_stored(shadow)`` waits until every capture the Shadow accepted so far is
    stored (or spooled or discarded; ``TimeoutError`` after ``timeout`` seconds), then returns
    every exchange, oldest first. ``shadow_stored.sync(sync_shadow)`` closes the SyncShadow
    first (draining it: its captures travel to its own thread, so only closing is a sure wait).
    Both also take a database URL, read as it is.
    """

    async def __call__(self, target: Shadow | str, *, timeout: float = 10.0,
                       ) -> list[StoredExchange]:
        if isinstance(target, str):
            return await _read(target)
        await _settle(target, timeout)
        return await _read(target.config.database_url)

    def sync(self, target: SyncShadow | str) -> list[StoredExchange]:
        import anyio

        if not isinstance(target, str):
            target.close()
            target = target.config.database_url
        return anyio.run(_read, target)

    def __repr__(self) -> str:
        return "<StoredReader: await shadow_stored(shadow) | shadow_stored.sync(sync_shadow)>"


async def _settle(sh: Shadow, timeout: float) -> None:
    import anyio

    with anyio.move_on_after(timeout):
        while sh.stats.ledger()["pending"]:
            await anyio.sleep(0.005)
    if sh.stats.ledger()["pending"]:
        raise TimeoutError(f"shadowroute has not stored every capture after {timeout:g}s: "
                           f"{sh.stats.ledger_line()}")


async def _read(url: str) -> list[StoredExchange]:
    from shadowroute.store import Store
    from shadowroute.store.queries.listing import exchanges_with_outputs

    async with await Store.open(url, create=False) as store:
        rows = await exchanges_with_outputs(store)
        return [
            StoredExchange(
                id=x.id, task=x.task_type, primary_model=x.primary_model, request=x.request,
                primary_output=x.primary_output, source=x.source, route=x.route,
                metadata=dict(x.meta or {}), created_at=x.created_at,
                outputs={
                    o.model: StoredOutput(
                        model=o.model, output=o.output, error_kind=o.error_kind, error=o.error,
                        latency_ms=o.latency_ms, cost_usd=o.cost_usd,
                        input_tokens=o.input_tokens, output_tokens=o.output_tokens,
                        attempts=o.attempts,
                    )
                    for o in x.outputs
                },
            )
            for x in rows
        ]


@pytest.fixture(scope="session")
def shadow_stored() -> StoredReader:
    """:class:`StoredReader`: ``[exchange] = await shadow_stored(shadow)``, then
    ``exchange.outputs["small"].output``; ``shadow_stored.sync(sync_shadow)`` in sync tests."""
    return StoredReader()
