"""Where public evaluation data is looked for: ``$SHADOWROUTE_DATASETS``, else the first
``shared/datasets`` folder above the working directory, else above this package's checkout.
The data is read in place, never copied into the project."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATASETS_ENV", "datasets_dirs", "shared_datasets_dirs"]

DATASETS_ENV = "SHADOWROUTE_DATASETS"


def shared_datasets_dirs(*starts: Path) -> list[Path]:
    """The first ``shared/datasets`` folder above each start (default: the working directory,
    then this package's file), without duplicates."""
    found: list[Path] = []
    for start in starts or (Path.cwd(), Path(__file__).parent):
        for folder in (start.resolve(), *start.resolve().parents):
            candidate = folder / "shared" / "datasets"
            if candidate.is_dir():
                if candidate not in found:
                    found.append(candidate)
                break
    return found


def datasets_dirs(cwd: Path | None = None) -> list[Path]:
    """``$SHADOWROUTE_DATASETS`` (when set), then :func:`shared_datasets_dirs`."""
    env = os.environ.get(DATASETS_ENV)
    found = [Path(env).expanduser()] if env else []
    starts = (Path(cwd or Path.cwd()), Path(__file__).parent)
    return found + [d for d in shared_datasets_dirs(*starts) if d not in found]
