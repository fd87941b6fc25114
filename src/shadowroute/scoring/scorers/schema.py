"""``schema``: the candidate must be valid JSON satisfying the task's JSON Schema (a hard scorer)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import jsonschema_specifications
import referencing.exceptions
import referencing.jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from .base import (
    _MAX_ERRORS,
    _SETTINGS_VERSION,
    ScoreResult,
    _check_threshold,
    _format_path,
    _load_json,
    _truncate,
)

__all__ = ["SchemaScorer"]


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

    def errors(self, text: str) -> tuple[str, ...]:
        """Why ``text`` is not valid JSON for the schema (empty: it is); a check that needs no
        primary (:mod:`shadowroute.scoring.checks`)."""
        return self._check(text)[1]

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

