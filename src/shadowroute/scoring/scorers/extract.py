"""``extract``: pull the answer out of both outputs, then compare the two answers.

A reasoning model's text is not its answer: "9 * $2 = $18" and "she makes $18 every day" agree
although their words do not, and "... = $18" and "... = $19" disagree although almost every
word is the same. So the answer is extracted from each output (the text of the answer:
``parse_answer(output).content``; an answer that only called tools has none), in this order:

1. ``json_pointer`` (RFC 6901, e.g. ``/answer`` or ``/items/0/qty``): the output must be JSON
   (strict, as :func:`.base.parse_json_output` reads it, but any JSON value) and the answer is
   the value it points at. A string value goes on to the next steps; a number is a number; a
   boolean, ``null``, object or array is compared as JSON.
2. ``pattern``: a regular expression; the answer is its first group (the whole match when it
   has no group) in the *last* match that has one.
3. ``choices``: a closed set (``["A", "B", "C", "D"]``, or labels): the answer is the *last*
   choice that stands alone in the text (not inside a word). Matching ignores case unless
   ``case_sensitive``, except for one-letter choices, which always match as written: the
   article "a" is never the choice "A".
4. With none of the three: the final number of the text. When there is a ``\\boxed{...}``,
   it is the last number in the last one; else, when the last ``#### ...`` line has no number
   after it (GSM8K's answer line; a markdown heading is followed by more text), the last
   number on that line; else the last number of the whole text.

Numbers are read with their sign (``-3``; a ``-`` after a word or a digit is a dash or a minus
sign between terms, not a sign), thousands separators (``1,234.50``), a currency sign
(``$1,000``), a percent sign (``50%`` reads 50), decimals and exponents, and compared exactly
(as decimals) unless ``abs_tolerance`` / ``rel_tolerance`` allow a difference:
``|p - c| <= max(abs_tolerance, rel_tolerance * max(|p|, |c|))``. A text answer that is only a
number (``"$18."``) is that number. Other text answers are compared after
:func:`.base.normalize_label` (whitespace collapsed, quotes and end punctuation stripped,
case folded unless ``case_sensitive``).

Results: value 1.0 and passed when the answers agree, else 0.0 and failed; details hold both
answers (``primary``, ``candidate``) and the ``mode`` (number, text, choice or json). A
candidate without an answer fails with ``no_answer: "candidate"`` and a ``reason``; a primary
without one makes the pair not applicable (``passed`` is ``None``) with ``no_answer:
"primary"``, so both can be counted from the stored details.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ...formats.chat import parse_answer
from .base import (
    _SETTINGS_VERSION,
    ScoreResult,
    _load_json,
    _not_applicable,
    _truncate,
    normalize_label,
)
from .tools import same_json

__all__ = ["ExtractScorer", "parse_json_pointer"]


_SIGN = "-+\u2212"  # U+2212 is the typographic minus
_NUMBER = re.compile(
    rf"(?:(?<![\w)\]])(?P<sign>[{_SIGN}]))?"  # after a word or a bracket it is an operator
    r"(?<![\w.])"  # not the tail of a word or of another number
    r"\$?"
    rf"(?P<sign2>[{_SIGN}])?"  # $-5
    r"(?P<digits>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)"
    r"(?P<exponent>[eE][-+]?\d+)?"
    r"%?"
)
_BOXED = "\\boxed{"
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_LATEX_SPACING = (("{,}", ","), ("\\,", ","), ("\\!", ""), ("\\$", "$"), ("\\%", "%"))
_ARRAY_INDEX = re.compile(r"0|[1-9]\d*")


def _read_number(match: re.Match[str]) -> Decimal:
    """The value of a :data:`_NUMBER` match."""
    value = Decimal(match["digits"].replace(",", "") + (match["exponent"] or ""))
    signs = (match["sign"] or "") + (match["sign2"] or "")
    negative = sum(sign in "-\u2212" for sign in signs) % 2 == 1
    return -value if negative else value


def _last_number(text: str) -> Decimal | None:
    last = None
    for last in _NUMBER.finditer(text):  # the last match is the answer
        pass
    return _read_number(last) if last is not None else None


def _only_number(text: str) -> Decimal | None:
    """The number ``text`` is, when it is nothing else (surrounding whitespace and an end
    period aside)."""
    match = _NUMBER.fullmatch(text.strip().rstrip("."))
    return _read_number(match) if match is not None else None


def _last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (braces balanced), ``None`` when there is none
    (or it is never closed)."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth = 0
    begin = start + len(_BOXED)
    for i in range(begin, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            if depth == 0:
                return text[begin:i]
            depth -= 1
    return None


def _final_number(text: str) -> tuple[Decimal | None, str]:
    """The default answer: ``(number, where it was looked for)``."""
    boxed = _last_boxed(text)
    if boxed is not None:
        for latex, plain in _LATEX_SPACING:
            boxed = boxed.replace(latex, plain)
        return _last_number(boxed), "the \\boxed{}"
    marked = None
    for marked in _HASHES.finditer(text):  # the last #### line
        pass
    # GSM8K's answer line ends the reasoning; a markdown heading ("#### Step 3") is followed
    # by more of it, and the final number is then read after the heading.
    if marked is not None and _NUMBER.search(text, marked.end()) is None:
        return _last_number(marked[1]), "the #### line"
    return _last_number(text), "the output"


def parse_json_pointer(pointer: str) -> tuple[str, ...]:
    """The reference tokens of an RFC 6901 JSON pointer (``""`` is the whole document);
    :class:`ValueError` when it is not one."""
    if not isinstance(pointer, str):
        raise ValueError(f"json_pointer must be a string, got {pointer!r}")  # noqa: TRY004
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"json_pointer must be empty or start with '/', got {pointer!r}")
    if re.search(r"~(?![01])", pointer):
        raise ValueError(f"json_pointer {pointer!r}: '~' must be followed by 0 or 1")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def _resolve(document: Any, tokens: tuple[str, ...]) -> tuple[bool, Any]:
    node = document
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and _ARRAY_INDEX.fullmatch(token) and int(token) < len(node):
            node = node[int(token)]
        else:
            return False, None
    return True, node


@dataclass(frozen=True, slots=True)
class _Answer:
    mode: str
    """number, text, choice or json."""
    value: Any
    """A Decimal, a normalised string, a choice as configured, or a JSON value."""

    def shown(self) -> Any:
        if self.mode == "number":
            return _show_number(self.value)
        if self.mode == "json":
            return _truncate(json.dumps(self.value, ensure_ascii=False, default=str))
        return _truncate(str(self.value))


def _show_number(value: Decimal) -> str:
    if value.is_finite() and -30 < value.adjusted() < 30:
        return format(value.normalize(), "f")
    return str(value)


_NoAnswer = str
"""Why no answer was found (a phrase that follows "no answer in the ...'s output: ")."""


class ExtractScorer:
    """Extract the answer from both outputs and compare the answers (module doc)."""

    __slots__ = (
        "_abs_tolerance",
        "_case_sensitive",
        "_choice_regex",
        "_choices",
        "_last_primary",
        "_pattern",
        "_pointer",
        "_pointer_text",
        "_rel_tolerance",
    )
    name = "extract"
    hard = False

    def __init__(
        self,
        *,
        pattern: str | None = None,
        json_pointer: str | None = None,
        choices: Sequence[str] | None = None,
        abs_tolerance: float = 0.0,
        rel_tolerance: float = 0.0,
        case_sensitive: bool = False,
    ) -> None:
        self._pattern: re.Pattern[str] | None = None
        if pattern is not None:
            if not isinstance(pattern, str) or not pattern:
                raise ValueError(f"pattern must be a non-empty regular expression, got {pattern!r}")
            try:
                self._pattern = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid pattern {pattern!r}: {exc}") from None
        self._pointer = None if json_pointer is None else parse_json_pointer(json_pointer)
        self._pointer_text = json_pointer
        self._case_sensitive = bool(case_sensitive)
        self._choices, self._choice_regex = self._compile_choices(choices)
        self._abs_tolerance = _check_tolerance("abs_tolerance", abs_tolerance)
        self._rel_tolerance = _check_tolerance("rel_tolerance", rel_tolerance)
        self._last_primary: tuple[str, _Answer | _NoAnswer] | None = None

    def _compile_choices(
        self, choices: Sequence[str] | None
    ) -> tuple[dict[str, str] | None, re.Pattern[str] | None]:
        """(normalised choice -> the choice as configured, the regex finding any of them)."""
        if choices is None:
            return None, None
        if isinstance(choices, str) or not all(isinstance(c, str) for c in choices):
            raise ValueError(f"choices must be a list of strings, got {choices!r}")
        stripped = [" ".join(c.split()) for c in choices]
        if not stripped or "" in stripped:
            raise ValueError("choices must be a non-empty list of non-empty strings")
        by_key: dict[str, str] = {}
        for choice in stripped:
            key = self._choice_key(choice)
            if key in by_key:
                raise ValueError(f"choices {by_key[key]!r} and {choice!r} are the same choice")
            by_key[key] = choice
        alternatives = []
        for choice in sorted(stripped, key=len, reverse=True):  # the longest choice first
            body = r"\s+".join(re.escape(word) for word in choice.split(" "))
            exact = self._case_sensitive or (len(choice) == 1 and choice.isalpha())
            alternatives.append(f"(?-i:{body})" if exact else body)
        flags = 0 if self._case_sensitive else re.IGNORECASE
        regex = re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", flags)
        return by_key, regex

    def _choice_key(self, text: str) -> str:
        text = " ".join(text.split())
        if self._case_sensitive or (len(text) == 1 and text.isalpha()):
            return text
        return text.casefold()

    def settings(self) -> dict[str, Any]:
        return {
            "pattern": self._pattern.pattern if self._pattern is not None else None,
            "json_pointer": self._pointer_text,
            "choices": sorted(self._choices.values()) if self._choices is not None else None,
            "abs_tolerance": self._abs_tolerance,
            "rel_tolerance": self._rel_tolerance,
            "case_sensitive": self._case_sensitive,
            "version": _SETTINGS_VERSION,
        }

    # --- extraction -------------------------------------------------------------------------------

    def missing_answer(self, output: str) -> str | None:
        """Why ``output`` has no answer these settings can extract (``None``: it has one); a
        check that needs no primary (:mod:`shadowroute.scoring.checks`)."""
        found = self._extract(output)
        return found if isinstance(found, str) else None

    def _extract(self, output: str) -> _Answer | _NoAnswer:
        """The answer of one stored output, or why there is none."""
        text = parse_answer(output).content
        if not text:
            return "it is empty" if not output else "it has no text (tool calls only)"
        if self._pointer is not None:
            try:
                document = _load_json(text)
            except ValueError as exc:
                return f"it is not JSON ({exc})"
            found, value = _resolve(document, self._pointer)
            if not found:
                return f"nothing at the JSON pointer {self._pointer_text!r}"
            if isinstance(value, bool) or value is None or isinstance(value, dict | list):
                return _Answer("json", value)
            if isinstance(value, int | float):
                if self._pattern is None and self._choices is None:
                    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
                    return _Answer("number", number)
                value = json.dumps(value)
            text = value
            if self._pattern is None and self._choices is None:
                return self._text_answer(text)
        if self._pattern is not None:
            group = _last_group(self._pattern, text)
            if group is None:
                return f"no match of the pattern {self._pattern.pattern!r}"
            if self._choices is None:
                return self._text_answer(group)
            text = group
        if self._choice_regex is not None and self._choices is not None:
            last = None
            for last in self._choice_regex.finditer(text):  # the last one found counts
                pass
            if last is None:
                return "none of the choices"
            found = " ".join(last.group().split())
            return _Answer("choice", self._choices.get(self._choice_key(found), found))
        number, where = _final_number(text)
        if number is None:
            return f"no number in {where}"
        return _Answer("number", number)

    def _text_answer(self, text: str) -> _Answer | _NoAnswer:
        number = _only_number(text)
        if number is not None:
            return _Answer("number", number)
        normalised = normalize_label(text, case_sensitive=self._case_sensitive)
        if not normalised:
            return "the answer found is empty"
        return _Answer("text", normalised)

    # --- comparison -------------------------------------------------------------------------------

    def _same(self, p: _Answer, c: _Answer) -> bool:
        if p.mode == "json" or c.mode == "json":
            return p.mode == c.mode and same_json(p.value, c.value)
        if p.mode != c.mode:
            return False
        if p.mode != "number":
            return bool(p.value == c.value)
        a, b = p.value, c.value
        if a == b:
            return True
        if not (a.is_finite() and b.is_finite()):
            return False
        try:
            allowed = max(
                Decimal(repr(self._abs_tolerance)),
                Decimal(repr(self._rel_tolerance)) * max(abs(a), abs(b)),
            )
            return abs(a - b) <= allowed
        except (ArithmeticError, InvalidOperation):  # exponents beyond the decimal context
            return False

    def _primary_answer(self, primary: str) -> _Answer | _NoAnswer:
        # The same primary is usually scored against several candidates in a row: remember one.
        last = self._last_primary
        if last is not None and last[0] == primary:
            return last[1]
        answer = self._extract(primary)
        self._last_primary = (primary, answer)
        return answer

    def score(self, primary: str | None, candidate: str) -> ScoreResult:
        if primary is None:
            return _not_applicable()
        p = self._primary_answer(primary)
        c = self._extract(candidate)
        c_shown = c.shown() if isinstance(c, _Answer) else None
        if not isinstance(p, _Answer):
            return ScoreResult(
                None,
                None,
                {
                    "skipped": f"no answer in the primary's output: {p}",
                    "no_answer": "primary",
                    "candidate": c_shown,
                },
            )
        details: dict[str, Any] = {"mode": p.mode, "primary": p.shown(), "candidate": c_shown}
        if not isinstance(c, _Answer):
            details["no_answer"] = "candidate"
            details["reason"] = f"no answer in the candidate's output: {c}"
            return ScoreResult(0.0, False, details)
        match = self._same(p, c)
        details["match"] = match
        if p.mode != c.mode:
            details["reason"] = f"the primary's answer is {p.mode}, the candidate's is {c.mode}"
        return ScoreResult(1.0 if match else 0.0, match, details)


def _last_group(pattern: re.Pattern[str], text: str) -> str | None:
    """The first group (the whole match when there is no group) of the last match that has
    one."""
    group: str | None = None
    for match in pattern.finditer(text):
        found = match.group(1) if pattern.groups else match.group()
        if found is not None:
            group = found
    return group


def _check_tolerance(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")  # noqa: TRY004
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)
