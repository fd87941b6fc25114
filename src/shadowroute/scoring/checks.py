"""Runtime checks: what can be said of a candidate's answer without the primary's.

A cascade serves the candidate's answer and escalates to the primary when a check fails. The
same :class:`Checks` decide the escalations twice: on the stored pairs, for the what-if that
proves a cascade (:mod:`shadowroute.policies.cascade`), and on the request path, where the
:class:`~shadowroute.Router` and the sidecar run it (:mod:`shadowroute.routing`). So the
escalation rate the report promises is the one production sees, check for check.

Checks, by name (the first that fails is the escalation's reason):

* ``error``: the candidate call failed (always on; not a check of an answer);
* ``empty``: no text and no tool call;
* ``truncated``: cut at the token limit (``finish_reason`` ``length``; stored outputs from
  before it was recorded are not truncated for this check);
* ``refusal``: a refusal or "I don't know" (:data:`REFUSAL`, case-insensitive);
* ``schema``: the text is not JSON valid for the task's ``json_schema``;
* ``extract``: the task's ``extract`` settings find no answer in it;
* ``tool_args``: a tool call names no tool of the request, or its arguments are not JSON valid
  for that tool's ``parameters``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema.validators import validator_for

from ..config import Config
from ..formats.chat import parse_answer
from .plan import plan_for
from .scorers.extract import ExtractScorer
from .scorers.schema import SchemaScorer

__all__ = ["CHECKS", "ERROR", "REFUSAL", "Checks"]

ERROR = "error"
CHECKS = ("empty", "truncated", "refusal", "schema", "extract", "tool_args")
"""Every check, in the order they run."""
REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:no|')t|am unable|won't)"
    r"|I (?:can(?:no|')t|am unable to|am not able to|won't) (?:help|assist|answer|provide|do)"
    r"|I (?:do not|don't) know"
    r"|as an AI(?: language model)?,? I)",
    re.IGNORECASE,
)
"""Refusal and "I don't know" markers."""


@dataclass(frozen=True)
class Checks:
    """The checks of one task type's cascade, built for its settings."""

    names: tuple[str, ...]
    schema: SchemaScorer | None = None
    extract: ExtractScorer | None = None

    @classmethod
    def for_task(cls, config: Config, task: str, names: Sequence[str]) -> Checks:
        """``names`` (a subset of :data:`CHECKS`) for ``task``; :class:`ValueError` names a
        check the task cannot run (``schema`` without a ``json_schema``)."""
        unknown = [n for n in names if n not in CHECKS]
        if unknown:
            raise ValueError(f"unknown check {unknown[0]!r} (checks: {', '.join(CHECKS)})")
        schema = extract = None
        if "schema" in names or "extract" in names:
            scorers = {spec.name: spec.scorer for spec in plan_for(config, task).scorers}
            if "schema" in names:
                found = scorers.get("schema")
                if found is None:
                    document = config.schema_for(task)
                    if document is None:
                        raise ValueError(f"the schema check needs [tasks.{task}] json_schema")
                    found = SchemaScorer(document)
                schema = found  # type: ignore[assignment]
            if "extract" in names:
                found = scorers.get("extract")
                extract = found if isinstance(found, ExtractScorer) else ExtractScorer()
        order = tuple(n for n in CHECKS if n in names)
        return cls(order, schema, extract)

    @staticmethod
    def available(config: Config, task: str) -> tuple[str, ...]:
        """The checks ``task`` can run: ``schema`` with a ``json_schema``, ``extract`` when
        it scores with ``extract``, ``tool_args`` when it scores tool calls (any task may)."""
        cfg = config.task(task)
        out = ["empty", "truncated", "refusal"]
        if cfg.json_schema is not None:
            out.append("schema")
        if "extract" in cfg.scorers:
            out.append("extract")
        out.append("tool_args")
        return tuple(out)

    def failed(self, output: str | None, finish_reason: str | None,
               request: Mapping[str, Any] | None = None, *, error: bool = False) -> str | None:
        """The first check ``output`` (as stored: :func:`~shadowroute.formats.chat.parse_answer`
        reads it) fails, :data:`ERROR` for a failed call, ``None`` when it passes them all.
        ``request`` is the canonical chat request (its ``tools``, for ``tool_args``)."""
        if error:
            return ERROR
        answer = parse_answer(output)
        text = answer.content or ""
        for name in self.names:
            if name == "empty" and not text.strip() and not answer.tool_calls:
                return name
            if name == "truncated" and finish_reason == "length":
                return name
            if name == "refusal" and text and REFUSAL.search(text):
                return name
            if name == "schema" and self.schema is not None and (
                    answer.tool_calls or self.schema.errors(text)):
                return name
            if name == "extract" and self.extract is not None and output is not None and \
                    self.extract.missing_answer(output) is not None:
                return name
            if name == "tool_args" and answer.tool_calls and \
                    not _calls_valid(answer.tool_calls, request or {}):
                return name
        return None


def _calls_valid(calls: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> bool:
    """Every call names a tool of ``request`` and its arguments fit the tool's parameters."""
    tools: dict[str, Any] = {}
    for tool in request.get("tools") or ():
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            tools[function["name"]] = function.get("parameters") or {"type": "object"}
    for call in calls:
        if call.get("name") not in tools:
            return False
        arguments = call.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                return False
        schema = tools[call["name"]]
        try:
            validator = validator_for(schema)(schema)
            if next(validator.iter_errors(arguments), None) is not None:
                return False
        except Exception:  # an invalid schema in the request: the call cannot be vouched for
            return False
    return True
