"""Monte Carlo audit of the decision rules: today's rules against the new defaults.

    .venv/bin/python bench/decision_sim.py              # every scenario (~2.5 min)
    .venv/bin/python bench/decision_sim.py --quick      # a quarter of the runs (~1 min)
    .venv/bin/python bench/decision_sim.py --only power,drift

Each scenario simulates nightly reports over many runs with fixed seeds and prints the rate
(or median) with its Monte Carlo standard error. The new column comes from the project's own
functions (``shadowroute.decision``: ``evaluate`` for verdicts, ``replay_share`` for the replay
share, ``drift_statistic`` for drift, ``decide`` / ``project`` for days needed), called on the
simulated counts. The old column re-implements the rules shipped before this change as
``legacy_*`` below (always-valid Jeffreys bounds at 5% per decision, the non-inferiority bound
split in two, HOLD on a failing point estimate, CONFIG PROBLEM on the observed rate, flipped
judge verdicts passing, a drift check of the totals since promotion), with the report's
shipped window: ``--since 30d`` for shadow decisions, ``--since all`` for drift.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from shadowroute.decision import Counts, Evidence, Paired, Policy, decide, evaluate
from shadowroute.decision.allocation import simulate_shares
from shadowroute.decision.core import CONFIG_PROBLEM, HOLD, PROMOTE
from shadowroute.decision.drift import drift_reference, drift_statistic, drift_threshold
from shadowroute.decision.replays import replay_share
from shadowroute.decision.sequences import (
    BetaMixture,
    rate_log_evalue,
    rate_lower,
    rate_upper,
)

DEFAULTS = Policy()  # required 95%, margin 2%, confidence 95%, min_samples 100
BASE_REPLAYS, EVALUATION_REPLAYS = 0.1, 0.5
"""The task's ``noise_floor_rate`` default and ``[decision] evaluation_replay_rate``."""
WINDOW = 30
"""``shadowroute report`` defaults to ``--since 30d``."""
JEFFREYS = BetaMixture.jeffreys()


# --------------------------------------------------------------------------- output


@dataclass
class Row:
    scenario: str
    measure: str
    old: str
    new: str
    target: str = ""


def rate(hits: np.ndarray) -> str:
    p, n = float(np.mean(hits)), hits.size
    return f"{p:.1%} ±{math.sqrt(max(p * (1 - p), 1 / n) / n):.1%}"


def median(nights: np.ndarray, rng: np.random.Generator, horizon: int) -> str:
    """Median with a bootstrap standard error; runs without the event count as beyond the
    horizon."""
    value = float(np.median(nights))
    boot = np.median(rng.choice(nights, (200, nights.size)), axis=1)
    if not math.isfinite(value):
        return f"> {horizon}"
    finite = boot[np.isfinite(boot)]
    se = float(np.std(finite)) if finite.size > 1 else float("nan")
    return f"{value:.0f} ±{se:.1f}"


def print_table(rows: list[Row]) -> None:
    heads = ("scenario", "measure", "today's rules", "new defaults", "target")
    cells = [heads] + [(r.scenario, r.measure, r.old, r.new, r.target) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(5)]
    line = "  ".join("-" * w for w in widths)
    print(line)
    for k, c in enumerate(cells):
        print("  ".join(text.ljust(w) for text, w in zip(c, widths, strict=True)))
        if k == 0:
            print(line)
    print(line)


# --------------------------------------------------------------------------- legacy rules


def legacy_lower(k: np.ndarray, n: np.ndarray, alpha: float) -> np.ndarray:
    """The old ``sequential_lower``: the Jeffreys Beta-binomial confidence sequence (the same
    formula, vectorised; ``tests/decision`` checks it against ``bounds.sequential_lower``)."""
    out = np.zeros(np.shape(k))
    some = n > 0
    out[some] = rate_lower(k[some], n[some], alpha, JEFFREYS)
    return out


def legacy_upper(k: np.ndarray, n: np.ndarray, alpha: float) -> np.ndarray:
    out = np.ones(np.shape(k))
    some = n > 0
    out[some] = rate_upper(k[some], n[some], alpha, JEFFREYS)
    return out


def legacy_verdicts(n: np.ndarray, passed: np.ndarray, noise_n: np.ndarray,
                    noise_passed: np.ndarray, checked: np.ndarray | None = None,
                    invalid: np.ndarray | None = None, p: Policy = DEFAULTS) -> np.ndarray:
    """The shipped ``decide`` (sequential), as codes: CONFIG PROBLEM on the observed invalid
    rate; NEED MORE DATA below min_samples; PROMOTE when the always-valid lower bound of the
    pass rate reaches the bar and the failure rate's upper bound minus the floor's lower bound
    (alpha/2 each) is within the margin; HOLD when a point estimate misses (the projection's
    "too close to ever show" HOLD is left out: it only adds HOLDs)."""
    n, passed, noise_n, noise_passed = (np.asarray(x, dtype=float)
                                        for x in (n, passed, noise_n, noise_passed))
    shape = np.broadcast_shapes(n.shape, passed.shape, noise_n.shape, noise_passed.shape)
    n, passed, noise_n, noise_passed = (np.broadcast_to(x, shape)
                                        for x in (n, passed, noise_n, noise_passed))
    alpha = p.alpha
    codes = np.zeros(shape, dtype=np.int8)
    enough = n >= p.min_samples
    safe_n = np.maximum(n, 1)
    # quality: lower bound >= bar  <=>  the martingale rejects the bar from above.
    q = p.required_quality
    log_m = rate_log_evalue(passed, safe_n, q, JEFFREYS)
    quality = enough & (passed / safe_n > q) & (log_m >= math.log(1 / alpha))
    inferiority = np.zeros(shape, dtype=bool)
    if quality.any():
        idx = quality
        fails, noise_fails = n[idx] - passed[idx], noise_n[idx] - noise_passed[idx]
        with_noise = noise_n[idx] > 0
        upper = np.where(with_noise, legacy_upper(fails, n[idx], alpha / 2),
                         legacy_upper(fails, n[idx], alpha))
        floor = np.where(with_noise, legacy_lower(noise_fails, noise_n[idx], alpha / 2), 0.0)
        inferiority[idx] = upper - floor <= p.margin
    codes[quality & inferiority] = PROMOTE
    floor_rate = np.divide(noise_n - noise_passed, noise_n, out=np.zeros(shape), where=noise_n > 0)
    failing = (passed / safe_n < q) | ((n - passed) / safe_n - floor_rate > p.margin)
    codes[enough & ~(quality & inferiority) & failing] = HOLD
    if checked is not None and invalid is not None:
        checked = np.broadcast_to(checked, shape)
        invalid = np.broadcast_to(invalid, shape)
        ratio = np.divide(invalid, checked, out=np.zeros(shape), where=checked > 0)
        codes[(checked >= 10) & (ratio >= p.config_problem_rate)] = CONFIG_PROBLEM
    return codes


def window(cumulative: np.ndarray, night: int, history: list[np.ndarray]) -> np.ndarray:
    """The last ``WINDOW`` nights of a cumulative count (``history`` holds past cumulatives)."""
    if night < WINDOW:
        return cumulative
    return cumulative - history[night - WINDOW]


# --------------------------------------------------------------------------- scenarios


@dataclass
class Setup:
    runs: int
    nights: int = 365


def at_the_bar(setup: Setup, seed: int) -> list[Row]:
    """30 decisions (one per task type) whose candidate passes exactly the required 95%; the
    primary disagrees with itself 10% of the time, so non-inferiority is easy: quality alone
    decides, at its hardest point. Any PROMOTE is wrong."""
    rows = []
    for per_night in (100, 300):
        for decisions in (30, 1):
            rng = np.random.default_rng(seed + per_night + decisions)
            shape = (setup.runs, decisions)
            policy = replace(DEFAULTS, family_size=decisions)
            old_w, old_g, new = _bar_runs(rng, shape, per_night, setup.nights, policy,
                                          fail=0.05, floor=0.10)
            label = (f"{decisions} decisions at the quality bar, {per_night}/night, "
                     f"{setup.nights} nights" if decisions > 1 else
                     f"one decision at the quality bar, {per_night}/night (nominal 5%)")
            rows.append(Row(label, "P(any wrong PROMOTE)",
                            f"{rate(old_w)} (30d window); {rate(old_g)} growing", rate(new),
                            "<= 5%" if decisions > 1 else "real vs nominal"))
    return rows


CHUNK = 400_000
"""Decisions evaluated per call (the new rules evaluate a whole stretch of nights at once)."""


def _ever(verdict_of: Callable[[slice], np.ndarray], nights: int, per_night: int) -> np.ndarray:
    """Whether PROMOTE was ever shown: ``verdict_of(nights)`` returns codes shaped
    (nights, ...) for a slice of nights."""
    step = max(1, CHUNK // max(per_night, 1))
    ever = None
    for start in range(0, nights, step):
        hit = (verdict_of(slice(start, start + step)) == PROMOTE).any(axis=0)
        ever = hit if ever is None else ever | hit
    assert ever is not None
    return ever


def _bar_runs(rng: np.random.Generator, shape: tuple[int, ...], per_night: int, nights: int,
              policy: Policy, *, fail: float, floor: float, shared_floor: bool = False,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nightly reports on ``shape`` = (runs, decisions): ever PROMOTE under the old rules
    (30-day window, growing data; 10% replays) and the new ones (growing data, the
    recommended replay share)."""
    floor_shape = (shape[0], 1) if shared_floor else shape
    old_replays = round(per_night * BASE_REPLAYS)
    n = per_night * np.arange(1, nights + 1, dtype=float).reshape(-1, *([1] * len(shape)))
    fails_old = np.cumsum(rng.binomial(per_night, fail, (nights, *shape)), axis=0)
    fails_new = np.cumsum(rng.binomial(per_night, fail, (nights, *shape)), axis=0)
    noise_old = old_replays * np.arange(1, nights + 1, dtype=float).reshape(n.shape)
    noise_old_fail = np.cumsum(rng.binomial(old_replays, floor, (nights, *floor_shape)), axis=0)
    noise_new = np.zeros((nights, *floor_shape))
    noise_new_fail = np.zeros((nights, *floor_shape))
    m, mf = np.zeros(floor_shape), np.zeros(floor_shape)
    for night in range(nights):  # the replay share follows the counts so far
        before = (night - 1) if night else None
        cand_n = n[before] if before is not None else np.zeros(1)
        cand_f = fails_new[before] if before is not None else np.zeros(shape)
        if shared_floor:
            cand_f = cand_f[:, :1]
        share = replay_share(m, mf, cand_n, cand_f, base=BASE_REPLAYS,
                             evaluation=EVALUATION_REPLAYS)
        replays = np.round(per_night * share)
        m = m + replays
        mf = mf + rng.binomial(replays.astype(np.int64), floor)
        noise_new[night], noise_new_fail[night] = m, mf

    def lagged(x: np.ndarray, window_: slice) -> np.ndarray:
        nights_ = np.arange(nights)[window_]
        past = nights_ - WINDOW
        base = np.where((past >= 0).reshape(-1, *([1] * (x.ndim - 1))), x[np.maximum(past, 0)], 0)
        return x[window_] - base

    def old_window(k: slice) -> np.ndarray:
        wn, wf = lagged(np.broadcast_to(n, fails_old.shape), k), lagged(fails_old, k)
        wm = lagged(np.broadcast_to(noise_old, noise_old_fail.shape), k)
        wmf = lagged(noise_old_fail, k)
        return legacy_verdicts(wn, wn - wf, wm, wm - wmf, p=policy)

    def old_growing(k: slice) -> np.ndarray:
        return legacy_verdicts(n[k], n[k] - fails_old[k], noise_old[k],
                               noise_old[k] - noise_old_fail[k], p=policy)

    def new_rules(k: slice) -> np.ndarray:
        counts = Counts(n[k], n[k] - fails_new[k], noise_new[k], noise_new[k] - noise_new_fail[k])
        return evaluate(counts, policy).verdict

    size = int(np.prod(shape))
    return tuple(_ever(f, nights, size).any(axis=-1)  # type: ignore[return-value]
                 for f in (old_window, old_growing, new_rules))


def at_the_margin(setup: Setup, seed: int) -> list[Row]:
    """5 candidates of one task type failing 3% (quality easy) against a floor of 1%: the
    excess is exactly the 2% margin. Any PROMOTE is wrong."""
    rows = []
    for per_night in (100, 300):
        rng = np.random.default_rng(seed + per_night)
        policy = replace(DEFAULTS, family_size=5)
        old_w, old_g, new = _bar_runs(rng, (setup.runs, 5), per_night, setup.nights, policy,
                                      fail=0.03, floor=0.01, shared_floor=True)
        rows.append(Row(f"5 candidates at the margin, {per_night}/night, {setup.nights} nights",
                        "P(any wrong PROMOTE)", f"{rate(old_w)} (30d window); {rate(old_g)} "
                        "growing", rate(new), "<= 5%"))
    rng = np.random.default_rng(seed + 7)
    single = _bar_runs(rng, (setup.runs, 1), 300, setup.nights, DEFAULTS, fail=0.03, floor=0.01)
    rows.append(Row("one candidate at the margin, 300/night (nominal 5%)",
                    "P(any wrong PROMOTE)", f"{rate(single[0])} (30d window); "
                    f"{rate(single[1])} growing", rate(single[2]), "real vs nominal"))
    for paired in (False, True):
        rng = np.random.default_rng(seed + 11)
        hits = _correlated_margin(rng, max(setup.runs // 2, 50), 300, setup.nights, paired)
        rows.append(Row("5 at the margin, failures correlated (half the replay's failures "
                        "shared), 300/night", "P(any wrong PROMOTE)", "",
                        f"{rate(hits)} ({'paired' if paired else 'unpaired'} counts)",
                        "<= 5%"))
    return rows


def _correlated_margin(rng: np.random.Generator, runs: int, per_night: int, nights: int,
                       paired: bool) -> np.ndarray:
    """Replays fail 1%; each candidate fails 50% of the time when the replay failed, ~2.5%
    otherwise: 3% overall, excess exactly 2%, strongly correlated with the floor."""
    policy = replace(DEFAULTS, family_size=5)
    cand_given_fail, cand_given_pass = 0.5, (0.03 - 0.005) / 0.99
    shape = (runs, 5)
    keys = ("n", "fails", "noise", "noise_fail", "both", "cand", "rep", "pairs")
    now = {k: np.zeros(shape) for k in keys}
    history = {k: np.zeros((nights, *shape)) for k in keys}
    for night in range(nights):
        share = replay_share(now["noise"][:, :1], now["noise_fail"][:, :1], now["n"][:, :1],
                             now["fails"][:, :1], base=BASE_REPLAYS,
                             evaluation=EVALUATION_REPLAYS)
        m = np.round(per_night * share).astype(np.int64)  # (runs, 1): shared replays
        replay_fail = rng.binomial(m, 0.01)
        with_fail = rng.binomial(np.broadcast_to(replay_fail, shape), cand_given_fail)
        with_pass = rng.binomial(np.broadcast_to(m - replay_fail, shape), cand_given_pass)
        lone = rng.binomial(np.broadcast_to(per_night - m, shape), 0.03)
        for key, add in (("n", per_night), ("fails", with_fail + with_pass + lone),
                         ("noise", m), ("noise_fail", replay_fail), ("both", with_fail),
                         ("cand", with_pass), ("rep", replay_fail - with_fail), ("pairs", m)):
            now[key] = now[key] + add
            history[key][night] = now[key]
    h = history

    def verdict(k: slice) -> np.ndarray:
        pair = (Paired.from_totals(h["n"][k], h["fails"][k], h["noise"][k], h["noise_fail"][k],
                                   h["pairs"][k], h["both"][k], h["cand"][k], h["rep"][k])
                if paired else None)
        counts = Counts(h["n"][k], h["n"][k] - h["fails"][k], h["noise"][k],
                        h["noise"][k] - h["noise_fail"][k], paired=pair)
        return evaluate(counts, policy).verdict

    return _ever(verdict, nights, runs * 5).any(axis=-1)


def power(setup: Setup, seed: int) -> list[Row]:
    """A candidate as good as the primary: passes 97%, the primary's floor 3%. Old rules on
    growing data (their best case: with the 30-day window they never promote it)."""
    rows = []
    horizon = 400
    for per_night, target in ((300, 21), (100, 60)):
        rng = np.random.default_rng(seed + per_night)
        old, old_hold, new, new_hold, fixed = _power_runs(rng, setup.runs, per_night, horizon)
        rows.append(Row(f"as good as the primary (97%, floor 3%), {per_night}/night",
                        "median nights to PROMOTE", median(old, rng, horizon),
                        f"{median(new, rng, horizon)} (10% replays: "
                        f"{median(fixed, rng, horizon)})", f"<= {target}"))
        rows.append(Row("", "P(PROMOTE within 30 nights)", rate(old <= 30), rate(new <= 30)))
        rows.append(Row("", "P(a HOLD before the PROMOTE)", rate(old_hold), rate(new_hold)))
    return rows


def _power_runs(rng: np.random.Generator, runs: int, per_night: int, horizon: int
                ) -> tuple[np.ndarray, ...]:
    old_at, new_at, fixed_at = (np.full(runs, np.inf) for _ in range(3))
    old_hold, new_hold = np.zeros(runs, dtype=bool), np.zeros(runs, dtype=bool)
    old_replays = round(per_night * BASE_REPLAYS)
    state = {k: np.zeros(runs) for k in ("n", "f_old", "m_old", "mf_old", "f_new", "m_new",
                                         "mf_new", "f_fix", "m_fix", "mf_fix")}
    s = state
    for night in range(1, horizon + 1):
        share = replay_share(s["m_new"], s["mf_new"], s["n"], s["f_new"], base=BASE_REPLAYS,
                             evaluation=EVALUATION_REPLAYS)
        s["n"] += per_night
        for key in ("f_old", "f_new", "f_fix"):
            s[key] += rng.binomial(per_night, 0.03, runs)
        for key, replays in (("old", np.full(runs, old_replays)),
                             ("new", np.round(per_night * share)),
                             ("fix", np.full(runs, old_replays))):
            s[f"m_{key}"] += replays
            s[f"mf_{key}"] += rng.binomial(replays.astype(np.int64), 0.03)
        old = legacy_verdicts(s["n"], s["n"] - s["f_old"], s["m_old"], s["m_old"] - s["mf_old"])
        old_hold |= (old == HOLD) & ~np.isfinite(old_at)
        old_at = np.where((old == PROMOTE) & ~np.isfinite(old_at), night, old_at)
        for key, at in (("new", new_at), ("fix", fixed_at)):
            verdict = evaluate(Counts(s["n"], s["n"] - s[f"f_{key}"], s[f"m_{key}"],
                                      s[f"m_{key}"] - s[f"mf_{key}"]), DEFAULTS).verdict
            if key == "new":
                new_hold |= (verdict == HOLD) & ~np.isfinite(at)
            at[(verdict == PROMOTE) & ~np.isfinite(at)] = night
        if np.isfinite(old_at).all() and np.isfinite(new_at).all() and np.isfinite(fixed_at).all():
            break
    return old_at, old_hold, new_at, new_hold, fixed_at


def judge(setup: Setup, seed: int) -> list[Row]:
    """An LLM judge that answers "the first one is better" on a share of its calls whatever
    the answers (position bias), truthfully otherwise; each pair is judged in both orders.
    Any PROMOTE of a candidate worse than the primary on 7% of requests (the replay on 3%: an
    excess of 4%, twice the margin) is wrong."""
    rows = []
    for bias, worse, label in ((0.8, 0.07, "candidate at 2x the margin"),
                               (0.2, 0.07, "candidate at 2x the margin"),
                               (0.01, 0.03, "candidate as good as the primary")):
        rng = np.random.default_rng(seed + int(bias * 100))
        old, new, config = _judge_runs(rng, setup.runs, 300, setup.nights, bias, worse)
        rows.append(Row(f"judge with {bias:.0%} position bias, {label}, 300/night",
                        "P(PROMOTE ever)", rate(old), rate(new), "<= 5%" if worse > 0.05 else ""))
        rows.append(Row("", "P(CONFIG PROBLEM: judge inconsistent)", "", rate(config)))
    return rows


def _judge_outcomes(worse: float, bias: float) -> tuple[float, float, float]:
    """(P consistent pass, P consistent fail, P flipped) of one judged output."""
    flip = worse * bias + (1 - worse) * (1 - (1 - bias) ** 2)
    return (1 - worse) * (1 - bias) ** 2, worse * (1 - bias), flip


def _judge_runs(rng: np.random.Generator, runs: int, per_night: int, nights: int, bias: float,
                worse: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cand, rep = _judge_outcomes(worse, bias), _judge_outcomes(0.03, bias)
    old_replays = round(per_night * BASE_REPLAYS)
    zeros = {k: np.zeros((runs, 3)) for k in ("c_old", "r_old", "c_new", "r_new")}
    old_ever, new_ever, config = (np.zeros(runs, dtype=bool) for _ in range(3))
    hist: list[tuple[np.ndarray, np.ndarray]] = []
    for night in range(nights):
        n_new = zeros["c_new"].sum(axis=1)
        fails_new = n_new - zeros["c_new"][:, 0]
        share = replay_share(zeros["r_new"].sum(axis=1),
                             zeros["r_new"].sum(axis=1) - zeros["r_new"][:, 0], n_new,
                             fails_new, base=BASE_REPLAYS, evaluation=EVALUATION_REPLAYS)
        zeros["c_old"] += rng.multinomial(per_night, cand, runs)
        zeros["r_old"] += rng.multinomial(old_replays, rep, runs)
        zeros["c_new"] += rng.multinomial(per_night, cand, runs)
        replays = np.round(per_night * share).astype(np.int64)
        zeros["r_new"] += rng.multinomial(replays, rep)
        hist.append((zeros["c_old"].copy(), zeros["r_old"].copy()))
        c_old, r_old = zeros["c_old"], zeros["r_old"]
        if night >= WINDOW:
            c_old, r_old = c_old - hist[night - WINDOW][0], r_old - hist[night - WINDOW][1]
        # old: a flip reads as "same", which passes
        n, m = c_old.sum(axis=1), r_old.sum(axis=1)
        old = legacy_verdicts(n, c_old[:, 0] + c_old[:, 2], m, r_old[:, 0] + r_old[:, 2])
        old_ever |= old == PROMOTE
        c, r = zeros["c_new"], zeros["r_new"]
        n, m = c.sum(axis=1), r.sum(axis=1)
        verdict = evaluate(Counts(n, c[:, 0], m, r[:, 0], judged=n, flipped=c[:, 2]),
                           DEFAULTS).verdict
        new_ever |= verdict == PROMOTE
        config |= verdict == CONFIG_PROBLEM
    return old_ever, new_ever, config


def config_problem(setup: Setup, seed: int) -> list[Row]:
    """The primary fails its own JSON schema on 5% of exchanges (below the 10% limit), 10
    schema checks a night for 30 nights: any CONFIG PROBLEM is wrong. And a real problem (20%
    invalid): how soon it is named."""
    rows = []
    for invalid, label in ((0.05, "P(CONFIG PROBLEM on some night)"),
                           (0.20, "P(CONFIG PROBLEM within 30 nights)")):
        rng = np.random.default_rng(seed + int(invalid * 100))
        checks = np.zeros(setup.runs)
        bad = np.zeros(setup.runs)
        old, new = np.zeros(setup.runs, dtype=bool), np.zeros(setup.runs, dtype=bool)
        for _ in range(30):
            checks += 10
            bad += rng.binomial(10, invalid, setup.runs)
            n = np.full(setup.runs, 500.0)
            old |= legacy_verdicts(n, n, n, n, checks, bad) == CONFIG_PROBLEM
            new |= evaluate(Counts(n, n, n, n, primary_checked=checks, primary_invalid=bad),
                            DEFAULTS).verdict == CONFIG_PROBLEM
        rows.append(Row(f"primary {invalid:.0%} invalid, 10 checks/night, 30 nights", label,
                        rate(old), rate(new), "<= 5%" if invalid < 0.1 else ""))
    return rows


def drift(setup: Setup, seed: int) -> list[Row]:
    """A model promoted under a 90% bar (it passed 95% on 6,000 shadow pairs; the primary's
    floor is 10% on 3,000 replays, so non-inferiority is easy) drops to 85% on night 31 or 91
    after the promotion; 40 reverse-shadow pairs a night. And one that never drops: any DEMOTE
    RECOMMENDED within 365 nights is a false alarm."""
    rows = []
    policy = replace(DEFAULTS, required_quality=0.9)
    noise_n, noise_fail, base_n, base_fail = 3000, 300, 6000, 300
    f0 = drift_reference(policy, noise_n, noise_fail, base_n, base_fail)
    threshold = drift_threshold(policy)
    for drop_at in (30, 90, None):
        rng = np.random.default_rng(seed + (drop_at or 0))
        nights = setup.nights if drop_at is None else drop_at + 200
        p = np.full(nights, 0.95)
        if drop_at is not None:
            p[drop_at:] = 0.85
        passed = rng.binomial(40, p, (setup.runs, nights)).astype(float)
        n = np.full_like(passed, 40.0)
        stat, _ = drift_statistic(n - passed, n, f0)
        new_at = _first(stat >= threshold)
        old_at = _first(_legacy_drift(np.cumsum(n, axis=1), np.cumsum(passed, axis=1),
                                      noise_n, noise_fail, policy))
        if drop_at is None:
            rows.append(Row(f"promoted model that holds (95%, bar 90%), {nights} nights",
                            "P(never flagged)", rate(~np.isfinite(old_at)),
                            rate(~np.isfinite(new_at)), ">= 99%"))
            continue
        early_old, early_new = old_at <= drop_at, new_at <= drop_at
        old_delay = np.where(early_old, np.inf, old_at - drop_at)
        new_delay = np.where(early_new, np.inf, new_at - drop_at)
        rows.append(Row(f"drop 95% -> 85% on night {drop_at + 1} (bar 90%), 40 pairs/night",
                        "median nights from the drop to DEMOTE",
                        median(old_delay, rng, 200), median(new_delay, rng, 200),
                        "<= 15" if drop_at == 90 else ""))
    return rows


def _first(hits: np.ndarray) -> np.ndarray:
    return np.where(hits.any(axis=1), hits.argmax(axis=1) + 1.0, np.inf)


def _legacy_drift(n: np.ndarray, passed: np.ndarray, noise_n: int, noise_fail: int,
                  p: Policy) -> np.ndarray:
    """The shipped ``check_drift`` on the totals since promotion (``--since all``): DEMOTE
    when the pass rate's upper bound (alpha) is below the bar or the failures' lower bound
    minus the floor's upper bound (alpha/2 each) exceeds the margin."""
    alpha, q, margin = p.alpha, p.required_quality, p.margin
    quality = rate_upper(passed, n, alpha, JEFFREYS) < q
    fail_low = rate_lower(n - passed, n, alpha / 2, JEFFREYS)
    floor_up = float(rate_upper(noise_fail, noise_n, alpha / 2, JEFFREYS))
    return quality | (fail_low - floor_up > margin)


def days_needed(setup: Setup, seed: int) -> list[Row]:
    """How honest "days needed" is: the candidate as good as the primary at 100 pairs a night;
    on night 3 the report projects a verdict. How often does the PROMOTE come by the projected
    median, and by the projected 80% (new), or by today's single figure (old, growing data)?"""
    rng = np.random.default_rng(seed)
    runs = max(setup.runs // 5, 40)
    horizon, first = 400, 3
    nights = np.arange(1, horizon + 1)
    n = 100.0 * nights
    by_old, by_median, by_80 = [], [], []
    projected_old: list[float] = []
    for _ in range(runs):
        # new rules: the recommended replay share, night by night
        fails = np.cumsum(rng.binomial(100, 0.03, horizon)).astype(float)
        m, mf, shares = np.zeros(horizon), np.zeros(horizon), np.zeros(horizon)
        total = total_f = 0.0
        for t in range(horizon):
            shares[t] = float(replay_share(total, total_f, n[t - 1] if t else 0.0,
                                           fails[t - 1] if t else 0.0, base=BASE_REPLAYS,
                                           evaluation=EVALUATION_REPLAYS))
            r = round(100 * shares[t])
            total += r
            total_f += rng.binomial(r, 0.03)
            m[t], mf[t] = total, total_f
        promoted = evaluate(Counts(n, n - fails, m, m - mf), DEFAULTS).verdict == PROMOTE
        actual = float(nights[promoted.argmax()]) if promoted.any() else np.inf
        t = first - 1
        d = decide(Evidence(int(n[t]), int(n[t] - fails[t]), noise_n=int(m[t]),
                            noise_passed=int(m[t] - mf[t]), samples_per_day=100.0,
                            noise_per_day=100.0 * shares[t]), DEFAULTS)
        if d.days_needed is not None and actual > first:
            by_median.append(actual <= first + d.days_needed)
            by_80.append(actual <= first + (d.days_needed_80 or np.inf))
        # old rules: 10% replays, the single projected figure on night 3
        old_fails = np.cumsum(rng.binomial(100, 0.03, horizon)).astype(float)
        old_m = 10.0 * nights
        old_mf = np.cumsum(rng.binomial(10, 0.03, horizon)).astype(float)
        codes = legacy_verdicts(n, n - old_fails, old_m, old_m - old_mf)
        old_actual = float(nights[(codes == PROMOTE).argmax()]) if (codes == PROMOTE).any() \
            else np.inf
        more = _legacy_projection(int(n[t]), int(old_fails[t]), int(old_m[t]), int(old_mf[t]))
        if more is not None and old_actual > first:
            by_old.append(old_actual <= first + more / 100)
            projected_old.append(more / 100)
    return [Row("'days needed' on night 3, as good as the primary, 100/night",
                "P(PROMOTE by the projected day)", f"{rate(np.array(by_old))} (one figure, "
                f"median {np.median(projected_old):.0f} days)",
                f"{rate(np.array(by_median))} by the median, {rate(np.array(by_80))} by the "
                "80% day", "~50% / ~80%")]


def _legacy_projection(n: int, fails: int, noise_n: int, noise_fails: int) -> int | None:
    """The old projection: outputs at which the old criteria pass if the observed rates held
    exactly (replays in proportion)."""
    rate_pass = 1 - fails / n
    noise_rate = 1 - noise_fails / noise_n if noise_n else 1.0
    sizes = np.unique(np.round(np.geomspace(n, 10_000_000, 400)))
    noise = np.round(noise_n * sizes / n)
    codes = legacy_verdicts(sizes, np.floor(rate_pass * sizes), noise,
                            np.floor(noise_rate * noise))
    hit = np.flatnonzero(codes == PROMOTE)
    return None if not hit.size else int(sizes[hit[0]] - n)


def allocation(setup: Setup, seed: int) -> list[Row]:
    """4 candidates of one task type against a primary that disagrees with itself 2% of the
    time; 100 sampled exchanges and 50 replays a night, 90 nights. Today every candidate is
    called (and scored, judge included) on every sampled exchange; the new shares come from
    the project's ``shares`` on each night's verdicts (settled: ``maintenance_rate`` 10%;
    undecided with 100 outputs: by ``pass_chances``, floor 25%). Candidate + judge spend is
    proportional to candidate outputs (same cost per output in both columns; replays, the
    same in both, are left out; the judge calls ``[judge] when = "needed"`` saves come on top)."""
    rows = []
    for label, fails, good in (
            ("one good (fails 2%), three clearly worse (10/15/20%)", (0.02, 0.10, 0.15, 0.20), 0),
            ("one at the quality bar (fails 5%), three clearly worse", (0.05, 0.10, 0.15, 0.20),
             None)):
        out = {}
        for allocate in (False, True):
            rng = np.random.default_rng(seed)
            policy = replace(DEFAULTS, family_size=len(fails))
            out[allocate] = simulate_shares(
                rng, policy, runs=setup.runs, nights=90, per_night=100, fails=fails,
                floor=0.02, replays=round(100 * EVALUATION_REPLAYS),
                maintenance=0.1 if allocate else 1.0, floor_share=0.25 if allocate else 1.0)
        (first_old, spend_old), (first_new, spend_new) = out[False], out[True]
        rng = np.random.default_rng(seed)
        if good is not None:
            rows.append(Row(label, "median nights to PROMOTE the good one",
                            median(first_old[:, good], rng, 90),
                            median(first_new[:, good], rng, 90), ">= as fast"))
            wrong = np.isfinite(np.delete(first_new, good, axis=1)).any(axis=1)
            wrong_old = np.isfinite(np.delete(first_old, good, axis=1)).any(axis=1)
        else:
            wrong, wrong_old = np.isfinite(first_new).any(axis=1), np.isfinite(first_old).any(axis=1)
        rows.append(Row(label if good is None else "", "P(any wrong PROMOTE)", rate(wrong_old),
                        rate(wrong), "<= 5%"))
        for nights in (30, 90):
            old, new = spend_old[:, :nights].sum(axis=1), spend_new[:, :nights].sum(axis=1)
            fall = 1 - float(np.mean(new)) / float(np.mean(old))
            rows.append(Row("", f"candidate + judge spend, {nights} nights (outputs)",
                            f"{np.mean(old):,.0f}", f"{np.mean(new):,.0f} (-{fall:.0%})",
                            "-60%" if good is not None else ""))
    return rows


SCENARIOS: dict[str, Callable[[Setup, int], list[Row]]] = {
    "bar": at_the_bar, "margin": at_the_margin, "power": power, "judge": judge,
    "config": config_problem, "drift": drift, "days": days_needed, "allocation": allocation,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="Monte Carlo runs per scenario")
    parser.add_argument("--quick", action="store_true", help="a quarter of the runs")
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--seed", type=int, default=20260611)
    args = parser.parse_args(argv)
    runs = max(args.runs // 4, 50) if args.quick else args.runs
    chosen = [s for s in args.only.split(",") if s] or list(SCENARIOS)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    rows: list[Row] = []
    for name in chosen:
        started = time.perf_counter()
        rows += SCENARIOS[name](Setup(runs), args.seed)
        print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    print(f"\n{runs} runs per scenario (fixed seeds; ± is one Monte Carlo standard error)")
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
