"""``shadowroute serve`` / ``fake-llm`` / ``demo``: the servers and the end-to-end demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ..config import SidecarConfig

from .common import (
    ConfigOption,
    DatabaseOption,
    app,
    console,
    load,
    safe_url,
    say,
)


@app.command("serve")
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8787,
    upstream: Annotated[
        str | None,
        typer.Option(help="Upstream of OpenAI-style calls (chat completions, Responses, other /v1 "
                          "paths), e.g. https://api.openai.com (overrides [sidecar] upstream).",
                     show_default=False),
    ] = None,
    anthropic_upstream: Annotated[
        str | None,
        typer.Option(help="Upstream of Anthropic calls (/v1/messages), e.g. "
                          "https://api.anthropic.com; without it they are refused, never sent "
                          "to --upstream.", show_default=False),
    ] = None,
    database_url: DatabaseOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    ingest_token_env: Annotated[
        str | None,
        typer.Option(help="Environment variable holding the token POST /v1/captures requires "
                          "(overrides [sidecar] ingest_token_env).", show_default=False),
    ] = None,
    metrics_token_env: Annotated[
        str | None,
        typer.Option(help="Environment variable holding the token GET /metrics requires "
                          "(overrides [sidecar] metrics_token_env).", show_default=False),
    ] = None,
) -> None:
    """Run the sidecar: an OpenAI/Anthropic-compatible gateway that shadows what it forwards."""
    from ..config import SidecarConfig
    from ..errors import ConfigError
    from ..sidecar import serve as run_sidecar

    cfg = load(config, database_url)
    overrides = {
        key: value
        for key, value in (("upstream", upstream), ("anthropic_upstream", anthropic_upstream),
                           ("ingest_token_env", ingest_token_env),
                           ("metrics_token_env", metrics_token_env))
        if value is not None
    }
    if overrides:
        try:
            sidecar = SidecarConfig.model_validate({**cfg.sidecar.model_dump(), **overrides})
        except ValueError as exc:
            raise ConfigError(f"invalid upstream URL: {exc.errors()[0]['msg']}", key="--upstream") from exc
        cfg = cfg.model_copy(update={"sidecar": sidecar})
    from ..sidecar.answers import trust_line, upstreams_line

    check_trust(cfg.sidecar, host)
    say(f"shadowroute sidecar on http://{host}:{port}: {upstreams_line(cfg.sidecar)}; "
        f"{trust_line(cfg)}; database {safe_url(cfg.database_url)}")
    run_sidecar(cfg, host=host, port=port, log_level=log_level)


def check_trust(sidecar: SidecarConfig, host: str) -> None:
    """Refuse to start where anyone who reaches the port could spend the team's money or
    write evidence: captures on, a non-loopback address, no ingest token. And a token
    variable that is named must be set."""
    import os

    from ..errors import ConfigError
    from ..sidecar.trust import is_loopback

    for key in ("ingest_token_env", "metrics_token_env"):
        name = getattr(sidecar, key)
        if name is not None and not os.environ.get(name):
            raise ConfigError(f"the environment variable {name} is not set (it holds the "
                              f"sidecar's token)", key=f"sidecar.{key}")
    if sidecar.captures and sidecar.ingest_token_env is None and not is_loopback(host):
        raise ConfigError(
            f"--host {host} would let anyone who reaches it send captures (spending the "
            "candidates' budget and writing evidence): set [sidecar] ingest_token_env to the "
            "variable holding a token (the apps send it with remote_token_env), or [sidecar] "
            "captures = false, or listen on 127.0.0.1", key="--host")


@app.command("fake-llm")
def fake_llm(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8900,
    seed: Annotated[int, typer.Option(help="Seed of the simulated models.")] = 7,
) -> None:
    """Run the fake OpenAI- and Anthropic-compatible server with simulated models."""
    from ..fakellm import default_settings, run

    console.print(f"fake LLM server on http://{host}:{port} (OpenAI: /v1, Anthropic: /)")
    run(default_settings(seed=seed), host=host, port=port)


@app.command("demo")
def demo(
    requests: Annotated[int, typer.Option(help="Production calls to simulate.")] = 2150,
    database: Annotated[
        Path, typer.Option(help="SQLite file for the demo (recreated on each run).")
    ] = Path("shadowroute-demo.db"),
    seed: Annotated[int, typer.Option(help="Seed of the simulated traffic and models.")] = 7,
) -> None:
    """Run the end-to-end demo on a local fake LLM server and print what was stored."""
    from .demo import run_demo

    run_demo(requests=requests, database=database, seed=seed, console=console)

