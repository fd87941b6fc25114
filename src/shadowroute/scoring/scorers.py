"""Deterministic scorers: compare a candidate's output with the primary's, without a model.

    Scorer (protocol)
    ├── SchemaScorer      "schema"           valid JSON satisfying a JSON Schema (hard)
    ├── ExactScorer       "exact" / "label"  normalised exact match, optionally within a label set
    └── SimilarityScorer  "similarity"       rapidfuzz text similarity, or field by field for JSON

Every scorer is pure, synchronous and cheap enough to run on every stored pair. ``score`` returns
a :class:`ScoreResult` whose ``passed`` is ``None`` when the scorer does not apply (for instance
there is no primary output to compare with): such pairs go to the "ignored" bucket, never into
"passed". ``settings()`` returns the JSON-serialisable settings that affect results, so stored
scores can be versioned by them. Bad settings raise :class:`ValueError` at construction.

JSON paths in details are written ``$`` + ``.key`` / ``[index]``; a key that is not a plain word
(letters, digits, ``_``, ``-``) is written ``["the key"]`` so two fields never share a path.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import jsonschema_specifications
import referencing.exceptions
import referencing.jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

__all__ = [
    "SIMILARITY_METHODS",
    "ExactScorer",
    "SchemaScorer",
    "ScoreResult",
    "Scorer",
    "SimilarityScorer",
    "normalize_label",
    "parse_json_output",
]

SIMILARITY_METHODS: tuple[str, ...] = (
    "ratio",
    "token_set_ratio",
    "token_sort_ratio",
    "partial_ratio",
    "WRatio",
)

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


def _error_sort_key(error: Any) -> tuple[tuple[tuple[int, int | str], ...], str]:
    path = tuple((0, p) if isinstance(p, int) else (1, str(p)) for p in error.absolute_path)
    return path, error.message


def _check_refs(schema: dict[str, Any], validator_cls: type[Validator]) -> None:
    """Resolve every ``$ref`` now, as jsonschema will, so a typo fails at configuration time."""
    dialect = validator_cls.ID_OF(validator_cls.META_SCHEMA) or ""
    spec = referencing.jsonschema.specification_with(dialect)
    root = spec.create_resource(schema)
    stack = [(root, jsonschema_specifications.REGISTRY.resolver_with_root(root))]
    while stack:
        resource, resolver = stack.pop()
        contents = resource.contents
        ref = contents.get("$ref") if isinstance(contents, dict) else None
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except referencing.exceptions.PointerToNowhere:
                raise ValueError(
                    f"JSON schema $ref {ref!r} points to nothing in the schema"
                ) from None
            except referencing.exceptions.Unresolvable:
                raise ValueError(
                    f"JSON schema $ref {ref!r} cannot be resolved; remote schemas are not "
                    "fetched, so put the referenced schema under $defs and refer to it there"
                ) from None
        stack.extend((sub, resolver.in_subresource(sub)) for sub in resource.subresources())


class SchemaScorer:
    """The candidate must be valid JSON that satisfies a JSON Schema; value 1.0 or 0.0.

    Parsing is strict: ``json.loads`` of the stripped output. Code fences (```` ```json ````),
    prose around the JSON and ``NaN``/``Infinity`` make the output invalid, because a caller
    parsing production output would fail on them too. ``format`` is an annotation only (the
    JSON Schema default), so results do not depend on optional format-checking packages.

    The primary is checked as well (``primary_valid``, ``primary_errors``): a schema the primary
    itself fails points at the configuration, not at the candidate. The candidate's result still
    reflects only the candidate's own validity.
    """

    __slots__ = ("_last_primary", "_schema_sha256", "_threshold", "_validator")
    name = "schema"
    hard = True

    def __init__(self, schema: dict[str, Any], *, threshold: float = 1.0) -> None:
        self._threshold = _check_threshold(threshold)
        if not isinstance(schema, dict):
            raise ValueError(  # noqa: TRY004 (one error type for bad settings)
                f"JSON schema must be an object (dict), got {type(schema).__name__}"
            )
        try:
            canonical = json.dumps(
                schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"JSON schema is not JSON-serialisable: {exc}") from None
        self._schema_sha256 = hashlib.sha256(canonical.encode()).hexdigest()
        # A private copy: later edits of the caller's dict change neither results nor settings.
        own: dict[str, Any] = json.loads(canonical)
        dialect = own.get("$schema")
        if dialect is not None and not isinstance(dialect, str):
            raise ValueError(f"JSON schema $schema must be a string, got {dialect!r}")
        cls: type[Validator] | None = validator_for(own, default=None)  # type: ignore[arg-type]
        if cls is None:
            if dialect is not None:
                raise ValueError(
                    f"JSON schema $schema {dialect!r} is not a known JSON Schema draft"
                )
            cls = validator_for(own)
        try:
            cls.check_schema(own)
        except SchemaError as exc:
            where = _format_path(exc.absolute_path)
            raise ValueError(f"invalid JSON schema at {where}: {_truncate(exc.message)}") from None
        _check_refs(own, cls)
        self._validator: Validator = cls(own)
        self._last_primary: tuple[str, bool, tuple[str, ...]] | None = None

    def settings(self) -> dict[str, Any]:
        return {
            "threshold": self._threshold,
            "schema_sha256": self._schema_sha256,
            "version": _SETTINGS_VERSION,
        }

    def _check(self, text: str) -> tuple[bool, tuple[str, ...]]:
        try:
            instance = _load_json(text)
        except ValueError as exc:
            return False, (_truncate(f"not valid JSON: {exc}"),)
        try:
            errors = list(self._validator.iter_errors(instance))
        except RecursionError:
            return False, ("$: nested too deeply to validate",)
        if not errors:
            return True, ()
        errors.sort(key=_error_sort_key)
        return False, tuple(
            _truncate(f"{_format_path(e.absolute_path)}: {e.message}") for e in errors[:_MAX_ERRORS]
        )

    def _check_primary(self, primary: str) -> tuple[bool, tuple[str, ...]]:
        # The same primary is usually scored against several candidates in a row: remember one.
        last = self._last_primary
        if last is not None and last[0] == primary:
            return last[1], last[2]
        valid, errors = self._check(primary)
        self._last_primary = (primary, valid, errors)
        return valid, errors

    def score(self, primary: str | None, candidate: str) -> ScoreResult:
        valid, errors = self._check(candidate)
        primary_valid: bool | None = None
        primary_errors: tuple[str, ...] = ()
        if primary is not None:
            primary_valid, primary_errors = self._check_primary(primary)
        value = 1.0 if valid else 0.0
        details = {
            "valid": valid,
            "errors": list(errors),
            "primary_valid": primary_valid,
            "primary_errors": list(primary_errors),
        }
        return ScoreResult(value, value >= self._threshold, details)


# --- exact / label -------------------------------------------------------------------------------


class ExactScorer:
    """Normalised exact match of the candidate against the primary (see :func:`normalize_label`).

    With ``labels``, a candidate outside the label set fails (``unknown_label``) even if it equals
    the primary; a primary outside the set is reported (``primary_unknown_label``) but does not
    change the candidate's result. Not applicable when there is no primary output.
    """

    __slots__ = ("_case_sensitive", "_labels", "_threshold", "name")
    hard = False

    def __init__(
        self,
        *,
        name: str = "exact",
        labels: Sequence[str] | None = None,
        case_sensitive: bool = False,
        threshold: float = 1.0,
    ) -> None:
        if name not in ("exact", "label"):
            raise ValueError(f"exact scorer name must be 'exact' or 'label', got {name!r}")
        self.name = name
        self._threshold = _check_threshold(threshold)
        self._case_sensitive = bool(case_sensitive)
        self._labels: frozenset[str] | None = None
        if labels is not None:
            if isinstance(labels, str) or not all(isinstance(x, str) for x in labels):
                raise ValueError(f"labels must be a list of strings, got {labels!r}")
            normalized = frozenset(
                normalize_label(x, case_sensitive=case_sensitive) for x in labels
            )
            if not normalized or "" in normalized:
                raise ValueError("labels must be a non-empty list of non-empty strings")
            self._labels = normalized

    def settings(self) -> dict[str, Any]:
        return {
            "threshold": self._threshold,
            "labels": sorted(self._labels) if self._labels is not None else None,
            "case_sensitive": self._case_sensitive,
            "version": _SETTINGS_VERSION,
        }

    def score(self, primary: str | None, candidate: str) -> ScoreResult:
        if primary is None:
            return _not_applicable()
        p = normalize_label(primary, case_sensitive=self._case_sensitive)
        c = normalize_label(candidate, case_sensitive=self._case_sensitive)
        match = p == c
        value = 1.0 if match else 0.0
        details: dict[str, Any] = {
            "primary": _truncate(p),
            "candidate": _truncate(c),
            "match": match,
        }
        if self._labels is not None:
            details["unknown_label"] = c not in self._labels
            details["primary_unknown_label"] = p not in self._labels
            if details["unknown_label"]:
                value = 0.0
        return ScoreResult(value, value >= self._threshold, details)


# --- similarity ----------------------------------------------------------------------------------

_Fuzz = Callable[..., float]


def _text_similarity(fn: _Fuzz, a: str, b: str) -> float:
    """rapidfuzz score / 100 on ``default_process``-ed text; identical processed text is 1.0.

    (rapidfuzz's token_set_ratio and WRatio give 0 when both processed strings are empty.)
    """
    pa, pb = default_process(a), default_process(b)
    if pa == pb:
        return 1.0
    return fn(pa, pb) / 100.0


def _flatten(value: Any) -> dict[str, Any]:
    """Leaf path -> leaf value, in document order; an empty object or array is a leaf."""
    leaves: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [("$", value)]
    while stack:
        path, node = stack.pop()
        if node and isinstance(node, dict):
            for key in reversed(node):  # pushed in reverse so they pop in document order
                stack.append((path + _key_segment(key), node[key]))
        elif node and isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                stack.append((f"{path}[{i}]", node[i]))
        else:
            leaves[path] = node
    return leaves


def _compare_leaves(fn: _Fuzz, a: Any, b: Any) -> tuple[bool, float]:
    """``(equal, score)`` for two leaf values present on both sides."""
    if type(a) is type(b) and a == b:
        return True, 1.0
    if type(a) in (int, float) and type(b) in (int, float):  # bools are not numbers
        if a == b:
            return True, 1.0
        try:
            close = math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        except OverflowError:  # an integer too large for a float
            close = False
        return False, 1.0 if close else 0.0
    if type(a) is str and type(b) is str:
        return False, _text_similarity(fn, a, b)
    return False, 0.0  # different types (True vs 1: bools are not numbers) or unequal bools


def _detail_value(value: Any) -> Any:
    if isinstance(value, str):
        return _truncate(value)
    if isinstance(value, float) and not math.isfinite(value):  # 1e999 parses to inf
        return repr(value)
    return value


class SimilarityScorer:
    """Fuzzy similarity of candidate and primary with ``rapidfuzz.fuzz.<method>``, in [0, 1].

    Text is compared after ``rapidfuzz.utils.default_process`` (lowercase, non-alphanumerics to
    spaces, trimmed). When both outputs are JSON objects or arrays (see :func:`parse_json_output`)
    they are compared field by field instead: the value is the mean per-leaf score over the union
    of leaf paths (equal values 1.0; strings by the method; numbers 1.0 when ``math.isclose``;
    missing on one side or different types 0.0). ``differing`` lists paths present on both sides
    whose values are not equal; ``missing`` / ``extra`` list paths on one side only.
    """

    __slots__ = ("_fn", "_last_primary", "_method", "_threshold")
    name = "similarity"
    hard = False

    def __init__(self, *, method: str = "token_set_ratio", threshold: float = 0.8) -> None:
        if method not in SIMILARITY_METHODS:
            choices = ", ".join(SIMILARITY_METHODS)
            raise ValueError(f"unknown similarity method {method!r}; choose one of: {choices}")
        self._method = method
        self._fn: _Fuzz = getattr(fuzz, method)
        self._threshold = _check_threshold(threshold)
        self._last_primary: tuple[str, dict[str, Any] | None] | None = None

    def settings(self) -> dict[str, Any]:
        return {"method": self._method, "threshold": self._threshold, "version": _SETTINGS_VERSION}

    def score(self, primary: str | None, candidate: str) -> ScoreResult:
        if primary is None:
            return _not_applicable()
        p_leaves = self._primary_leaves(primary)
        if p_leaves is not None:
            c_ok, c_value = parse_json_output(candidate)
            if c_ok:
                return self._score_json(p_leaves, _flatten(c_value))
        value = round(_text_similarity(self._fn, primary, candidate), 6)
        details = {"mode": "text", "method": self._method}
        return ScoreResult(value, value >= self._threshold, details)

    def _primary_leaves(self, primary: str) -> dict[str, Any] | None:
        """The primary's JSON leaves, or None when it is not a JSON object or array."""
        # The same primary is usually scored against several candidates in a row: remember one.
        last = self._last_primary
        if last is not None and last[0] == primary:
            return last[1]
        ok, value = parse_json_output(primary)
        leaves = _flatten(value) if ok else None
        self._last_primary = (primary, leaves)
        return leaves

    def _score_json(self, p_leaves: dict[str, Any], c_leaves: dict[str, Any]) -> ScoreResult:
        total = 0.0
        matching = 0
        differing: list[dict[str, Any]] = []
        missing: list[str] = []
        for path, p_value in p_leaves.items():
            if path not in c_leaves:
                if len(missing) < _MAX_ITEMS:
                    missing.append(path)
                continue
            c_value = c_leaves[path]
            equal, field_score = _compare_leaves(self._fn, p_value, c_value)
            total += field_score
            if equal:
                matching += 1
            elif len(differing) < _MAX_ITEMS:
                differing.append(
                    {
                        "path": path,
                        "primary": _detail_value(p_value),
                        "candidate": _detail_value(c_value),
                        "score": round(field_score, 6),
                    }
                )
        n_extra = 0
        extra: list[str] = []
        for path in c_leaves:
            if path not in p_leaves:
                n_extra += 1
                if len(extra) < _MAX_ITEMS:
                    extra.append(path)
        fields = len(p_leaves) + n_extra  # never 0: the root is a leaf when it is empty
        value = round(total / fields, 6)
        details = {
            "mode": "json",
            "method": self._method,
            "fields": fields,
            "matching": matching,
            "differing": differing,
            "missing": missing,
            "extra": extra,
        }
        return ScoreResult(value, value >= self._threshold, details)
