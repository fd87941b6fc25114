"""Candidate answers carried by an import line: ``"candidates": {"MODEL": RESPONSE, ...}``.

Answers made offline (a batch job, a notebook, another tool's logs) become candidate outputs
of the line's exchange, so ``shadowroute score`` and ``shadowroute report`` treat them exactly
like mirrored ones; no candidate is called.

* **MODEL** is the name the output is stored, scored, reported and promoted under: normally a
  ``[models]`` key. ``primary@replay`` is a second answer of the exchange's own primary (its
  noise floor, as ``shadowroute replay`` stores it). The primary's own name is refused: a
  second answer of the primary belongs under ``primary@replay``.
* **RESPONSE** is an OpenAI chat completion, an Anthropic Messages response, an OpenAI
  Responses API response (both translated to the canonical chat completion; tool calls stay
  calls) or the answer's plain text.
* **Tokens** come from the response's ``usage``; the **cost** from the prices of the model as
  declared under ``[models]`` (found by key or by the upstream id it sends; the primary's
  model for ``primary@replay``). A response without usage (plain text, or no ``usage``
  object) has unknown tokens and cost: ``None``, never 0. A model not declared under
  ``[models]`` is stored all the same, without a cost (the report prices candidates by what
  ``[models]`` says, and ``promote`` needs a ``[models]`` key): the import summary names it.
* An output's **id** is a digest of the exchange's id and MODEL, and the exchange's id leaves
  the candidates out (:func:`.lines.exchange_id`): importing again stores nothing twice, and
  a stored exchange that gains a candidate in a later import gets just that output.
* A **bad entry** (not an object of name -> response, an empty name, an error response,
  something that is none of the four shapes, a token count that is not one) is a
  :class:`~.lines.LineError` naming it (``candidates.mixtral: ...``): the whole line is
  reported bad and nothing of it is stored, as for any bad line.

The outputs are created with the exchange's ``created_at`` (the time of the logged call).
``[redaction]`` applies to them with the rest of the exchange, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from ..config import Config
from ..formats.anthropic import anthropic_response_to_openai
from ..formats.chat import completion_text, completion_usage
from ..formats.responses import responses_response_to_openai
from ..records import NOISE_FLOOR_MODEL, CandidateOutputRecord
from .lines import (
    CANDIDATES_KEY,
    AnthropicResponse,
    LineError,
    OpenAIResponse,
    error_text,
    has_usage,
    json_type,
    validate,
)

__all__ = ["candidate_outputs", "declared", "output_id"]

_PLAIN = re.compile(r"[\w@.:/-]+")


def output_id(exchange_id: str, model: str) -> str:
    """The id of ``model``'s imported output for the exchange ``exchange_id`` (32 hex)."""
    key = json.dumps([exchange_id, model], ensure_ascii=False)
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def declared(config: Config, model: str, primary_model: str) -> bool:
    """``model`` (as stored) has prices under ``[models]``: by key or upstream id, or, for
    ``primary@replay``, the exchange's primary has."""
    name = primary_model if model == NOISE_FLOOR_MODEL else model
    return config.model_named(name) is not None


def _where(model: str) -> str:
    """``candidates.mixtral``; a name that is not a plain word in JSON quotes."""
    if _PLAIN.fullmatch(model):
        return f"{CANDIDATES_KEY}.{model}"
    return f"{CANDIDATES_KEY}[{json.dumps(model, ensure_ascii=False)}]"


def _canonical(value: Any, where: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the response as a canonical chat completion, or ``None`` for plain text; its text)."""
    if isinstance(value, str):
        return None, value
    if not isinstance(value, dict):
        raise LineError(f"{where}: expected a response object or the answer's text, got "
                        f"{json_type(value)}")
    if value.get("type") == "error" or ("error" in value and "choices" not in value
                                        and value.get("error") is not None):
        raise LineError(f"{where} is an error response: {error_text(value.get('error'))}")
    try:
        if value.get("type") == "message":
            validate(AnthropicResponse, value, where)
            response = anthropic_response_to_openai(value)
        elif value.get("object") == "response" or ("output" in value and "choices" not in value):
            response = responses_response_to_openai(value)
        else:
            validate(OpenAIResponse, value, where)
            response = value
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise LineError(f"{where}: {exc}") from None
    return response, completion_text(response)


def _tokens(original: Any, response: dict[str, Any] | None,
            where: str) -> tuple[int | None, int | None]:
    """(input, output) tokens; ``None`` when the response reports no usage."""
    if response is None or not has_usage(original):
        return None, None
    try:
        tokens = completion_usage(response)
    except ValueError as exc:
        raise LineError(f"{where}: {exc}") from None
    for count in tokens:
        if count is not None and count < 0:
            raise LineError(f"{where}: usage holds a negative token count ({count})")
    return tokens


def candidate_outputs(
    config: Config,
    candidates: Any,
    *,
    exchange_id: str,
    primary_model: str,
    created_at: datetime,
) -> list[CandidateOutputRecord]:
    """The candidate outputs of a line's ``candidates`` (``None``: none), in the line's order.
    Raises :class:`~.lines.LineError` naming the first bad entry (module doc)."""
    if candidates is None:
        return []
    if not isinstance(candidates, dict):
        raise LineError(f"{CANDIDATES_KEY}: expected an object of model name -> response, got "
                        f"{json_type(candidates)}")
    outputs = []
    for model, value in candidates.items():
        if not model.strip():
            raise LineError(f"{CANDIDATES_KEY}: a model name is empty")
        where = _where(model)
        if model == primary_model:
            raise LineError(f"{where}: {model} is the primary of this exchange; a second answer "
                            f"of the primary goes under {NOISE_FLOOR_MODEL!r} (its noise floor)")
        response, text = _canonical(value, where)
        input_tokens, output_tokens = _tokens(value, response, where)
        cost = None
        priced = config.model_named(primary_model if model == NOISE_FLOOR_MODEL else model)
        if priced is not None and input_tokens is not None and output_tokens is not None:
            cost = priced.cost(input_tokens, output_tokens)
        outputs.append(CandidateOutputRecord(
            exchange_id, model, output=text, input_tokens=input_tokens,
            output_tokens=output_tokens, cost_usd=cost, id=output_id(exchange_id, model),
            created_at=created_at,
        ))
    return outputs
