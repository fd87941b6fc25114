"""A per-request rule: which requests of a task type the candidate serves (PARTIAL).

A rule is a disjunction of conjunctions of thresholds on request features
(:mod:`.features`): the leaves of a small decision tree that route to the candidate, read as
words a human can check ("chars <= 412 and has_code = no"). A feature a request lacks is 0
(an absent ``meta.<field>=value`` is "not equal").

    rule = PartialRule.from_dict({"any_of": [[["chars", "<=", 412.0], ["has_code", "<=", 0.5]]],
                                  "fields": []})
    rule.matches(request_features(request))   # True: the candidate serves it
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Condition", "PartialRule"]

_OPS = ("<=", ">")


@dataclass(frozen=True, slots=True)
class Condition:
    feature: str
    op: str
    """``<=`` or ``>``."""
    value: float

    def holds(self, features: Mapping[str, float]) -> bool:
        x = features.get(self.feature, 0.0)
        return x <= self.value if self.op == "<=" else x > self.value

    def describe(self) -> str:
        yes_no = self.feature.startswith("has_") or "=" in self.feature
        if yes_no and 0.0 < self.value < 1.0:
            word = "no" if self.op == "<=" else "yes"
            return (f"{self.feature[5:]}: {word}" if self.feature.startswith("meta.") and
                    "=" in self.feature else f"{self.feature} = {word}")
        value = f"{self.value:.3g}" if self.feature == "non_ascii" else f"{self.value:,.0f}"
        return f"{self.feature} {self.op} {value}"


@dataclass(frozen=True, slots=True)
class PartialRule:
    any_of: tuple[tuple[Condition, ...], ...]
    """The candidate serves a request when every condition of one of these holds."""
    fields: tuple[str, ...] = ()
    """The metadata fields its features read (``[tasks.X] route_features``)."""

    def matches(self, features: Mapping[str, float]) -> bool:
        return any(all(c.holds(features) for c in conj) for conj in self.any_of)

    def describe(self) -> str:
        if not self.any_of:
            return "no request"
        parts = [" and ".join(c.describe() for c in conj) or "every request"
                 for conj in self.any_of]
        return " or ".join(f"({p})" if len(self.any_of) > 1 else p for p in parts)

    def to_dict(self) -> dict[str, Any]:
        return {"any_of": [[[c.feature, c.op, c.value] for c in conj] for conj in self.any_of],
                "fields": list(self.fields)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartialRule:
        """Read :meth:`to_dict`'s form; :class:`ValueError` says what is wrong."""
        conjunctions = data.get("any_of")
        if not isinstance(conjunctions, Sequence) or isinstance(conjunctions, str):
            raise ValueError("a partial rule needs any_of: a list of lists of conditions")
        out = []
        for conj in conjunctions:
            conditions = []
            for item in conj:
                if (not isinstance(item, Sequence) or len(item) != 3 or item[1] not in _OPS
                        or not isinstance(item[0], str)
                        or not isinstance(item[2], int | float)):
                    raise ValueError(f"a condition is [feature, '<=' or '>', number], not {item!r}")
                conditions.append(Condition(item[0], item[1], float(item[2])))
            out.append(tuple(conditions))
        fields = data.get("fields") or ()
        return cls(tuple(out), tuple(str(f) for f in fields))
