"""Run the fake LLM app on loopback: in a background thread for tests, or blocking for the CLI.

    with FakeLLMServer(default_settings(latency_scale=0)) as srv:
        client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="fake")
        srv.update_model("small", error_rate=1.0, error_status=429, retry_after=0.1)
        assert srv.stats()["models"]["small"]["calls"] == 0
"""

from __future__ import annotations

from typing import Any, Self

from ..serving import BackgroundServer, run_app
from .app import FakeState, create_app
from .models import FakeLLMSettings, FakeModel

__all__ = ["FakeLLMServer", "run"]


class FakeLLMServer(BackgroundServer):
    """The fake server on ``host`` (loopback) in a daemon thread; ``port=0`` picks a free port.

    Usable as a (sync or async) context manager; :meth:`start` returns once the server accepts
    connections. The server keeps its own copy of ``settings``: change models at runtime with
    :meth:`update_model` (or ``POST /_fake/models/{name}``).
    """

    def __init__(
        self,
        settings: FakeLLMSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        graceful_shutdown_s: float = 0.5,
    ) -> None:
        super().__init__(
            create_app(settings),
            host=host,
            port=port,
            lifespan="off",
            timeout_graceful_shutdown=graceful_shutdown_s,
        )

    @property
    def state(self) -> FakeState:
        state: FakeState = self.app.state.fake
        return state

    def start(self, timeout: float = 5.0) -> Self:
        self.state.closing.clear()
        return super().start(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self.state.closing.set()  # lets hanging requests end, so the server can stop
        super().stop(timeout)

    # --- test hooks (same as the /_fake endpoints, without HTTP) -----------------------------
    def update_model(self, name: str, **changes: Any) -> FakeModel:
        """Change model ``name`` at runtime (added with defaults if unknown); returns it."""
        return self.state.update_model(name, changes)

    def model(self, name: str) -> FakeModel | None:
        return self.state.model(name)

    def stats(self) -> dict[str, Any]:
        """``{"total_calls": n, "models": {name: {"calls", "openai", "anthropic", "responses",
        "ok", "errors", "garbage", "hangs", "tasks": {task: n}}}}`` (``openai`` counts chat
        completions, ``responses`` the Responses API)."""
        return self.state.stats()

    def calls(self, name: str) -> int:
        """How many calls model ``name`` received (0 if none)."""
        return int(self.stats()["models"].get(name, {}).get("calls", 0))

    def reset_stats(self) -> None:
        self.state.reset_stats()


def run(
    settings: FakeLLMSettings | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
) -> None:
    """Serve the fake LLM in the foreground until interrupted (``shadowroute fake-llm``)."""
    run_app(create_app(settings), host=host, port=port, log_level=log_level, lifespan="off")
