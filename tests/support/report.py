"""Crafted exchanges for report tests, and lookups into a built Report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from shadowroute.records import CandidateOutputRecord, ExchangeRecord, utcnow
from shadowroute.report import Report

HOSTILE_REQUEST = '<iframe src="https://evil.example/"></iframe> which queue?'
HOSTILE_PRIMARY = "the answer is <b>refund</b>"
HOSTILE_OUTPUT = "the answer is <script>alert(1)</script> <img src=x onerror=alert(1)>"


@dataclass
class Out:
    """One candidate's answer to an :func:`xchg`."""

    model: str
    text: str | None
    """``None``: the call failed (error_kind ``timeout``)."""
    cost: float | None = None
    latency: float | None = None


def xchg(task: str, primary: str | None, *outs: Out, cost: float | None = None,
         latency: float | None = None, age_days: float = 0, content: str | None = None,
         primary_model: str = "big") -> ExchangeRecord:
    """An exchange of ``task`` ``age_days`` old: the primary's answer and the candidates' ``outs``."""
    x = ExchangeRecord(
        task_type=task,
        primary_model=primary_model,
        request={"model": primary_model,
                 "messages": [{"role": "user", "content": content or f"question for {task}"}]},
        primary_output=primary,
        latency_ms=latency,
        cost_usd=cost,
        created_at=utcnow() - timedelta(days=age_days),
    )
    for o in outs:
        x.outputs.append(CandidateOutputRecord(
            x.id, o.model, output=o.text, latency_ms=o.latency, cost_usd=o.cost,
            error_kind="timeout" if o.text is None else None,
            error="boom" if o.text is None else None,
        ))
    return x


def candidate_of(report: Report, task: str, model: str) -> Any:
    """The report's row for ``model`` on ``task`` (exactly one)."""
    (t,) = [t for t in report.tasks if t.task == task]
    (c,) = [c for c in t.candidates if c.model == model]
    return c


def task_of(report: Report, task: str) -> Any:
    """The report's section of ``task`` (exactly one)."""
    (t,) = [t for t in report.tasks if t.task == task]
    return t


# --------------------------------------------------------------------------- a report of every action

MIXED_TASKS: dict[str, Any] = {
    "easy": {"candidates": ["mini", "tiny"], "scorers": ["exact"], "required_quality": 0.9,
             "margin": 0.06},
    "hard": {"candidates": ["mini"], "scorers": ["exact"]},
    "young": {"candidates": ["mini"], "scorers": ["exact"]},
}
"""``[tasks]`` of :func:`seed_mixed` (``spare`` is seen in traffic only: no candidates)."""


def easy_and_hard() -> tuple[list[Any], list[Any]]:
    """(exchanges, traffic) of two task types: easy: mini 198/200, tiny 196/200, replays 59/60,
    primary $0.01 a call, 3,000 requests today; hard: mini 70/100, primary $0.004, 1,000."""
    from shadowroute.records import NOISE_FLOOR_MODEL, TrafficRecord

    batch = []
    for i in range(200):
        outs = [Out("mini", "miss" if i < 2 else "yes", cost=0.002),
                Out("tiny", "miss" if i < 4 else "yes", cost=0.001)]
        if i < 60:
            outs.append(Out(NOISE_FLOOR_MODEL, "miss" if i == 0 else "yes", cost=0.01))
        batch.append(xchg("easy", "yes", *outs, cost=0.01))
    batch += [xchg("hard", "yes", Out("mini", "miss" if i < 30 else "yes", cost=0.001),
                   cost=0.004) for i in range(100)]
    today = utcnow().date()
    return batch, [TrafficRecord(today, "easy", "big", requests=3000),
                   TrafficRecord(today, "hard", "big", requests=1000)]


async def seed_mixed(store: Any) -> None:
    """:func:`easy_and_hard` (easy: mini PROMOTE, tiny NEED MORE DATA with always-valid bounds;
    hard: mini HOLD) and young: mini 20/20 (NEED MORE DATA, under the 100 required); spare: 5
    exchanges, no candidate. Primary $0.004 a call; traffic today: young 40, spare 5 requests."""
    from shadowroute.records import TrafficRecord

    batch, traffic = easy_and_hard()
    batch += [xchg("young", "yes", Out("mini", "yes", cost=0.001), cost=0.004) for _ in range(20)]
    batch += [xchg("spare", "yes", cost=0.004) for _ in range(5)]
    today = utcnow().date()
    await store.write(batch, traffic=[*traffic, TrafficRecord(today, "young", "big", requests=40),
                                      TrafficRecord(today, "spare", "big", requests=5)])


async def save_nights(store: Any, nights: list[tuple[float, list[tuple[str, str, str, float]]]],
                      ) -> list[str]:
    """Store a past report run per ``(days_ago, [(task, model, verdict, pass_rate), ...])``
    (``shadow`` decisions, n 100, lower bound 10 points under the pass rate); their ids."""
    import uuid

    from shadowroute.store.queries.routes import save_report

    ids = []
    for days_ago, decisions in nights:
        at = utcnow() - timedelta(days=days_ago)
        run = uuid.uuid4().hex
        rows = [{"report_id": run, "created_at": at, "task_type": task, "model": model,
                 "kind": "shadow", "verdict": verdict, "reason": "stored", "primary_model": "big",
                 "n": 100, "passed": round(100 * rate), "pass_rate": rate,
                 "lower_bound": rate - 0.1, "noise_floor": None, "judge_version": None,
                 "monthly_savings": None} for task, model, verdict, rate in decisions]
        await save_report(store, {"id": run, "created_at": at, "since": None, "overview": {}},
                          rows)
        ids.append(run)
    return ids


# --------------------------------------------------------------------------- layout in a browser
#
# Headless Chromium will not lay a window out narrower than 500 px, so the report is loaded in an
# iframe of the width asked for (its own viewport: media queries and widths as on a phone), from
# ``srcdoc`` (same origin as the page around it, whose script measures it). The report itself is
# loaded unchanged, its Content-Security-Policy included: the script runs outside it.

_MEASURE = """<script>
const frame = document.getElementById("report");
frame.addEventListener("load", () => {
  const doc = frame.contentDocument, win = frame.contentWindow;
  const vw = doc.documentElement.clientWidth;
  const box = (e) => { const r = e.getBoundingClientRect();
    return {top: r.top + win.scrollY, bottom: r.bottom + win.scrollY, left: r.left,
            right: r.right, width: r.width, height: r.height}; };
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (typeof e.className === "string" && e.className ? "." + e.className.split(" ").join(".") : "");
  const wider = [];
  for (const e of doc.body.querySelectorAll("*")) {
    if (e.closest(".scroll") && !e.classList.contains("scroll")) continue;
    const b = box(e);
    if (b.width && (b.right > vw + 0.5 || b.left < -0.5))
      wider.push({name: name(e), top: Math.round(b.top), right: Math.round(b.right)});
  }
  const byId = (id) => doc.getElementById(id) ? box(doc.getElementById(id)) : null;
  const out = {
    viewport: {width: vw, height: win.innerHeight},
    page_width: doc.documentElement.scrollWidth,
    wider,
    summary: byId("summary"), money: byId("money-summary"),
    actions: [...doc.querySelectorAll("#summary .action")].map((e) => ({
      ...box(e), action: e.dataset.action, text: e.textContent})),
    scrolls: [...doc.querySelectorAll(".scroll")].map((e) => ({
      name: name(e), top: Math.round(box(e).top), scroll_width: e.scrollWidth,
      client_width: e.clientWidth,
      hint: !!(e.previousElementSibling && e.previousElementSibling.classList.contains("scroll-hint")
               && win.getComputedStyle(e.previousElementSibling).display !== "none")})),
    trends: [...doc.querySelectorAll("figure.trend")].map((f) => ({
      task: f.dataset.task, model: f.dataset.model, nights: +f.dataset.nights,
      svg: f.querySelector("svg") ? box(f.querySelector("svg")) : null, figure: box(f),
      circles: f.querySelectorAll("svg circle").length,
      lines: f.querySelectorAll("svg polyline.pass-line").length,
      changes: f.querySelectorAll("svg .verdict-change").length, text: f.textContent})),
    histograms: [...doc.querySelectorAll("svg.hist-chart")].map((s) => ({
      box: box(s), bars: s.querySelectorAll("rect").length,
      labels: [...s.querySelectorAll("text")].map((t) => t.textContent)})),
  };
  const pre = document.createElement("pre");
  pre.id = "layout-measure";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def measure_layout(html_path: Path, out_dir: Path, *, width: int, height: int,
                   chromium: str) -> dict[str, Any]:
    """Lay the report out in Chromium in a ``width`` x ``height`` viewport, measure it, and
    write the viewport's screenshot to ``out_dir/report-{width}.png`` (``width`` x
    ``height`` pixels). Returns the measurements -- ``viewport``, ``page_width`` (the page's
    scroll width), ``wider`` (elements reaching past the viewport outside a scrolling box),
    the boxes of ``summary``, each of its ``actions`` and ``money`` (top and bottom from the
    top of the page), ``scrolls`` (each scrolling box's widths and whether its "scroll" hint
    shows), ``trends`` and ``histograms`` -- and ``screenshot``: the PNG's path."""
    import html as html_module
    import io
    import json
    import re

    from PIL import Image

    from support.browser import render

    report = html_module.escape(html_path.read_text(encoding="utf-8"), quote=True)
    page = out_dir / f"measure-{width}.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><style>html,body{margin:0;"
        "overflow:hidden;background:#fff}iframe{border:0;display:block}</style></head><body>"
        f'<iframe id="report" width="{width}" height="{height}" srcdoc="{report}"></iframe>'
        f"{_MEASURE}</body></html>", encoding="utf-8")
    rendered = render(page, width=max(width, 500), height=height, chromium=chromium)
    shot = out_dir / f"report-{width}.png"
    with Image.open(io.BytesIO(rendered.screenshot)) as image:
        image.crop((0, 0, width, height)).save(shot)
    found = re.search(r'<pre id="layout-measure">(.*?)</pre>', rendered.dom, re.S)
    if found is None:
        raise AssertionError(f"the measuring script did not run on {page}")
    data: dict[str, Any] = json.loads(html_module.unescape(found.group(1)))
    data["screenshot"] = shot
    return data
