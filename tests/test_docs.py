"""The docs: generated references are current, and every relative link points at a file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def test_generated_docs_are_current() -> None:
    """docs/configuration.md and docs/cli.md are what scripts/gen_docs.py writes today: a new
    config key or command option without regenerating them fails here."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_check_fails_on_a_stale_reference(tmp_path: Path) -> None:
    """The staleness check can fail: a hand edit of a generated file is caught."""
    script = (ROOT / "scripts" / "gen_docs.py").read_text()
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "gen_docs.py").write_text(script)
    for name in ("configuration.md", "cli.md"):
        (docs / name).write_text((ROOT / "docs" / name).read_text())
    (docs / "cli.md").write_text((docs / "cli.md").read_text().replace("| `--force", "| `--forse", 1))
    result = subprocess.run([sys.executable, str(tmp_path / "scripts" / "gen_docs.py"), "--check"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    assert "stale: docs/cli.md;" in result.stderr and "configuration.md" not in result.stderr


def test_every_relative_link_in_the_docs_resolves() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target, _ in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_readme_stays_short() -> None:
    """The README is the front page (what, the two commands, the loop, links); the rest lives
    in docs/."""
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines"
