"""``reports/index.html``: every report in the folder, newest first, and ``latest.html``.

Rebuilt from the JSON twins on disk each run (so an interrupted run, or a report written by
hand with ``shadowroute report``, is listed all the same): date, headline verdict counts,
drift checks and money. Self-contained, escaped, no script.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

__all__ = ["write_index"]

PATTERN = "shadowroute-*.json"


def _entries(folder: Path) -> list[dict[str, Any]]:
    out = []
    for twin in folder.glob(PATTERN):
        try:
            data = json.loads(twin.read_text(encoding="utf-8"))
            overview = data["overview"]
            html = twin.with_suffix(".html")
            out.append({
                "html": html.name if html.exists() else None, "generated_at": data["generated_at"],
                "verdicts": overview.get("verdicts", {}), "drift": overview.get("drift", {}),
                "savings": overview.get("monthly_savings"), "now": overview.get("monthly_now"),
                "promotions": len(overview.get("promotions", [])),
            })
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a report twin (or half of one): not listed
    return sorted(out, key=lambda e: e["generated_at"], reverse=True)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_index(folder: Path, latest: Path) -> Path:
    """Write ``index.html`` listing the folder's reports and ``latest.html`` (a copy of
    ``latest``); returns the index's path."""
    env = Environment(loader=PackageLoader("shadowroute.ops", "templates"), autoescape=True,
                      undefined=StrictUndefined)
    index = folder / "index.html"
    _write(index, env.get_template("index.html.j2").render(entries=_entries(folder)))
    _write(folder / "latest.html", latest.read_text(encoding="utf-8"))
    return index
