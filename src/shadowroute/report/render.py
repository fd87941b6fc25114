"""Render a :class:`~shadowroute.report.build.Report` as one self-contained HTML file (inline
CSS and SVG, no script, no network) and as its JSON twin with the same numbers.

Jinja2 runs with autoescape on for every template: model outputs, requests and scorer details
are hostile input and only ever reach the page as escaped text. A Content-Security-Policy meta
tag (no scripts, no external loads) backs that up.
"""

from __future__ import annotations

import errno
import functools
import json
import math
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from .build import Report
from .charts import histogram_chart, trend_chart
from .policies import policy_rows
from .reasons import per_day

__all__ = ["render_html", "report_json", "write_report"]


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _usd(value: float | None) -> str:
    if value is None:
        return "–"
    sign, value = ("-" if value < 0 else ""), abs(value)
    if value >= 100:
        return f"{sign}${value:,.0f}"
    return f"{sign}${value:,.2f}" if value >= 1 else f"{sign}${value:,.4f}"


def _num(value: float | int | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


def _days(value: float | None) -> str:
    if value is None:
        return "unknown at the current rate"
    if value < 1:
        return "less than a day"
    return f"about {math.ceil(value):,} day{'s' if math.ceil(value) != 1 else ''}"


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, default=str, sort_keys=True)


def _named(items: list[Any], name: str) -> Any:
    """The item of ``items`` whose ``name`` is ``name``, or ``None``."""
    return next((item for item in items if item.name == name), None)


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("shadowroute.report", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(named=_named, pct=_pct, usd=_usd, num=_num, ms=_ms, days=_days,
                       json_text=_json_text, per_day=per_day)
    env.globals.update(trend_chart=trend_chart, histogram_chart=histogram_chart,
                       policy_rows=policy_rows)
    return env


def render_html(report: Report) -> str:
    return _environment().get_template("report.html.j2").render(r=report)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def report_json(report: Report) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=1, default=_default)


def write_report(report: Report, html_path: Path, json_path: Path | None = None) -> tuple[Path, Path]:
    """Write the HTML and its JSON twin (next to it, ``.json``, unless ``json_path``).

    Both are written to temporary files first and only then moved into place, so a failure
    leaves the previous pair as it was (and a twin that cannot be placed leaves no HTML)."""
    json_path = json_path or html_path.with_suffix(".json")
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in ((html_path, render_html(report)), (json_path, report_json(report))):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            staged.append((tmp, path))
            tmp.write_text(text, encoding="utf-8")
        for _, path in staged:  # the one move that can still fail: onto a folder
            if path.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        for tmp, path in staged:
            tmp.replace(path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return html_path, json_path
