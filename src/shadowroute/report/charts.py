"""Geometry of the report's inline SVG charts: coordinates, ticks and labels worked out here,
the markup in the template (autoescaped like everything else). Each chart has a ``viewBox``,
so it scales down to a narrow screen instead of overflowing it.

    trend_chart(trend)            # pass rate and lower bound per night, verdict changes
    histogram_chart([3, 0, ...])  # a score's distribution over [0, 1] with both axes
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["VERDICT_COLOURS", "histogram_chart", "nice_step", "trend_chart"]

VERDICT_COLOURS = {"PROMOTE": "#1f7a3f", "HOLD": "#b3261e", "NEED MORE DATA": "#8a6100",
                   "CONFIG PROBLEM": "#6a3fb5"}


def nice_step(span: float, ticks: int = 4) -> float:
    """A step of 1, 2 or 5 x 10^k giving about ``ticks`` intervals over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _r(value: float) -> float:
    return round(value, 1)


def trend_chart(trend: Any, width: int = 380, height: int = 190) -> dict[str, Any]:
    """Coordinates of a :class:`~.trend.Trend` (two nights or more): the pass-rate line and
    the lower-bound line (broken where a night had none), a dot per night coloured by its
    verdict, a marker per verdict change, the bar (required quality), axes with ticks."""
    left, right, top, bottom = 44, 30, 14, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    points = trend.points
    values = [v for p in points for v in (p.pass_rate, p.lower_bound) if v is not None]
    low = min([*values, trend.required_quality]) - 0.02
    step = nice_step(1.0 - max(low, 0.0))
    lo = max(0.0, math.floor(low / step) * step)
    span = max(1.0 - lo, 1e-9)

    def x(i: int) -> float:
        return _r(left + (plot_w * i / (len(points) - 1) if len(points) > 1 else plot_w / 2))

    def y(v: float) -> float:
        return _r(top + plot_h * (1.0 - (v - lo) / span))

    def path(attr: str) -> list[str]:
        runs, current = [], []
        for i, p in enumerate(points):
            value = getattr(p, attr)
            if value is None:
                if current:
                    runs.append(current)
                current = []
            else:
                current.append(f"{x(i)},{y(value)}")
        if current:
            runs.append(current)
        return [" ".join(run) for run in runs if len(run) > 1]

    ticks = []
    v = lo
    while v <= 1.0 + 1e-9:
        ticks.append({"y": y(v), "label": f"{v * 100:.0f}%"})
        v += step
    every = max(1, math.ceil(len(points) / 5))
    labels = [{"x": x(i), "label": p.night[5:]} for i, p in enumerate(points)
              if i % every == 0 or i == len(points) - 1]
    if len(labels) > 1 and labels[-1]["x"] - labels[-2]["x"] < 44:
        del labels[-2]  # the newest night keeps its label
    return {
        "width": width, "height": height, "left": left, "top": top, "right": left + plot_w,
        "bottom": top + plot_h, "y_ticks": ticks, "x_ticks": labels,
        "bar": y(trend.required_quality), "pass_lines": path("pass_rate"),
        "lower_lines": path("lower_bound"),
        "dots": [{"x": x(i), "y": y(p.pass_rate), "colour": VERDICT_COLOURS.get(p.verdict, "#555"),
                  "title": f"{p.night}: {p.verdict}, pass rate {p.pass_rate:.1%}, n {p.n:,}"}
                 for i, p in enumerate(points) if p.pass_rate is not None],
        "changes": [{"x": x(i), "colour": VERDICT_COLOURS.get(p.verdict, "#555"),
                     "title": f"{p.night}: {p.changed_from} → {p.verdict}"}
                    for i, p in enumerate(points) if p.changed_from is not None],
    }


def histogram_chart(counts: list[int], threshold: float | None = None, width: int = 260,
                    height: int = 150) -> dict[str, Any]:
    """Coordinates of a histogram of equal bins over [0, 1]: bars, y ticks (counts, a nice
    step from zero), x ticks at 0, 0.2, ... 1, and the pass threshold when given."""
    left, right, top, bottom = 40, 10, 10, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    bins = max(len(counts), 1)
    peak = max(counts or [0])
    step = max(1, int(nice_step(max(peak, 1), 3)))
    top_value = max(step, math.ceil(max(peak, 1) / step) * step)

    def y(v: float) -> float:
        return _r(top + plot_h * (1 - v / top_value))

    bar_w = plot_w / bins
    return {
        "width": width, "height": height, "left": left, "top": top, "right": left + plot_w,
        "bottom": top + plot_h,
        "bars": [{"x": _r(left + i * bar_w + 1), "y": y(n), "w": _r(bar_w - 2),
                  "h": _r(top + plot_h - y(n)),
                  "title": f"{i / bins:.1f}–{(i + 1) / bins:.1f}: {n:,}"}
                 for i, n in enumerate(counts)],
        "y_ticks": [{"y": y(v), "label": f"{v:,}"} for v in range(0, top_value + 1, step)],
        "x_ticks": [{"x": _r(left + plot_w * k / 5), "label": f"{k / 5:g}"} for k in range(6)],
        "threshold": None if threshold is None else _r(left + plot_w * threshold),
        "total": sum(counts),
    }
