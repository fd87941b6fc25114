"""Redaction before storage: secrets and personal data are replaced before an exchange is
written or spooled.

Configured under ``[redaction]``; every match becomes ``[REDACTED:<name>]``:

* ``redactors``: built-in detectors, default ``["api_key"]``.

  - ``api_key``: OpenAI / Anthropic keys (``sk-…``, ``sk-proj-…``, ``sk-ant-…``, at least 16
    characters after ``sk-``), Stripe (``sk_live_…``, ``rk_test_…``), AWS access key ids
    (``AKIA``/``ASIA`` + 16), GitHub tokens (``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_`` + 36,
    ``github_pat_…``), Slack tokens (``xoxb-``/``xoxp-``/``xoxa-``/``xoxr-``/``xoxs-``),
    Google API keys (``AIza`` + 35), the token after ``Bearer``, and a value of 20+ hex/base64
    characters containing a digit after a name ending in ``key``, ``token``, ``secret`` or
    ``password`` followed by ``=`` or ``:`` (``api_key=…``, ``"token": "…"``). Only the
    secret is replaced: ``Bearer [REDACTED:api_key]``.
  - ``email``: ``local@domain.tld`` (the domain needs a dot and a 2+ letter TLD, so ``a@b``
    is kept).
  - ``phone``: international numbers starting with ``+`` (8-15 digits, spaces, dots, dashes
    or a parenthesised area code between groups) and North-American style numbers written
    with separators (``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``). A bare run of
    digits is not taken for a phone number (order ids would be).
  - ``card``: 13-19 digits, optionally grouped by spaces or dashes, that pass the Luhn
    check (a 16-digit number failing it is kept).

* ``patterns``: your own regular expressions, ``[{name = "ticket", regex = "TCK-\\\\d+"}]``
  (compiled at load time: a bad one is a ConfigError naming the key).
* ``hook``: ``"package.module:function"``, a function ``str -> str`` applied to every string
  after the rules above (imported at load time). Changed strings are counted as ``hook``.

What is redacted: every string value inside the request (message contents, list-of-parts
content, tool call arguments, system prompts, …; never the keys), the metadata values, the
primary's answer and each candidate's ``output`` and ``error``. Candidates (and the noise-floor
replay of the primary) are called with the real request; redaction happens once they answered,
just before the record goes to the writer. The judge reads from the database, so redacted text
is also all the judge ever sees.

A redactor that raises (say, a hook) never breaks production: the capture is dropped, counted in
``Stats.redaction_errors`` and reported once; unredacted data is never stored instead.

Presidio is not a dependency; plug it in through ``hook``::

    # myapp/scrub.py           [redaction] hook = "myapp.scrub:presidio"
    from presidio_analyzer import AnalyzerEngine
    from presidio_anonymizer import AnonymizerEngine
    analyzer, anonymizer = AnalyzerEngine(), AnonymizerEngine()
    def presidio(text: str) -> str:
        return anonymizer.anonymize(text, analyzer.analyze(text, language="en")).text
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..config.hooks import Hook, import_hook
from ..errors import ShadowrouteError
from ..records import CandidateOutputRecord, ExchangeRecord

__all__ = ["BUILTIN_REDACTORS", "RedactionTally", "Redactor", "luhn_ok", "redact_or_drop"]



def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of digits (card numbers end with a check digit)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_ok(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _phone_ok(text: str) -> bool:
    return 8 <= sum(ch.isdigit() for ch in text) <= 15


_SECRET_VALUE = r"(?=[A-Za-z+/=_-]*\d)[A-Za-z0-9+/=_-]{20,}"

BUILTIN_REDACTORS: dict[str, tuple[str, Callable[[str], bool] | None]] = {
    "api_key": (
        r"(?<![\w-])(?:"
        r"sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}"
        r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
        r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
        r"|gh[pousr]_[A-Za-z0-9]{36,}"
        r"|github_pat_[A-Za-z0-9_]{22,}"
        r"|xox[abprs]-[A-Za-z0-9-]{10,}"
        r"|AIza[0-9A-Za-z_-]{35}"
        r")(?![\w-])"
        r"|\b[Bb]earer\s+(?P<bearer>[A-Za-z0-9._~+/=-]{16,})"
        r"|(?i:\b[a-z0-9_-]*(?:key|token|secret|password))[\"']?\s*[=:]\s*[\"']?"
        rf"(?P<value>{_SECRET_VALUE})",
        None,
    ),
    "email": (
        r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])",
        None,
    ),
    "card": (r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])", _card_ok),
    "phone": (
        r"(?<![\w+])(?:"
        r"\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,4}){2,5}"
        r"|(?:\(\d{3}\)\s?|\d{3}[-. ])\d{3}[-. ]\d{4}"
        r")(?!\w)",
        _phone_ok,
    ),
}
"""Name -> (pattern, check of the matched text). Applied in this order."""

_API_KEY_HINTS = ("sk-", "sk_", "rk_", "akia", "asia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
                  "github_pat_", "xox", "aiza", "bearer", "key", "token", "secret", "password")
_NO_DIGITS = str.maketrans("", "", "0123456789")


def _digits(text: str) -> int:
    return len(text) - len(text.translate(_NO_DIGITS))


def _api_key_hint(text: str) -> bool:
    lower = text.lower()
    return any(hint in lower for hint in _API_KEY_HINTS)


HINTS: dict[str, Callable[[str], bool]] = {
    "api_key": _api_key_hint,
    "email": lambda text: "@" in text,
    "card": lambda text: _digits(text) >= 13,
    "phone": lambda text: _digits(text) >= 8,
}
"""Cheap tests a text must pass before a built-in pattern is searched for in it (each is
implied by a match): the patterns' lookbehinds make a search cost ~0.05-0.3 us per character,
while almost every text holds nothing to redact."""


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    regex: re.Pattern[str]
    check: Callable[[str], bool] | None = None
    hint: Callable[[str], bool] | None = None


class Redactor:
    """Replaces what the configured rules match with ``[REDACTED:<name>]``; build it once."""

    def __init__(
        self,
        redactors: tuple[str, ...] | list[str] = ("api_key",),
        patterns: dict[str, str] | None = None,
        hook: Hook | None = None,
        hook_name: str = "hook",
    ) -> None:
        rules = [
            _Rule(name, re.compile(BUILTIN_REDACTORS[name][0]), BUILTIN_REDACTORS[name][1],
                  HINTS[name])
            for name in BUILTIN_REDACTORS
            if name in redactors
        ]
        rules += [_Rule(name, re.compile(regex)) for name, regex in (patterns or {}).items()]
        self._rules = tuple(rules)
        self._hook = hook
        self._hook_name = hook_name

    @classmethod
    def from_config(cls, config: Any) -> Redactor:
        """From a :class:`~shadowroute.config.RedactionConfig` (``config.redaction``)."""
        hook = import_hook(config.hook) if config.hook else None
        return cls(
            tuple(config.redactors),
            {p.name: p.regex for p in config.patterns},
            hook,
            hook_name=config.hook or "hook",
        )

    @property
    def active(self) -> bool:
        return bool(self._rules) or self._hook is not None

    def redact_text(self, text: str) -> tuple[str, Counter[str]]:
        """``text`` with every match replaced, and the replacements made per rule name.
        Returns ``text`` itself when nothing matched. A hook's exception propagates."""
        counts: Counter[str] = Counter()
        return self._text(text, counts), counts

    def _text(self, text: str, counts: Counter[str]) -> str:
        for rule in self._rules:
            if rule.hint is not None and not rule.hint(text):
                continue
            if rule.regex.search(text) is None:
                continue
            replaced = 0

            def sub(match: re.Match[str], rule: _Rule = rule) -> str:
                nonlocal replaced
                whole = match.group(0)
                if rule.check is not None and not rule.check(whole):
                    return whole
                replaced += 1
                token = f"[REDACTED:{rule.name}]"
                groups = match.groupdict()
                for key in ("bearer", "value"):  # only the secret, not what names it
                    if groups.get(key):
                        start = match.start(key) - match.start()
                        return whole[:start] + token + whole[match.end(key) - match.start():]
                return token

            text = rule.regex.sub(sub, text)
            if replaced:
                counts[rule.name] += replaced
        if self._hook is not None:
            try:
                changed = self._hook(text)
            except Exception as exc:
                raise ShadowrouteError(
                    f"redaction hook {self._hook_name} raised {type(exc).__name__}; the capture "
                    "was dropped (nothing unredacted is stored): fix the hook"
                ) from exc
            if not isinstance(changed, str):
                raise ShadowrouteError(
                    f"redaction hook {self._hook_name} returned {type(changed).__name__}, not "
                    "str; the capture was dropped (nothing unredacted is stored): fix the hook"
                )
            if changed != text:
                counts["hook"] += 1
                text = changed
        return text

    def _value(self, value: Any, counts: Counter[str]) -> Any:
        """``value`` with every string inside redacted (keys kept); copies a container only
        when something inside it changed, so a caller's objects are never modified."""
        if isinstance(value, str):
            return self._text(value, counts)
        if isinstance(value, dict):
            out: dict[Any, Any] | None = None
            for key, item in value.items():
                new = self._value(item, counts)
                if new is not item:
                    if out is None:
                        out = dict(value)
                    out[key] = new
            return value if out is None else out
        if isinstance(value, list | tuple):
            items: list[Any] | None = None
            for i, item in enumerate(value):
                new = self._value(item, counts)
                if new is not item:
                    if items is None:
                        items = list(value)
                    items[i] = new
            if items is None:
                return value
            return tuple(items) if isinstance(value, tuple) else items
        return value

    def redact_output(self, output: CandidateOutputRecord) -> Counter[str]:
        """Redact a candidate output's ``output`` and ``error`` in place; the counts."""
        counts: Counter[str] = Counter()
        if self.active:
            if output.output:
                output.output = self._text(output.output, counts)
            if output.error:
                output.error = self._text(output.error, counts)
        return counts

    def redact_exchange(self, record: ExchangeRecord) -> Counter[str]:
        """Redact ``record`` in place (request, metadata values, primary output, candidate
        outputs and errors); the replacements made per rule name. Raises
        :class:`~shadowroute.errors.ShadowrouteError` when a hook fails: store nothing then."""
        counts: Counter[str] = Counter()
        if not self.active:
            return counts
        record.request = self._value(record.request, counts)
        record.metadata = self._value(record.metadata, counts)
        if record.primary_output:
            record.primary_output = self._text(record.primary_output, counts)
        for output in record.outputs:
            counts.update(self.redact_output(output))
        return counts


# --------------------------------------------------------------------------- redact or drop


class RedactionTally(Protocol):
    """Where :func:`redact_or_drop` counts: ``Stats``, ``ReplayReport`` and ``ImportReport``."""

    redactions: Counter[str]
    """Replacements made, by rule name."""
    redaction_errors: int
    """Records dropped because their redaction failed."""


def redact_or_drop(
    redactor: Redactor,
    record: ExchangeRecord | CandidateOutputRecord,
    tally: RedactionTally,
    report: Callable[[BaseException], None],
) -> bool:
    """Redact ``record`` (an exchange or a candidate output) in place for storage; whether to
    keep it. Its replacements are added to ``tally.redactions``. When redaction fails (a hook
    raised) the record must not be stored: it is counted in ``tally.redaction_errors``, the
    first failure of the tally is passed to ``report`` (a log line, an error hook; later ones
    only count), and ``False`` is returned. Never raises what the redactor raised."""
    try:
        if isinstance(record, CandidateOutputRecord):
            counts = redactor.redact_output(record)
        else:
            counts = redactor.redact_exchange(record)
    except Exception as exc:
        tally.redaction_errors += 1
        if tally.redaction_errors == 1:
            report(exc)
        return False
    if counts:
        tally.redactions.update(counts)
    return True

