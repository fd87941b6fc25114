"""Telling someone: one JSON POST to a webhook per change.

    {"text": "shadowroute nightly 2026-12-03: new PROMOTE: classify_intent -> small: ... ->
              run `shadowroute promote classify_intent --to small`",
     "report": "reports/shadowroute-2026-12-03.html", "change": {"kind": ..., "task": ...}}

``text`` makes it a Slack (and Mattermost, Teams workflow) incoming-webhook message as it is;
``change`` carries the kind, task, model, verdict, previous verdict, reason and command. The
URL comes from the environment variable ``[notify] webhook_url_env`` names, never from the
file. A failed POST is retried with backoff, then logged and counted; it never fails the run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import httpx

from ..config import NotifyConfig
from .changes import Change

__all__ = ["NotifyResult", "notify"]

log = logging.getLogger("shadowroute")


@dataclass(slots=True)
class NotifyResult:
    sent: int = 0
    """Changes the webhook accepted (2xx)."""
    failed: int = 0
    """Changes given up on after every retry."""
    skipped: str | None = None
    """Why nothing was sent (no changes, no webhook configured)."""


def payload(title: str, change: Change, report: str) -> dict[str, object]:
    return {"text": f"{title}: {change.line()}", "report": report, "change": change.to_dict()}


async def notify(settings: NotifyConfig, title: str, changes: Sequence[Change], report: str,
                 *, transport: httpx.AsyncBaseTransport | None = None) -> NotifyResult:
    """POST each change to the configured webhook."""
    result = NotifyResult()
    if not changes:
        result.skipped = "no changes"
        return result
    url = os.environ.get(settings.webhook_url_env) if settings.webhook_url_env else None
    if not url:
        result.skipped = ("no [notify] webhook_url_env" if not settings.webhook_url_env else
                          f"${settings.webhook_url_env} is not set")
        return result
    async with httpx.AsyncClient(timeout=settings.timeout_s, transport=transport) as client:
        for change in changes:
            error = await _post(client, url, payload(title, change, report), settings.retries)
            if error is None:
                result.sent += 1
            else:
                result.failed += 1
                log.warning("shadowroute nightly: the webhook did not take the notification of "
                            "%s %s (%s); the run goes on", change.kind, change.task, error)
    return result


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, object],
                retries: int) -> str | None:
    """``None`` once the webhook took it, else the last error."""
    delay, error = 0.5, "no attempt"
    for attempt in range(retries + 1):
        if attempt:
            await anyio.sleep(delay)
            delay *= 2
        try:
            response = await client.post(url, json=body)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            continue
        if response.is_success:
            return None
        error = f"HTTP {response.status_code}"
        if response.status_code < 500 and response.status_code != 429:
            break  # the receiver refused it: sending again will not help
    return error
