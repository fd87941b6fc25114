"""The wheel carries the Alembic migrations, so `pip install` then `shadowroute db upgrade` works."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    wheel = next(tmp_path.glob("shadowroute-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    assert "shadowroute/migrations/env.py" in names
    assert "shadowroute/migrations/script.py.mako" in names
    for name in versions:
        assert f"shadowroute/migrations/versions/{name}" in names
    assert "shadowroute/cli/__init__.py" in names and "shadowroute/fakellm/app.py" in names
