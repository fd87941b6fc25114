"""The deterministic scorers against the truth, on real model outputs: GPT-4 (primary) and
Mixtral (candidate) answers to the 1,319 GSM8K problems shipped in
``evals/datasets/routellm/gsm8k_responses.csv``, with their recorded correctness.

The truth of a pair is what ``correctness`` says: the candidate passes when it is right, or when
the primary is wrong too (71.0% of the pairs). A scorer used as a proxy for it must not pass the
pairs where the candidate got it wrong and the primary did not.

Measured when these tests were written: ``extract`` (defaults) passes 795 pairs with precision
1.000, recall 0.849, accuracy 0.893 (3 candidates have no answer: "#### Cannot share guns
equally."); ``similarity`` (default ``ratio`` at 0.8) passes 52 pairs, 4 of the 383 wrong ones
(precision 0.923); ``token_set_ratio``, the default before it, passed 1,076, 267 of them wrong.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import pytest

from shadowroute.datasets import project_datasets_dir
from shadowroute.scoring.scorers.extract import ExtractScorer
from shadowroute.scoring.scorers.similarity import SimilarityScorer

PRIMARY = "gpt-4-1106-preview"
CANDIDATE = "mistralai/Mixtral-8x7B-Instruct-v0.1"


@dataclass(frozen=True, slots=True)
class Pair:
    primary: str
    candidate: str
    truth: bool
    """The candidate is right, or the primary is wrong too."""


@pytest.fixture(scope="module")
def pairs() -> list[Pair]:
    datasets = project_datasets_dir()
    if datasets is None:
        pytest.skip("not a checkout: the GSM8K outputs ship in evals/datasets/")
    with (datasets / "routellm" / "gsm8k_responses.csv").open(newline="", encoding="utf-8") as f:
        return [
            Pair(
                row[f"{PRIMARY}_response"],
                row[f"{CANDIDATE}_response"],
                row[CANDIDATE] == "True" or row[PRIMARY] == "False",
            )
            for row in csv.DictReader(f)
        ]


@dataclass(frozen=True, slots=True)
class Confusion:
    passed_right: int
    passed_wrong: int
    failed_right: int
    failed_wrong: int
    not_applicable: int

    @property
    def precision(self) -> float:
        return self.passed_right / (self.passed_right + self.passed_wrong)

    @property
    def recall(self) -> float:
        return self.passed_right / (self.passed_right + self.failed_right)

    @property
    def wrong_passed(self) -> float:
        """The share of the wrong pairs (truth False) that passed."""
        return self.passed_wrong / (self.passed_wrong + self.failed_wrong)


def confusion(scorer: ExtractScorer | SimilarityScorer, pairs: list[Pair]) -> Confusion:
    counts = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    not_applicable = 0
    for pair in pairs:
        passed = scorer.score(pair.primary, pair.candidate).passed
        if passed is None:
            not_applicable += 1
        else:
            counts[(passed, pair.truth)] += 1
    return Confusion(
        counts[(True, True)],
        counts[(True, False)],
        counts[(False, True)],
        counts[(False, False)],
        not_applicable,
    )


def test_the_data(pairs: list[Pair]) -> None:
    assert len(pairs) == 1319
    assert round(sum(p.truth for p in pairs) / len(pairs), 3) == 0.710


def test_extract_defaults_agree_with_the_truth(pairs: list[Pair]) -> None:
    found = confusion(ExtractScorer(), pairs)
    assert found.not_applicable == 0  # every GPT-4 answer ends with a number
    assert found.precision >= 0.97
    assert found.recall >= 0.80
    assert found.wrong_passed <= 0.01


def test_extract_counts_the_candidates_without_an_answer(pairs: list[Pair]) -> None:
    scorer = ExtractScorer()
    missing = [
        r
        for r in (scorer.score(p.primary, p.candidate) for p in pairs)
        if r.details.get("no_answer") == "candidate"
    ]
    assert 0 < len(missing) <= 10
    assert all(r.passed is False and r.details["reason"] for r in missing)


def test_default_similarity_does_not_pass_wrong_answers(pairs: list[Pair]) -> None:
    # Text similarity cannot tell a right chain of reasoning from a wrong one; what it may
    # not do is pass the wrong ones wholesale, as token_set_ratio did.
    default = confusion(SimilarityScorer(), pairs)
    assert default.wrong_passed <= 0.02
    assert default.precision >= 0.9
    before = confusion(SimilarityScorer(method="token_set_ratio"), pairs)
    assert before.wrong_passed > 0.5
