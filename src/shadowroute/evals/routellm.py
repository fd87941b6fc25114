"""The RouteLLM eval: GPT-4 Turbo as the primary, Mixtral 8x7B as the cheap candidate.

Public data from the RouteLLM project (lm-sys, Apache-2.0), read from the data folder unchanged
(``question.jsonl``, ``judgements.jsonl``, ``gsm8k_responses.csv``) and turned into exchanges
with pre-recorded candidate outputs, so the normal scoring and report run on them:

* MT-Bench: one exchange per (question, turn), 80 x 2. Task type = the question's category;
  request = the chat so far (turn 2: the first user message, GPT-4's first answer, the second
  user message); primary output = GPT-4's answer and candidate output = Mixtral's, both taken
  from the GPT-4 judge prompts that embed them; outcomes = both models' GPT-4 grades (1-10).
* GSM8K: one exchange per problem, 1,319, task type ``math``; outcomes = whether each model's
  final answer was right.

Outcomes go to ``metadata["outcomes"]`` under the stored model names (the primary's
``primary_model`` and the candidate's ``[models]`` key), for the ``correctness`` scorer. Token
counts are not in the data: tokens and costs are left unknown (``None``), never guessed.
Exchange and output ids are derived from the data, so loading twice stores nothing twice.

One approximation: MT-Bench's Mixtral turn-2 answer was generated after Mixtral's own turn-1
answer, while the stored request shows GPT-4's (the primary's) conversation; Mixtral's own
first answer is kept in the turn-2 exchange's metadata (``candidate_turn1``).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..records import CandidateOutputRecord, ExchangeRecord
from ..scoring.scorers.correctness import OUTCOMES_KEY
from ..store import Store
from ..store.queries.imports import adopt_stored_times

__all__ = [
    "CANDIDATE",
    "CANDIDATE_UPSTREAM",
    "DATA_FILES",
    "PRIMARY",
    "exchanges",
    "gsm8k",
    "load",
]

PRIMARY = "gpt-4-1106-preview"
"""The primary model, as named in the data (and stored as ``primary_model``)."""
CANDIDATE_UPSTREAM = "mistralai/Mixtral-8x7B-Instruct-v0.1"
"""The candidate as named in the data."""
CANDIDATE = "mixtral"
"""The candidate's ``[models]`` key in ``evals/routellm/shadowroute.toml``."""
DATA_FILES = ("question.jsonl", "judgements.jsonl", "gsm8k_responses.csv")

_ANSWER = ("[The Start of Assistant's Answer]\n", "\n[The End of Assistant's Answer]")
_CONVERSATION = (
    "<|The Start of Assistant A's Conversation with User|>",
    "<|The End of Assistant A's Conversation with User|>",
)
_USER, _ASSISTANT = "\n\n### User:\n", "\n\n### Assistant A:\n"
_BATCH = 500


@dataclass(frozen=True, slots=True)
class _Judged:
    """One model's answer to one turn of an MT-Bench question, with its GPT-4 grade."""

    answer: str
    first_answer: str | None
    """Turn 2: the model's own turn-1 answer, as shown to the judge."""
    grade: float
    judge: list[str]


def _id(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:32]


def _problem(path: Path, message: str) -> ConfigError:
    return ConfigError(f"{path.name}: {message} (is this the RouteLLM data, unchanged?)",
                       path=str(path))


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError as exc:
                        raise _problem(path, f"line {number} is not JSON: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", key="--data") from exc


def _between(text: str, start: str, end: str) -> str | None:
    if text.count(start) != 1 or text.count(end) != 1:
        return None
    i, j = text.index(start) + len(start), text.index(end)
    return text[i:j] if i <= j else None


def _extract(row: dict[str, Any], turns: list[str], path: Path) -> tuple[str, str | None]:
    """(the answer to this turn, the turn-1 answer when this is turn 2) from the judge prompt."""
    prompt = row["user_prompt"]
    where = f"question {row['question_id']}, {row['model']}, turn {row['turn']}"
    if row["turn"] == 1:
        answer = _between(prompt, *_ANSWER)
        if answer is None:
            raise _problem(path, f"{where}: no single answer block in the judge prompt")
        return answer.strip(), None
    conversation = _between(prompt, *_CONVERSATION)
    first, second = _USER + turns[0] + _ASSISTANT, _USER + turns[1] + _ASSISTANT
    if (conversation is None or not conversation.startswith(first)
            or conversation.count(second) != 1):
        raise _problem(path, f"{where}: the conversation does not hold the question's two turns")
    split = conversation.index(second)
    return conversation[split + len(second):].strip(), conversation[len(first):split].strip()


def _mt_bench(data: Path, candidate: str) -> Iterator[ExchangeRecord]:
    questions = {q["question_id"]: q for q in _jsonl(data / "question.jsonl")}
    path = data / "judgements.jsonl"
    judged: dict[tuple[int, int, str], _Judged] = {}
    for row in _jsonl(path):
        question = questions.get(row["question_id"])
        if question is None:
            raise _problem(path, f"question {row['question_id']} is not in question.jsonl")
        answer, first = _extract(row, question["turns"], path)
        key = (row["question_id"], row["turn"], row["model"])
        if key in judged:
            raise _problem(path, f"two grades for question {key[0]}, turn {key[1]}, {key[2]}")
        judged[key] = _Judged(answer, first, float(row["score"]), list(row["judge"]))
    for qid, question in sorted(questions.items()):
        for turn in (1, 2):
            gpt4 = judged.get((qid, turn, PRIMARY))
            mixtral = judged.get((qid, turn, CANDIDATE_UPSTREAM))
            if gpt4 is None or mixtral is None:
                raise _problem(path, f"question {qid}, turn {turn}: a model's grade is missing")
            messages = [{"role": "user", "content": question["turns"][0]}]
            if turn == 2:
                messages += [{"role": "assistant", "content": gpt4.first_answer},
                             {"role": "user", "content": question["turns"][1]}]
            metadata: dict[str, Any] = {
                "source": "routellm/mt-bench", "question_id": qid, "turn": turn,
                "judge": gpt4.judge,
                OUTCOMES_KEY: {PRIMARY: {"grade": gpt4.grade}, candidate: {"grade": mixtral.grade}},
            }
            if turn == 2:
                metadata["candidate_turn1"] = mixtral.first_answer
            yield _exchange(("mt-bench", qid, turn), question["category"], messages,
                            gpt4.answer, candidate, mixtral.answer, metadata)


def _flag(value: str, path: Path, row: int, column: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _problem(path, f"row {row}: {column} is {value!r}, not a boolean")


def _gsm8k(data: Path, candidate: str) -> Iterator[ExchangeRecord]:
    path = data / "gsm8k_responses.csv"
    columns = ("prompt", PRIMARY, CANDIDATE_UPSTREAM, f"{PRIMARY}_response",
               f"{CANDIDATE_UPSTREAM}_response")
    try:
        with path.open(encoding="utf-8", newline="") as file:
            reader = csv.DictReader(file)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise _problem(path, f"no column {missing[0]!r}")
            rows = list(reader)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", key="--data") from exc
    for number, row in enumerate(rows, 2):  # row 1 is the header
        prompt = row["prompt"]
        outcomes = {
            PRIMARY: {"correct": _flag(row[PRIMARY], path, number, PRIMARY)},
            candidate: {
                "correct": _flag(row[CANDIDATE_UPSTREAM], path, number, CANDIDATE_UPSTREAM)
            },
        }
        metadata = {"source": "routellm/gsm8k", "row": number, OUTCOMES_KEY: outcomes}
        yield _exchange(("gsm8k", prompt), "math", [{"role": "user", "content": prompt}],
                        row[f"{PRIMARY}_response"], candidate,
                        row[f"{CANDIDATE_UPSTREAM}_response"], metadata)


def _exchange(
    key: tuple[object, ...], task: str, messages: list[dict[str, Any]], primary_output: str,
    candidate: str, candidate_output: str, metadata: dict[str, Any],
) -> ExchangeRecord:
    exchange_id = _id("routellm", *key)
    return ExchangeRecord(
        task_type=task,
        primary_model=PRIMARY,
        request={"model": PRIMARY, "messages": messages},
        primary_output=primary_output,
        metadata=metadata,
        outputs=[CandidateOutputRecord(exchange_id, candidate, output=candidate_output,
                                       id=_id(exchange_id, candidate))],
        id=exchange_id,
    )


def gsm8k(data: Path, *, candidate: str = CANDIDATE) -> Iterator[ExchangeRecord]:
    """The 1,319 GSM8K exchanges alone, read from ``data/gsm8k_responses.csv`` (task ``math``,
    ``metadata["outcomes"]`` = whether each model was right). Bad data raises
    :class:`ConfigError` naming the file."""
    return _gsm8k(data, candidate)


def exchanges(data: Path, *, candidate: str = CANDIDATE) -> Iterator[ExchangeRecord]:
    """Every exchange of the eval (MT-Bench first, then GSM8K), read from the folder ``data``
    that holds :data:`DATA_FILES`. Bad data raises :class:`ConfigError` naming the file."""
    yield from _mt_bench(data, candidate)
    yield from _gsm8k(data, candidate)


async def load(store: Store, data: Path, *, candidate: str = CANDIDATE) -> dict[str, int]:
    """Write the eval's exchanges to ``store`` (already stored ones are skipped); returns how
    many were read per source: ``{"mt-bench": 160, "gsm8k": 1319}``."""
    counts = {"mt-bench": 0, "gsm8k": 0}
    batch: list[ExchangeRecord] = []
    for record in exchanges(data, candidate=candidate):
        counts[record.metadata["source"].split("/")[1]] += 1
        batch.append(record)
        if len(batch) >= _BATCH:
            await adopt_stored_times(store, batch)
            await store.write(batch)
            batch = []
    await adopt_stored_times(store, batch)
    await store.write(batch)
    return counts
