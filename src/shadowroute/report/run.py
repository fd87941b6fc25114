"""``shadowroute report``: open the store, build the report, write the HTML and its JSON twin."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..store import Store
from ..store.queries.routes import save_report
from .build import Report, build_report
from .promoted import as_decision_row
from .render import write_report

__all__ = ["decision_rows", "default_report_path", "run_report"]


def default_report_path(now: datetime | None = None) -> Path:
    """``reports/shadowroute-YYYY-MM-DD.html`` (UTC date)."""
    return Path("reports") / f"shadowroute-{(now or datetime.now(UTC)):%Y-%m-%d}.html"


async def run_report(
    config: Config, *, since: datetime | None = None, out: Path | None = None,
    json_path: Path | None = None, examples: int = 3,
) -> tuple[Report, Path, Path]:
    """Build the report from ``config.database_url`` and write it; (report, html, json).

    The decisions are stored too (``shadowroute promote`` is gated on the latest one), once
    the files are written. A database that cannot be read raises :class:`StoreError`, a file
    that cannot be written :class:`ConfigError` naming the option, and then nothing is stored;
    a half-written report never replaces a good one.
    """
    async with await Store.open(config.database_url) as store:
        report = await build_report(config, store, since=since, examples=examples)
        html_path = out or default_report_path(report.generated_at)
        try:
            html, twin = write_report(report, html_path, json_path)
        except OSError as exc:
            # The failing path is a file, its staging file (.NAME.tmp) or a folder on its way;
            # the HTML is written first, so a path on both ways is the HTML's (--out).
            failed = Path(exc.filename) if exc.filename else html_path
            ways = {target: {target, target.with_name(f".{target.name}.tmp"), *target.parents}
                    for target in (html_path, json_path) if target is not None}
            on_json = json_path is not None and failed in ways[json_path] \
                and failed not in ways[html_path]
            where = next((t for t in ways if failed == t.with_name(f".{t.name}.tmp")), failed)
            raise ConfigError(f"cannot write {where}: {exc.strerror or exc}",
                              key="--json" if on_json else "--out") from exc
        # Stored only once its files are written: promote never trusts a report nobody can
        # read.
        run, rows = decision_rows(report)
        await save_report(store, run, rows)
    return report, html, twin


def decision_rows(report: Report) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``reports`` row and the ``decisions`` rows of a report: one per task type x
    candidate (kind ``shadow``) and one per promoted task type (kind ``drift``)."""
    run = {"id": report.id, "created_at": report.generated_at, "since": report.since,
           "overview": report.overview}
    rows = []
    for t in report.tasks:
        for c in t.candidates:
            rows.append({
                "task_type": t.task, "model": c.model, "kind": "shadow", "verdict": c.verdict,
                "reason": c.reason, "primary_model": t.primary_model, "n": c.n,
                "passed": c.passed, "pass_rate": c.pass_rate,
                "lower_bound": c.sequential_lower if c.sequential_lower is not None
                else c.lower_bound,
                "noise_floor": c.noise_floor, "judge_version": t.judge_version,
                "monthly_savings": c.monthly_savings,
            })
    rows += [as_decision_row(p) for p in report.promoted]
    for row in rows:
        row["report_id"], row["created_at"] = report.id, report.generated_at
    return run, rows
