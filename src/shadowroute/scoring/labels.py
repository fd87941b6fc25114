"""Labels a team already has, for ``shadowroute calibrate``: a JSONL file, or recorded outcomes.

A labels file has one JSON object per line (blank lines skipped), naming one stored candidate
output and saying whether its answer is acceptable::

    {"output_id": "5f0c...", "label": true}
    {"exchange_id": "9a1e...", "model": "mini", "label": false, "note": "wrong refund amount"}

``label`` is ``true`` / ``false`` (``1`` / ``0`` too); other keys are ignored. :func:`read_labels`
checks the file's shape before the database is opened; any bad line is a :class:`ConfigError`
naming the file and the line, and so is a second line giving the same output the other label.

Without a file, labels come from the ``metadata.outcomes`` an import or an offline evaluation
recorded on the exchanges (see :mod:`.scorers.correctness`): :func:`outcome_label` reads the
candidate's answer as acceptable when it is correct, or when the primary is wrong too; with
grades, when the candidate's grade is at least the primary's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .scorers.correctness import OUTCOMES_KEY, read_outcome

__all__ = ["LabelLine", "outcome_label", "read_labels"]

_SHAPE = '{"output_id": "...", "label": true} or {"exchange_id": "...", "model": "...", "label": false}'


@dataclass(frozen=True, slots=True)
class LabelLine:
    """One line of a labels file: the output it names and its label."""

    line: int
    label: bool
    output_id: str | None = None
    exchange_id: str | None = None
    model: str | None = None

    def names(self) -> str:
        """The output as the line names it, for messages."""
        if self.output_id is not None:
            return f"output {self.output_id!r}"
        return f"the {self.model!r} output of exchange {self.exchange_id!r}"


def _label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"label must be true or false, got {json.dumps(value)}")


def _text(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string, got {json.dumps(value)}")
    return value.strip()


def _parse(number: int, text: str) -> LabelLine:
    try:
        row = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise ValueError(f"expected an object like {_SHAPE}")
    if "label" not in row:
        raise ValueError("no label (true or false)")
    label = _label(row["label"])
    output_id, exchange_id, model = (_text(row, k) for k in ("output_id", "exchange_id", "model"))
    if output_id is not None:
        if exchange_id is not None or model is not None:
            raise ValueError("give output_id, or exchange_id and model, not both")
        return LabelLine(number, label, output_id=output_id)
    if exchange_id is None or model is None:
        raise ValueError(f"names no output: expected {_SHAPE}")
    return LabelLine(number, label, exchange_id=exchange_id, model=model)


def read_labels(path: Path) -> list[LabelLine]:
    """Every label of the file at ``path``, in file order (see the module docstring).

    Raises :class:`ConfigError` ("cannot read the labels FILE: line N: ...") for a file that
    cannot be read, a bad line, or a file without a single label."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the labels {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read the labels {path}: not UTF-8 text ({exc.reason})") from exc
    lines: list[LabelLine] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            lines.append(_parse(number, raw))
        except ValueError as exc:
            raise ConfigError(f"cannot read the labels {path}: line {number}: {exc}") from exc
    if not lines:
        raise ConfigError(f"no labels found in {path}: expected one JSON object per line, "
                          f"{_SHAPE}")
    return lines


def _outcome(outcomes: Mapping[str, Any], names: tuple[str | None, ...]) -> Any:
    for name in names:
        if name is not None and name in outcomes:
            return read_outcome(outcomes[name])
    return None


def outcome_label(
    metadata: Mapping[str, Any] | None, model: str, primary_model: str,
    aliases: Mapping[str, str] | None = None,
) -> bool | None:
    """Whether ``model``'s answer is acceptable by the exchange's recorded outcomes: correct,
    or the primary wrong too; with grades, at least the primary's grade. ``None`` when the
    outcomes cannot say (the candidate's missing or unreadable; a wrong or graded candidate
    without a comparable primary outcome). ``aliases`` maps a ``[models]`` key to the upstream
    id its outcome may be recorded under."""
    outcomes = metadata.get(OUTCOMES_KEY) if isinstance(metadata, Mapping) else None
    if not isinstance(outcomes, Mapping):
        return None
    aliases = aliases or {}
    mine = _outcome(outcomes, (model, aliases.get(model)))
    if mine is None:
        return None
    if mine == ("correct", True):
        return True
    primary = _outcome(outcomes, (primary_model, aliases.get(primary_model)))
    if primary is None or primary[0] != mine[0]:
        return None
    if mine[0] == "correct":
        return not primary[1]
    return float(mine[1]) >= float(primary[1])
