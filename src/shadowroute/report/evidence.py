"""What the report's decisions rest on: cumulative counts turned into :class:`Evidence`.

The report's ``--since`` window only changes what is *shown* (examples, scorer tables, costs,
latency); every verdict reads all the evidence gathered since its candidate started, pruned
exchanges included (:mod:`shadowroute.store.queries.evidence`), because the decision's
guarantee holds for growing evidence, not for a window that slides. Each decision runs at
``alpha / K``, K the number of task type x candidate decisions in the report, so that no
report ever shows a wrong PROMOTE with more than ``alpha`` chance, over all its decisions and
every nightly run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from ..decision import Evidence
from ..records import NOISE_FLOOR_MODEL
from ..store.queries.evidence import TASK_ROW, Counts

__all__ = ["ZERO", "candidate_evidence", "drift_nights", "family_size", "noise_of"]

ZERO: dict[str, int] = {}


def family_size(models_by_task: Mapping[str, list[str]]) -> int:
    """K: the decisions the report makes (task types x candidates, noise-floor replays not
    counted), at least 1."""
    return max(1, sum(len(models) for models in models_by_task.values()))


def noise_of(evidence: Counts, task: str) -> tuple[int, int, int]:
    """(replays counted, passed, flipped judge verdicts among the passes) of a task type."""
    c = evidence.get((task, NOISE_FLOOR_MODEL), ZERO)
    return c.get("counted", 0), c.get("passed", 0), c.get("flipped_passed", 0)


def candidate_evidence(
    evidence: Counts, task: str, model: str, *, samples_per_day: float | None,
    noise_per_day: float | None,
) -> Evidence:
    """The decision's evidence for ``model`` on ``task`` from the cumulative counts."""
    c = evidence.get((task, model), ZERO)
    noise_n, noise_passed, noise_flipped = noise_of(evidence, task)
    schema = evidence.get((task, TASK_ROW), ZERO)
    pairs = c.get("pairs", 0)
    return Evidence(
        n=c.get("counted", 0), passed=c.get("passed", 0),
        noise_n=noise_n, noise_passed=noise_passed, noise_flipped_passed=noise_flipped,
        primary_checked=schema.get("schema_checked", 0),
        primary_invalid=schema.get("schema_invalid", 0),
        samples_per_day=samples_per_day, noise_per_day=noise_per_day,
        unscored=c.get("complete", 0) - c.get("counted", 0),
        judged=c.get("judged", 0), flipped=c.get("flipped", 0),
        flipped_passed=c.get("flipped_passed", 0),
        pairs=pairs or None, pairs_both_failed=c.get("pairs_both_failed", 0),
        pairs_candidate_failed=c.get("pairs_candidate_failed", 0),
        pairs_replay_failed=c.get("pairs_replay_failed", 0),
    )


def drift_nights(counts: Mapping[date, tuple[int, int]], since: datetime,
                 today: date | None = None) -> list[tuple[int, int]]:
    """(counted, passed) for every UTC day from the promotion's to today, oldest first, a day
    without pairs as (0, 0): the drift detector's input."""
    start = since.astimezone(UTC).date() if since.tzinfo else since.date()
    end = today or datetime.now(UTC).date()
    days = max((end - start).days + 1, 1)
    return [counts.get(start + timedelta(days=i), (0, 0)) for i in range(days)]
