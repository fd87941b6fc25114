"""``shadowroute report``: open the store, build the report, write the HTML and its JSON twin."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ..config import Config
from ..store import Store
from .build import Report, build_report
from .render import write_report

__all__ = ["default_report_path", "run_report"]


def default_report_path(now: datetime | None = None) -> Path:
    """``reports/shadowroute-YYYY-MM-DD.html`` (UTC date)."""
    return Path("reports") / f"shadowroute-{(now or datetime.now(UTC)):%Y-%m-%d}.html"


async def run_report(
    config: Config, *, since: datetime | None = None, out: Path | None = None,
    json_path: Path | None = None, examples: int = 3,
) -> tuple[Report, Path, Path]:
    """Build the report from ``config.database_url`` and write it; (report, html, json)."""
    async with await Store.open(config.database_url) as store:
        report = await build_report(config, store, since=since, examples=examples)
    html, twin = write_report(report, out or default_report_path(report.generated_at), json_path)
    return report, html, twin
