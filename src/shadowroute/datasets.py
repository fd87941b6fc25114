"""Where public evaluation data is looked for: ``$SHADOWROUTE_DATASETS``, else the copy that
ships with the project (``evals/datasets/`` of the checkout, with each source's licence), else
the first ``shared/datasets`` folder above the working directory or above the checkout."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATASETS_ENV", "datasets_dirs", "project_datasets_dir", "shared_datasets_dirs"]

DATASETS_ENV = "SHADOWROUTE_DATASETS"


def project_datasets_dir() -> Path | None:
    """``evals/datasets`` of the checkout this package runs from (``None`` when installed
    from a wheel: pass ``--data`` or set ``$SHADOWROUTE_DATASETS`` then)."""
    candidate = Path(__file__).resolve().parents[2] / "evals" / "datasets"
    return candidate if candidate.is_dir() else None


def shared_datasets_dirs(*starts: Path) -> list[Path]:
    """The project's own copy (:func:`project_datasets_dir`), then the first
    ``shared/datasets`` folder above each start (default: the working directory, then this
    package's file), without duplicates."""
    own = project_datasets_dir()
    found: list[Path] = [own] if own is not None else []
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
