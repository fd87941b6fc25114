"""Scoring: turn stored (primary, candidate) pairs into scores the decision can trust.

    report = await run_scoring(load_config(), ScoreOptions(since=yesterday))

Scorers per task type (``[tasks.X.scorers]``): ``schema`` (JSON Schema, hard), ``exact`` /
``label`` (normalized match), ``similarity`` (rapidfuzz, field by field for JSON) and ``judge``
(an LLM judge, pairwise in both orders, on a budget); ``correctness`` compares recorded
outcomes (right/wrong, grades) from the exchange's metadata instead of the texts. Scores are
stored per (candidate output, scorer, version); the noise floor is the same scoring applied to
``primary@replay`` outputs. Your own scorers plug in as scorer plugins
(:mod:`shadowroute.scoring.plugins`: ``plugin_info``, ``ScorerPlugin``).
"""

from .judge import BudgetExhausted, Judge, JudgeBudget, JudgeUnavailable
from .options import ScoreOptions, ScoreRunReport
from .plan import JudgeSpec, Plans, ScorerSpec, TaskPlan, plan_for
from .plugins import PluginScorer, ScorerPlugin, plugin_info
from .prompt import build_judge_messages, find_injection, parse_verdict
from .runner import run_scoring, score
from .scorers.base import ScoreResult
from .scorers.correctness import CorrectnessScorer, ScoreContext
from .scorers.exact import ExactScorer
from .scorers.schema import SchemaScorer
from .scorers.similarity import SimilarityScorer

__all__ = [
    "BudgetExhausted",
    "CorrectnessScorer",
    "ExactScorer",
    "Judge",
    "JudgeBudget",
    "JudgeSpec",
    "JudgeUnavailable",
    "PluginScorer",
    "SchemaScorer",
    "ScoreContext",
    "ScoreOptions",
    "ScoreResult",
    "ScoreRunReport",
    "ScorerPlugin",
    "ScorerSpec",
    "SimilarityScorer",
    "Plans",
    "TaskPlan",
    "build_judge_messages",
    "find_injection",
    "parse_verdict",
    "plan_for",
    "plugin_info",
    "run_scoring",
    "score",
]
