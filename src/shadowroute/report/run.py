"""``shadowroute report``: open the store, build the report, write the HTML and its JSON twin."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ..config import Config
from ..errors import ConfigError, StoreError
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
    """Build the report from ``config.database_url`` and write it; (report, html, json).

    A database that cannot be read raises :class:`StoreError`, a file that cannot be written
    :class:`ConfigError` naming the option; a half-written report never replaces a good one.
    """
    async with await Store.open(config.database_url) as store:
        try:
            report = await build_report(config, store, since=since, examples=examples)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the report's data: {exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0]}") from exc
    html_path = out or default_report_path(report.generated_at)
    try:
        html, twin = write_report(report, html_path, json_path)
    except OSError as exc:
        where = str(exc.filename or html_path)
        on_json = json_path is not None and where in (str(json_path), str(json_path.parent))
        raise ConfigError(f"cannot write {where}: {exc.strerror or exc}",
                          key="--json" if on_json else "--out") from exc
    return report, html, twin
