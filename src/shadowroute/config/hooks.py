"""User code named in the config as ``"package.module:function"`` (e.g. ``[redaction] hook``),
resolved once when the config is loaded so that a typo fails at startup, not on traffic."""

from __future__ import annotations

import pkgutil
from collections.abc import Callable

__all__ = ["Hook", "import_hook"]

Hook = Callable[[str], str]


def import_hook(path: str) -> Hook:
    """The function named by ``"package.module:function"``; ValueError when it is not one."""
    if ":" not in path:
        raise ValueError(f"{path!r} must look like 'package.module:function'")
    try:
        found = pkgutil.resolve_name(path)
    except Exception as exc:  # ImportError, AttributeError, or the module failing to import
        raise ValueError(f"cannot import {path!r}: {type(exc).__name__}: {exc}") from exc
    if not callable(found):
        raise ValueError(f"{path!r} is not a function (str -> str)")
    return found  # type: ignore[no-any-return]
