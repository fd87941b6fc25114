"""The report: per task type x candidate, a verdict with its evidence, the money, and the worst
examples side by side, which scorer decided each verdict and how far each scorer agrees with
labels, as one self-contained HTML file and a JSON twin.

    report = await build_report(config, store, since=thirty_days_ago)
    write_report(report, Path("reports/shadowroute-2026-11-29.html"))
"""

from .build import CandidateResult, Report, ScorerStat, ScorerValidity, TaskResult, build_report
from .examples import Example
from .render import render_html, report_json, write_report
from .run import default_report_path, run_report

__all__ = [
    "CandidateResult",
    "Example",
    "Report",
    "ScorerStat",
    "ScorerValidity",
    "TaskResult",
    "build_report",
    "default_report_path",
    "render_html",
    "report_json",
    "run_report",
    "write_report",
]
