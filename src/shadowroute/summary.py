"""A terminal table of what is stored (``shadowroute summary`` and the demo)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

__all__ = ["render_summary"]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _usd(value: float) -> str:
    return f"${value:,.4f}"


def render_summary(counts: dict[str, Any]) -> Table:
    """One row per task type and model: the primary first, then each candidate."""
    table = Table(
        "task type",
        "requests",
        "sampled",
        "model",
        "role",
        "stored",
        "errors",
        "mean latency",
        "cost",
        title=(
            f"{counts['exchanges']:,} exchanges, {counts['outputs']:,} candidate outputs, "
            f"{counts['errors']:,} candidate errors"
        ),
    )
    for name, task in counts["tasks"].items():
        first = True
        for model, row in task["primary"].items():
            table.add_row(
                name if first else "",
                f"{task['requests']:,}" if first else "",
                f"{task['sampled']:,}" if first else "",
                model or "?",
                "primary",
                f"{row['exchanges']:,}",
                "",
                _ms(row["mean_latency_ms"]),
                _usd(row["cost_usd"]),
            )
            first = False
        for model, row in task["candidates"].items():
            table.add_row(
                name if first else "",
                f"{task['requests']:,}" if first else "",
                f"{task['sampled']:,}" if first else "",
                model,
                "candidate",
                f"{row['outputs']:,}",
                f"{row['errors']:,}",
                _ms(row["mean_latency_ms"]),
                _usd(row["cost_usd"]),
            )
            first = False
        if first:  # counted traffic, nothing sampled
            table.add_row(name, f"{task['requests']:,}", f"{task['sampled']:,}", "", "", "0", "", "", "")
        table.add_section()
    return table
