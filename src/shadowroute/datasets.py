"""Where public evaluation data is looked for: ``$SHADOWROUTE_DATASETS``, else the first
``shared/datasets`` folder above the working directory, else the copy that ships with the
project (``evals/datasets/`` of the checkout, each source with its licence), else a
``shared/datasets`` folder above the checkout."""

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
    """The first ``shared/datasets`` folder above the first start (default: the working
    directory), then the project's own copy (:func:`project_datasets_dir`), then the first
    ``shared/datasets`` above each other start (default: this package's file), without
    duplicates."""
    starts = starts or (Path.cwd(), Path(__file__).parent)
    found: list[Path] = []
    for i, start in enumerate(starts):
        for folder in (start.resolve(), *start.resolve().parents):
            candidate = folder / "shared" / "datasets"
            if candidate.is_dir():
                if candidate not in found:
                    found.append(candidate)
                break
        own = project_datasets_dir()
        if i == 0 and own is not None and own not in found:
            found.append(own)
    return found


def datasets_dirs(cwd: Path | None = None) -> list[Path]:
    """``$SHADOWROUTE_DATASETS`` (when set), then :func:`shared_datasets_dirs`."""
    env = os.environ.get(DATASETS_ENV)
    found = [Path(env).expanduser()] if env else []
    starts = (Path(cwd or Path.cwd()), Path(__file__).parent)
    return found + [d for d in shared_datasets_dirs(*starts) if d not in found]
