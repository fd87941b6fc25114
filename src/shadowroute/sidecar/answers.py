"""What the sidecar answers itself, and how it describes itself: errors in the caller's API
shape (OpenAI's unless the call was Anthropic's), 401s, Starlette's own 404 / 405 in that
shape, and the start-up line (where each API goes, who may use the sidecar's own endpoints,
what a day may cost)."""

from __future__ import annotations

import math
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..capture.calls import Api
from ..config import Config, SidecarConfig

__all__ = ["api_error", "daily_budgets", "error_json", "http_error", "is_anthropic", "trust_line", "unauthorized",
           "upstreams_line"]

_Headers = list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]


def api_error(api: Api | None, status: int, message: str, kind: str) -> JSONResponse:
    """An error body in the caller's API shape (OpenAI's unless the call was Anthropic's)."""
    if api == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


def is_anthropic(path: str, headers: _Headers) -> bool:
    """A call of Anthropic's API: under ``/v1/messages`` (batches and token counts included) or
    sent with an ``anthropic-version`` header, as Anthropic's SDKs always send it."""
    if path.startswith("/v1/messages") or path.startswith("/v1/complete"):
        return True
    return any(k.lower() == b"anthropic-version" for k, _ in headers)


def upstreams_line(settings: SidecarConfig) -> str:
    """Where each API goes, for the sidecar's start-up line."""
    openai = settings.upstream or "(not served: --upstream)"
    anthropic = settings.anthropic_upstream or "(not served: --anthropic-upstream)"
    ceiling = (f"requests over {settings.max_request_bytes:,} bytes refused"
               if settings.max_request_bytes else "no request size limit")
    return (f"OpenAI chat, Responses and other /v1 calls -> {openai}; "
            f"Anthropic /v1/messages -> {anthropic}; bodies over "
            f"{settings.max_body_bytes:,} bytes relayed uncaptured, {ceiling}; WebSocket "
            "upgrades (Realtime API) refused with 501")


def daily_budgets(config: Config) -> list[float | None]:
    """The task types' distinct daily candidate budgets, smallest first; ``None``: no cap."""
    caps = {t.daily_budget_usd for t in config.tasks.values()}
    return sorted((c for c in caps if not math.isinf(c)), key=float) + (
        [None] if any(math.isinf(c) for c in caps) else [])


def trust_line(config: Config) -> str:
    """Who may use the sidecar's own endpoints and what a day may cost, for the start-up
    line."""
    sidecar = config.sidecar
    captures = ("captures off" if not sidecar.captures else
                f"captures need the token in ${sidecar.ingest_token_env}"
                if sidecar.ingest_token_env else "captures open (loopback only)")
    metrics = (f"metrics need the token in ${sidecar.metrics_token_env}"
               if sidecar.metrics_token_env else "metrics open")
    budgets = daily_budgets(config)
    spend = ("no task types declared" if not budgets else
             "candidate spend capped at " + ", ".join(
                 "no cap" if b is None else f"${b:,.2f}" for b in budgets)
             + " a day per task type")
    return (f"{captures} ({sidecar.captures_per_minute:,}/min per client); {metrics}; "
            f"{spend}")


def error_json(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def unauthorized(message: str) -> JSONResponse:
    response = error_json(401, message, "authentication_error")
    response.headers["www-authenticate"] = "Bearer"
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 / 405 (a method the sidecar does not forward, a path no route takes)
    in the API's JSON error shape, like every other error the sidecar answers."""
    assert isinstance(exc, HTTPException)
    path = request.scope.get("path", "")
    api: Api = "anthropic" if is_anthropic(path, request.headers.raw) else "openai"
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    response = api_error(api, exc.status_code, exc.detail, kind)
    response.headers.update(exc.headers or {})  # Allow, on a 405
    return response
