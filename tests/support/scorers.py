"""What the deterministic scorers' tests share."""

from __future__ import annotations

from shadowroute.scoring.scorers.base import ScoreResult

ORDER_SCHEMA = {
    "type": "object",
    "required": ["customer", "items"],
    "properties": {
        "customer": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["qty"],
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
            },
        },
    },
}
"""A customer's order: a name and a list of items, each with a quantity."""

NOT_APPLICABLE = ScoreResult(None, None, {"skipped": "no primary output"})
"""What a scorer that compares to the primary returns when there is no primary answer."""
