"""The headless-Chromium harness (tests/support/browser.py) itself: each check can fail both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.browser import is_blank, render

_SCRIPT = '<script>document.body.dataset.ran = "1";</script>'


def _page(tmp_path: Path, body: str, head: str = "") -> Path:
    path = tmp_path / "page.html"
    path.write_text(
        f'<!doctype html><html><head><meta charset="utf-8">{head}</head><body>{body}</body></html>',
        encoding="utf-8",
    )
    return path


def test_coloured_text_is_not_blank(chromium: str, tmp_path: Path) -> None:
    page = _page(tmp_path, '<p style="color:#c00;font-size:32px">Visible coloured text</p>')
    shot = render(page, width=600, height=200, chromium=chromium).screenshot
    assert shot.startswith(b"\x89PNG")
    # Blank despite the text usually means no font is installed: run scripts/ensure-chromium.
    assert not is_blank(shot)


def test_empty_white_page_is_blank(chromium: str, tmp_path: Path) -> None:
    page = _page(tmp_path, "", head="<style>html,body{background:#fff}</style>")
    assert is_blank(render(page, width=600, height=200, chromium=chromium).screenshot)


def test_dumped_dom_reflects_executed_scripts(chromium: str, tmp_path: Path) -> None:
    page = _page(tmp_path, f'<p id="marker">hello</p>{_SCRIPT}')
    dom = render(page, width=600, height=200, chromium=chromium).dom
    assert 'data-ran="1"' in dom
    # The file's source never contains the attribute: only running the script adds it.
    assert "data-ran" not in page.read_text(encoding="utf-8")


def test_content_security_policy_blocks_inline_script(chromium: str, tmp_path: Path) -> None:
    csp = """<meta http-equiv="Content-Security-Policy" content="default-src 'none'">"""
    page = _page(tmp_path, f'<p id="marker">hello</p>{_SCRIPT}', head=csp)
    dom = render(page, width=600, height=200, chromium=chromium).dom
    assert 'id="marker"' in dom  # the page did render ...
    assert "data-ran" not in dom  # ... but its script did not run


def test_render_failure_raises_with_context(tmp_path: Path) -> None:
    page = _page(tmp_path, "<p>x</p>")
    with pytest.raises(RuntimeError, match="exited with status 1"):
        render(page, chromium="/bin/false")
