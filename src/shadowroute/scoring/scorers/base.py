"""What every scorer is (:class:`Scorer`, :class:`ScoreResult`) and the helpers they share.

Every scorer is pure, synchronous and cheap enough to run on every stored pair. ``score`` returns
a :class:`ScoreResult` whose ``passed`` is ``None`` when the scorer does not apply (for instance
there is no primary output to compare with): such pairs go to the "ignored" bucket, never into
"passed". ``settings()`` returns the JSON-serialisable settings that affect results, so stored
scores can be versioned by them. Bad settings raise :class:`ValueError` at construction.

JSON paths in details are written ``$`` + ``.key`` / ``[index]``; a key that is not a plain word
(letters, digits, ``_``, ``-``) is written ``["the key"]`` so two fields never share a path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["ScoreResult", "Scorer", "normalize_label", "parse_json_output"]


_SETTINGS_VERSION = 1  # bump when results change for the same settings
_MAX_ITEMS = 20
_MAX_TEXT = 200
_MAX_ERRORS = 5
_LABEL_STRIP = " .,;:!?\"'`\u201c\u201d\u2018\u2019"
_PLAIN_KEY = re.compile(r"[\w-]+")
_NOT_APPLICABLE = "no primary output"


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """One scorer's verdict on one (primary, candidate) pair."""

    value: float | None
    """In [0, 1]; ``None`` when the scorer does not apply."""
    passed: bool | None
    """``None`` = not applicable: the pair belongs in the "ignored" bucket."""
    details: dict[str, Any]
    """Small, JSON-serialisable explanation of ``value`` (lists capped at 20 entries)."""
    cost_usd: float = 0.0


@runtime_checkable
class Scorer(Protocol):
    """What the scoring pipeline needs from a scorer."""

    name: str
    hard: bool
    """A hard scorer's failure is deterministic and no judge may override it."""

    def settings(self) -> dict[str, Any]: ...

    def score(self, primary: str | None, candidate: str) -> ScoreResult: ...


# --- helpers shared by the scorers ---------------------------------------------------------------


def normalize_label(text: str, *, case_sensitive: bool = False) -> str:
    """Normalise a short answer for exact comparison.

    Collapses runs of whitespace to one space, strips surrounding whitespace, quotes (straight and
    curly), backticks and the punctuation ``.,;:!?``, then casefolds unless ``case_sensitive``.
    ``'  "Positive." '`` and ``'positive'`` both become ``'positive'``.
    """
    out = " ".join(text.split()).strip(_LABEL_STRIP)
    return out if case_sensitive else out.casefold()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _load_json(text: str) -> Any:
    """Strict ``json.loads`` of the stripped text; ``ValueError`` carries a one-line reason."""
    try:
        return _DECODER.decode(text.strip())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def parse_json_output(text: str) -> tuple[bool, Any]:
    """Parse a model output that should be a JSON object or array: ``(ok, value)``.

    Only surrounding whitespace is tolerated: no code fences, no prose around the JSON, no
    ``NaN``/``Infinity``. Scalars (``"3"``, ``"true"``) are not accepted: ``(False, None)``.
    """
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return False, None
    try:
        return True, _load_json(stripped)
    except ValueError:
        return False, None


def _key_segment(key: str) -> str:
    if key.isidentifier() or _PLAIN_KEY.fullmatch(key):
        return "." + key
    return "[" + json.dumps(key, ensure_ascii=False) + "]"


def _format_path(parts: Iterable[str | int]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else _key_segment(p) for p in parts)


def _truncate(text: str) -> str:
    return text[:_MAX_TEXT]


def _check_threshold(threshold: float) -> float:
    # Bad settings of any kind raise ValueError, so the config layer has one error to translate.
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ValueError(  # noqa: TRY004
            f"threshold must be a number between 0 and 1, got {threshold!r}"
        )
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold!r}")
    return float(threshold)


def _not_applicable() -> ScoreResult:
    return ScoreResult(None, None, {"skipped": _NOT_APPLICABLE})


# --- schema --------------------------------------------------------------------------------------


# --- exact / label -------------------------------------------------------------------------------


# --- similarity ----------------------------------------------------------------------------------


