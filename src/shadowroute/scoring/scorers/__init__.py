"""The deterministic scorers: compare a candidate's output with the primary's, without a model.

    Scorer (protocol)                        base.py
    ├── SchemaScorer      "schema"           schema.py: valid JSON satisfying a JSON Schema (hard)
    ├── ExactScorer       "exact" / "label"  exact.py: normalised exact match, maybe in a label set
    ├── SimilarityScorer  "similarity"       similarity.py: rapidfuzz, or field by field for JSON
    ├── ExtractScorer     "extract"          extract.py: the answers pulled out of both, compared
    └── CorrectnessScorer "correctness"      correctness.py: a recorded outcome (evals)

A new scorer is one module here implementing :class:`Scorer`, a name in ``config.SCORER_NAMES``
and a line in :func:`shadowroute.scoring.plan.plan_for`. A scorer that lives outside
shadowroute is a plugin instead (:mod:`shadowroute.scoring.plugins`).
"""

from .base import Scorer, ScoreResult, normalize_label, parse_json_output
from .correctness import CorrectnessScorer, ScoreContext
from .exact import ExactScorer
from .extract import ExtractScorer
from .schema import SchemaScorer
from .similarity import SIMILARITY_METHODS, SimilarityScorer

__all__ = [
    "SIMILARITY_METHODS",
    "CorrectnessScorer",
    "ExactScorer",
    "ExtractScorer",
    "SchemaScorer",
    "ScoreContext",
    "ScoreResult",
    "Scorer",
    "SimilarityScorer",
    "normalize_label",
    "parse_json_output",
]
