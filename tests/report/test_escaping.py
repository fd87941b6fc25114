"""`shadowroute report`: crafted data whose right answer is known by hand, scored with the real
`score()` (deterministic scorers only: no judge, no network), then built into a Report. The
worst examples come first, and hostile model output is escaped in the HTML and inert in a real
browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowroute.report import build_report, render_html, write_report
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from support.browser import is_blank, render
from support.config import BIG_MINI_TINY
from support.report import HOSTILE_OUTPUT, HOSTILE_PRIMARY, HOSTILE_REQUEST, Out

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- worst examples


async def test_worst_examples_come_first_and_are_escaped(
    store: Store, make_config, xchg, candidate_of,
) -> None:
    config = make_config(store.url, models=BIG_MINI_TINY, tasks={"classify": {"candidates": ["mini"], "scorers": ["exact"]}})
    hostile = xchg("classify", HOSTILE_PRIMARY, Out("mini", HOSTILE_OUTPUT), content=HOSTILE_REQUEST)
    failed_call = xchg("classify", "billing", Out("mini", None))
    passing = [xchg("classify", "refund", Out("mini", "refund")) for _ in range(8)]
    await store.write([*passing[:4], hostile, *passing[4:], failed_call])
    await score(config, store, ScoreOptions())
    report = await build_report(config, store, examples=4)

    examples = candidate_of(report, "classify", "mini").examples
    assert len(examples) == 4
    failed_ids = {hostile.outputs[0].id, failed_call.outputs[0].id}
    assert {e.output_id for e in examples[:2]} == failed_ids
    assert {e.output_id for e in examples[2:]} <= {x.outputs[0].id for x in passing}
    bad = next(e for e in examples if e.output_id == hostile.outputs[0].id)
    assert bad.exchange_id == hostile.id
    assert bad.request == f"user: {HOSTILE_REQUEST}"
    assert (bad.primary, bad.candidate, bad.error) == (HOSTILE_PRIMARY, HOSTILE_OUTPUT, None)
    assert bad.diff == [
        ("equal", "the answer is "),
        ("delete", "<b>refund</b>"),
        ("insert", "<script>alert(1)</script> <img src=x onerror=alert(1)>"),
    ]
    assert [(s["scorer"], s["passed"]) for s in bad.scores] == [("exact", False)]
    call = next(e for e in examples if e.output_id == failed_call.outputs[0].id)
    assert (call.error, call.candidate, call.diff) == ("timeout: boom", "", [])

    html = render_html(report)
    lowered = html.lower()
    for tag in ("<script", "<img", "<iframe", "<b>"):
        assert tag not in lowered, tag
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;iframe src=&#34;https://evil.example/&#34;&gt;&lt;/iframe&gt; which queue?" in html
    assert ("the answer is <del>&lt;b&gt;refund&lt;/b&gt;</del><ins>&lt;script&gt;alert(1)"
            "&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;</ins>") in html
    assert "call failed: timeout: boom" in html
    assert "mini: 4 worst examples" in html


# --------------------------------------------------------------------------- browser

PWN_SCRIPT = "<script>document.body.dataset.pwned='1'</script>"
PWN_IMG = "<img src=x onerror=\"document.body.dataset.pwned='1'\">"


async def test_hostile_output_renders_as_inert_text_in_a_browser(
    sqlite_url: str, tmp_path: Path, chromium: str, make_config, xchg
) -> None:
    config = make_config(sqlite_url, models=BIG_MINI_TINY, tasks={"classify": {"candidates": ["mini"], "scorers": ["exact"]}})
    async with await Store.open(sqlite_url) as store:
        await store.write([
            xchg("classify", f"refund {PWN_IMG}", Out("mini", f"{PWN_SCRIPT} {PWN_IMG}"),
                 content=f"{PWN_SCRIPT} which queue?"),
            *[xchg("classify", "refund", Out("mini", "refund")) for _ in range(3)],
            xchg(PWN_IMG, "undeclared task type named by a header"),
        ])
        await score(config, store, ScoreOptions())
        report = await build_report(config, store)
    html_path, _ = write_report(report, tmp_path / "report.html")

    page = render(html_path, chromium=chromium)
    assert not is_blank(page.screenshot)
    dom = page.dom.lower()
    assert "data-pwned" not in dom
    assert "<img" not in dom and "<script" not in dom
    assert "&lt;script&gt;document.body.dataset.pwned='1'&lt;/script&gt;" in page.dom
    assert "&lt;img src=x onerror=\"document.body.dataset.pwned='1'\"&gt;" in page.dom
    assert "shadowroute report" in page.dom
