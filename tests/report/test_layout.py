"""The report in a real browser (headless Chromium) at a laptop's 1280 px and a phone's 390 px:
the verdict summary on the first screen, nothing wider than the screen (a table that must be
wider scrolls in its own box, with a hint), the trend chart drawn with its points, the
histograms with their axes. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from shadowroute.report import build_report, write_report
from shadowroute.scoring import ScoreOptions, score
from shadowroute.store import Store
from support.browser import is_blank
from support.config import BIG_MINI_TINY
from support.report import MIXED_TASKS, measure_layout, save_nights, seed_mixed

pytestmark = pytest.mark.anyio

SCREENS = [(1280, 800), (390, 844)]


@pytest.fixture
async def report_html(sqlite_url: str, tmp_path: Path, make_config) -> Path:
    """The mixed report (every action) with three stored nights of easy and hard before it."""
    tasks = {**MIXED_TASKS, "hard": {**MIXED_TASKS["hard"], "scorers": ["exact", "similarity"]}}
    config = make_config(sqlite_url, models=BIG_MINI_TINY, tasks=tasks)
    async with await Store.open(sqlite_url) as store:
        await seed_mixed(store)
        await score(config, store, ScoreOptions())
        await save_nights(store, [
            (3, [("easy", "mini", "NEED MORE DATA", 0.97), ("hard", "mini", "NEED MORE DATA", 0.8)]),
            (2, [("easy", "mini", "NEED MORE DATA", 0.98), ("hard", "mini", "HOLD", 0.72)]),
            (1, [("easy", "mini", "PROMOTE", 0.985), ("hard", "mini", "HOLD", 0.71)]),
        ])
        report = await build_report(config, store)
    html, _ = write_report(report, tmp_path / "report.html")
    return html


@pytest.mark.parametrize(("width", "height"), SCREENS, ids=["1280px", "390px"])
async def test_first_screen_fits_and_answers(
    report_html: Path, tmp_path: Path, chromium: str, width: int, height: int,
) -> None:
    m = measure_layout(report_html, tmp_path, width=width, height=height, chromium=chromium)
    with Image.open(m["screenshot"]) as shot:
        assert shot.size == (width, height)
    assert not is_blank(m["screenshot"].read_bytes())
    viewport = m["viewport"]["width"]
    assert width - 20 <= viewport <= width  # less the scrollbar

    # Nothing reaches past the screen: the page never scrolls sideways.
    assert m["page_width"] <= viewport
    assert m["wider"] == []
    # The verdict summary is on the first screen: its heading and its first task type; at
    # 1280 px every task type's action.
    assert m["summary"]["top"] < height / 3
    actions = m["actions"]
    assert [a["action"] for a in actions] == ["PROMOTE", "HOLD", "NO CANDIDATES", "NEED MORE DATA"]
    assert actions[0]["bottom"] <= height
    if width >= 1280:
        assert actions[-1]["bottom"] <= height
    assert "What would change it:" in actions[1]["text"]
    assert all(a["right"] <= viewport for a in actions)

    # Tables fit at 1280 px; where one cannot (390 px), it scrolls in its box, with a hint.
    assert m["scrolls"]
    for box in m["scrolls"]:
        if width >= 1280:
            assert box["scroll_width"] <= box["client_width"], box
        elif box["scroll_width"] > box["client_width"]:
            assert box["hint"], box

    # The trend: easy x mini over four nights (three stored and this one), its points drawn
    # and its verdict change marked; tiny has one night, said in words.
    trends = {(t["task"], t["model"]): t for t in m["trends"]}
    easy = trends[("easy", "mini")]
    assert easy["nights"] == 4 and easy["circles"] == 4 and easy["lines"] == 1
    assert easy["changes"] == 1
    assert easy["svg"]["width"] > 200 and easy["svg"]["right"] <= viewport
    assert easy["svg"]["height"] > 100
    tiny = trends[("easy", "tiny")]
    assert tiny["svg"] is None and "One night so far" in tiny["text"]

    # Similarity histograms with both axes labelled.
    (hist,) = m["histograms"]
    assert hist["bars"] == 10
    for label in ("0", "0.2", "1", "similarity to the primary's answer", "answers"):
        assert label in hist["labels"]
    assert hist["box"]["right"] <= viewport


async def test_measuring_catches_an_overflowing_page(tmp_path: Path, chromium: str) -> None:
    """The measurement itself can fail: a fixed-width block wider than the phone is found."""
    page = tmp_path / "wide.html"
    page.write_text('<!doctype html><html><body><section id="summary"><div style="width:700px">'
                    'wide</div></section></body></html>', encoding="utf-8")
    m = measure_layout(page, tmp_path, width=390, height=844, chromium=chromium)
    assert m["page_width"] > m["viewport"]["width"]
    assert [w["name"] for w in m["wider"]] == ["div"]
    with Image.open(io.BytesIO(m["screenshot"].read_bytes())) as shot:
        assert shot.size == (390, 844)
