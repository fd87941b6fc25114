"""A learned per-request rule (PARTIAL): which requests of a task type the candidate can serve.

Some task types are too hard for a candidate as a whole and easy for it on a large, readable
part of the traffic (short requests, no code, ...). :func:`learn_partial` looks for that part
on the stored pairs and proves it, in two steps that never see the same pairs:

1. **Learn** on the older ``train_share`` of the pairs (time order: the rule is checked on the
   traffic that came after it, as it would serve). A small decision tree (depth <= 3, leaves
   of at least ``max(20, 5%)`` of the training pairs, a fixed seed) on
   :func:`~shadowroute.routing.features.request_features` predicts "the candidate passes".
   A tree, not a stronger learner, because its leaves read as words a person can check and the
   router can apply with no model ("chars <= 412 and has_code = no"). The leaves are ranked by
   training pass rate and the largest prefix whose pooled one-sided Clopper-Pearson bound (at
   ``confidence``) still reaches ``required_quality`` is routed: the most traffic the bar
   plausibly allows. The prefix stops before a leaf whose own upper bound is below the bar:
   a large easy pool has slack enough to absorb a clearly bad group (a 60% leaf next to a
   99% pool), and such a rule sits at the bar where the held-out proof fails. Sibling leaves
   that are both routed merge into their parent, and repeated thresholds on one feature keep
   only the tightest, so the rule is as short as the tree allows. This step only proposes; its bound is not the evidence.
2. **Prove** on the newer pairs, with the rule fixed: the routed held-out pairs are counted
   exactly as the decision counts a task (:func:`~shadowroute.decision.core.evaluate`: unscored
   outputs fail quality when ``Policy.unscored_fail``; flipped judge verdicts are already
   failures in ``StoredPair.ok``) and need a PROMOTE on both criteria, quality and
   non-inferiority against the primary's noise floor, at ``level = (1 - confidence) /
   family_size``. The lower bound shown is the inversion of that same quality test (the figure
   the report shows for a PROMOTE), so the words and the verdict cannot disagree.

Validity: the held-out pairs are independent of the rule learned before them (requests are
assumed to arrive as exchangeable draws within the window), so a rule whose routed traffic
truly passes below the bar is called PARTIAL with probability at most ``level`` in one run,
however the tree was fitted (``tests/policies/test_partial.py`` measures it). What this does
*not* cover: a rule re-learned every night is a new hypothesis each night, so the
always-valid tests' "any number of looks" holds for one fixed rule, not across re-learned
ones; once applied, the route is monitored like a promotion. Partial routes are always proven
with the always-valid tests, whatever ``[decision] sequential`` says.

Money: served cost per 1k requests is the candidate's mean known cost on the routed share
plus the primary's mean known cost on the requests it keeps (the hard ones, often the dear
ones), against the primary's mean on all held-out traffic; an unknown cost stays ``None``,
never zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from ..decision.bounds import clopper_pearson_lower, clopper_pearson_upper
from ..decision.core import PROMOTE, Counts, Priors, evaluate
from ..decision.policy import Policy
from ..decision.sequences import rate_upper
from ..routing.features import request_features
from ..routing.rules import Condition, PartialRule
from .money import mean_known, monthly_saving

if TYPE_CHECKING:
    from ..store.queries.policies import StoredPair

__all__ = ["NO_RULE", "NOT_PROVEN", "PARTIAL", "PartialResult", "learn_partial"]

PARTIAL, NO_RULE, NOT_PROVEN = "PARTIAL", "NO RULE", "NOT PROVEN"
MAX_DEPTH = 3
MIN_LEAF, MIN_LEAF_SHARE = 20, 0.05
SEED = 0


@dataclass(frozen=True)
class PartialResult:
    model: str
    verdict: str
    """``PARTIAL`` (proven on held-out pairs), ``NO RULE`` (too few pairs, no part of the
    traffic worth routing, or all of it: then plain promotion is the tool) or ``NOT PROVEN``
    (a rule, but the held-out evidence misses a bar)."""
    reason: str
    rule: PartialRule | None
    trained: int
    """Counted pairs the rule was learned on."""
    held_out: int
    """Later pairs (all held-out traffic) it was checked on."""
    routed: int
    """Held-out pairs the rule sends to the candidate."""
    routed_passed: int
    routed_share: float | None
    pass_rate: float | None
    """Among routed held-out pairs, unscored ones counted as failures when
    ``Policy.unscored_fail`` (as the decision counts them)."""
    lower_bound: float | None
    """Always-valid lower bound of ``pass_rate`` at the decision level."""
    cost_per_1k: float | None
    """Served cost per 1k requests with the rule applied; ``None`` when a needed cost is
    unknown."""
    primary_cost_per_1k: float | None
    monthly_savings: float | None = None
    """At the task type's volume (``None``: a cost or the volume unknown)."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rule"] = self.rule.to_dict() if self.rule is not None else None
        return out


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _no_rule(model: str, reason: str, trained: int = 0) -> PartialResult:
    return PartialResult(model, NO_RULE, reason, None, trained, 0, 0, 0, None, None, None,
                         None, None)


def _matrix(rows: Sequence[dict[str, float]]) -> tuple[list[str], np.ndarray]:
    names = sorted({name for row in rows for name in row})
    x = np.array([[row.get(name, 0.0) for name in names] for row in rows], dtype=np.float64)
    return names, x.reshape(len(rows), len(names))


def _tree(x: np.ndarray, y: np.ndarray) -> DecisionTreeClassifier:
    leaf = max(MIN_LEAF, math.ceil(MIN_LEAF_SHARE * len(y)))
    clf = DecisionTreeClassifier(max_depth=MAX_DEPTH, min_samples_leaf=leaf, random_state=SEED)
    return clf.fit(x, y)


def _chosen_leaves(clf: DecisionTreeClassifier, x: np.ndarray, y: np.ndarray,
                   policy: Policy) -> tuple[list[int], int]:
    """The routed leaves (the largest prefix by training pass rate whose pooled
    Clopper-Pearson bound reaches the bar, stopping before a leaf shown below it on its own)
    and how many leaves the tree has."""
    t = clf.tree_
    at = clf.apply(x)
    n = np.bincount(at, minlength=t.node_count)
    k = np.bincount(at, weights=y, minlength=t.node_count)
    leaves = [int(i) for i in np.flatnonzero(t.children_left == -1) if n[i] > 0]
    leaves.sort(key=lambda i: (-k[i] / n[i], -n[i], i))
    bar = policy.required_quality
    best, passes, total = 0, 0, 0
    for size, leaf in enumerate(leaves, start=1):
        if clopper_pearson_upper(int(k[leaf]), int(n[leaf]), policy.confidence) < bar:
            break  # shown below the bar on its own: never diluted into a good pool
        passes, total = passes + int(k[leaf]), total + int(n[leaf])
        if clopper_pearson_lower(passes, total, policy.confidence) >= bar:
            best = size
    return leaves[:best], len(leaves)


def _simplify(path: Sequence[Condition]) -> tuple[Condition, ...]:
    """Keep the tightest threshold per feature and direction, in first-seen order."""
    tightest: dict[tuple[str, str], Condition] = {}
    for c in path:
        key = (c.feature, c.op)
        old = tightest.get(key)
        if old is None or (c.value < old.value if c.op == "<=" else c.value > old.value):
            tightest[key] = c
    order = list(dict.fromkeys((c.feature, c.op) for c in path))
    return tuple(tightest[key] for key in order)


def _rule(clf: DecisionTreeClassifier, names: Sequence[str], chosen: Sequence[int],
          fields: Sequence[str], sizes: np.ndarray) -> PartialRule:
    t = clf.tree_
    left, right = t.children_left, t.children_right
    routed = set(chosen)
    paths: dict[int, tuple[Condition, ...]] = {0: ()}

    def walk(node: int) -> list[int]:
        """Routed nodes under ``node``, a node standing for both its children when both are."""
        if left[node] == -1:
            return [node] if node in routed else []
        name, value = names[t.feature[node]], float(t.threshold[node])
        paths[left[node]] = (*paths[node], Condition(name, "<=", value))
        paths[right[node]] = (*paths[node], Condition(name, ">", value))
        low, high = walk(left[node]), walk(right[node])
        if low == [left[node]] and high == [right[node]]:
            return [node]
        return low + high

    nodes = sorted(walk(0), key=lambda i: (-sizes[i], i))
    return PartialRule(tuple(_simplify(paths[i]) for i in nodes), tuple(fields))


def _costs(routed: Sequence[StoredPair], kept: Sequence[StoredPair]
           ) -> tuple[float | None, float | None]:
    """(served cost per 1k, the primary's cost per 1k) on the held-out traffic."""
    total = len(routed) + len(kept)
    primary = mean_known([p.primary_cost_usd for p in (*routed, *kept)])
    parts = []
    for group, cost in ((routed, mean_known([p.cost_usd for p in routed])),
                        (kept, mean_known([p.primary_cost_usd for p in kept]))):
        if group:
            if cost is None:
                return None, None if primary is None else 1000 * primary
            parts.append(len(group) / total * cost)
    return 1000 * sum(parts), None if primary is None else 1000 * primary


def _missing(tests: Any, n: int, rate: float | None, lower: float | None,
             p: Policy) -> str:
    """Which bar the held-out evidence misses, in words."""
    if n < p.min_samples:
        return f"only {n:,} routed held-out pairs scored, the decision needs {p.min_samples:,}"
    bars = []
    if not bool(tests.quality_met):
        verb = "is shown below" if bool(tests.quality_refuted) else "is not shown above"
        bars.append(f"quality {verb} the required {_pct(p.required_quality)} (pass rate "
                    f"{_pct(rate or 0.0)}, lower bound {_pct(lower or 0.0)})")
    if not bool(tests.excess_met):
        verb = "fails" if bool(tests.excess_refuted) else "is not shown"
        bars.append(f"non-inferiority {verb} (excess over the primary's noise floor below "
                    f"the {_pct(p.margin)} margin)")
    return " and ".join(bars)


def learn_partial(pairs: Sequence[StoredPair], policy: Policy, model: str, *,
                  fields: Sequence[str] = (), noise: tuple[int, int] = (0, 0),
                  family_size: int = 1, train_share: float = 0.6,
                  min_pairs: int = 200, requests_per_day: float | None = None) -> PartialResult:
    """Learn a per-request rule for ``model`` on the older pairs and prove it on the newer
    ones (see the module docstring). ``noise`` is the primary's noise floor as (replays,
    replay failures); ``family_size`` the decisions in the report; ``fields`` the declared
    metadata fields the features may read; ``requests_per_day`` the task's volume (for the
    monthly saving)."""
    if not 0.0 < train_share < 1.0:
        raise ValueError(f"train_share must be strictly between 0 and 1: {train_share}")
    noise_n, noise_failures = noise
    if not 0 <= noise_failures <= noise_n:
        raise ValueError(f"noise is (replays, replay failures), got {noise!r}")
    p = replace(policy, family_size=family_size, sequential=True)
    ordered = sorted(pairs, key=lambda q: (q.created_at, q.exchange_id))
    counted = sum(q.ok is not None for q in ordered)
    if counted < min_pairs:
        return _no_rule(model, f"{counted:,} scored pairs; a per-request rule needs "
                               f"{min_pairs:,} ({min_pairs - counted:,} more)")
    cut = round(train_share * len(ordered))
    train = [q for q in ordered[:cut] if q.ok is not None]
    held = ordered[cut:]
    if not train or not held:
        return _no_rule(model, "too few pairs on one side of the time split", len(train))

    names, x = _matrix([request_features(q.request, q.metadata, fields) for q in train])
    y = np.array([q.ok for q in train], dtype=np.float64)
    clf = _tree(x, y)
    chosen, leaves = _chosen_leaves(clf, x, y, p)
    rate_train = y.mean()
    if not chosen:
        return _no_rule(model, f"no group of requests passes reliably enough: {_pct(rate_train)} "
                               f"pass in training, no leaf of the rule's tree shows "
                               f"{_pct(p.required_quality)}", len(train))
    if len(chosen) == leaves:
        return _no_rule(model, f"the candidate passes on every kind of request "
                               f"({_pct(rate_train)} in training): judge the task whole, by "
                               "plain promotion", len(train))
    rule = _rule(clf, names, chosen, fields, clf.tree_.n_node_samples)

    goes = [rule.matches(request_features(q.request, q.metadata, fields)) for q in held]
    routed = [q for q, g in zip(held, goes, strict=True) if g]
    kept = [q for q, g in zip(held, goes, strict=True) if not g]
    scored = [q for q in routed if q.ok is not None]
    passed = sum(q.ok == 1 for q in scored)
    unscored = len(routed) - len(scored)
    counts = Counts(len(scored), passed, noise_n, noise_n - noise_failures, unscored=unscored)
    priors = Priors.for_policy(p)
    tests = evaluate(counts, p, priors)
    fq, nq = (float(v) for v in counts.quality_counts(p))
    rate = 1.0 - fq / nq if nq else None
    lower = 1.0 - float(rate_upper(fq, nq, p.level, priors.failure)) if nq else None
    share = len(routed) / len(held)
    cost, primary_cost = _costs(routed, kept)
    words = f"requests with {rule.describe()} -> {model}: {share:.0%} of traffic"
    if rate is not None and lower is not None:
        words += f", {_pct(rate)} pass, lower bound {_pct(lower)}"
    if int(tests.verdict) == PROMOTE:
        verdict, reason = PARTIAL, words
    else:
        missing = _missing(tests, len(scored), rate, lower, p)
        verdict, reason = NOT_PROVEN, f"{words}; not proven: {missing}"
    saving = monthly_saving(None if primary_cost is None else primary_cost / 1000,
                            None if cost is None else cost / 1000, requests_per_day)
    return PartialResult(model, verdict, reason, rule, len(train), len(held), len(routed),
                         passed, share, rate, lower, cost, primary_cost, saving)
