"""Run the fake LLM app on loopback: in a background thread for tests, or blocking for the CLI.

    with FakeLLMServer(default_settings(latency_scale=0)) as srv:
        client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="fake")
        srv.update_model("small", error_rate=1.0, error_status=429, retry_after=0.1)
        assert srv.stats()["models"]["small"]["calls"] == 0
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import anyio.to_thread
import uvicorn

from .app import FakeState, create_app
from .models import FakeLLMSettings, FakeModel

__all__ = ["FakeLLMServer", "run"]


class FakeLLMServer:
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
        self.app = create_app(settings)
        self.host = host
        self.port = port
        self._graceful = graceful_shutdown_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` -- append ``/v1`` for the OpenAI SDK, not for Anthropic's."""
        if self._server is None:
            raise RuntimeError("FakeLLMServer is not running; call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> FakeState:
        state: FakeState = self.app.state.fake
        return state

    def start(self, timeout: float = 5.0) -> Self:
        if self._server is not None:
            raise RuntimeError("FakeLLMServer already started")
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto
        # says TCP, and without it every response pays a ~40 ms Nagle/delayed-ACK stall.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=self._graceful,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"fakellm:{self.port}", daemon=True
        )
        self._server, self._thread, self._socket = server, thread, sock
        self.state.closing.clear()
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fake LLM server failed to start on {self.host}:{self.port}")
            time.sleep(0.002)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server, thread, sock = self._server, self._thread, self._socket
        if server is None or thread is None:
            return
        self.state.closing.set()
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(1.0)
        if sock is not None:
            sock.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)

    # --- test hooks (same as the /_fake endpoints, without HTTP) -----------------------------
    def update_model(self, name: str, **changes: Any) -> FakeModel:
        """Change model ``name`` at runtime (added with defaults if unknown); returns it."""
        return self.state.update_model(name, changes)

    def model(self, name: str) -> FakeModel | None:
        return self.state.model(name)

    def stats(self) -> dict[str, Any]:
        """``{"total_calls": n, "models": {name: {"calls", "openai", "anthropic", "ok",
        "errors", "garbage", "hangs", "tasks": {task: n}}}}``."""
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
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, log_level=log_level, lifespan="off"
    )
    uvicorn.Server(config).run()
