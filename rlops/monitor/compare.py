"""Canary against production: the same bootstrap bound as the gate, unpaired and over users.

The gate pairs items because candidate and incumbent answer the same prompts. In production they do not: a canary
answers a sticky fraction of *users*, production the rest, so the two samples are different people (unpaired) and
the unit that was randomised is the user, not the interaction (one user's interactions are not independent: a
user who rates harshly rates every answer harshly). So each metric is first averaged per user, then the two sets of
user means are resampled independently (a two-sample percentile bootstrap) and the difference of their means gets
one-sided bounds at the gate's confidence, oriented like the gate's (positive = canary better), with the gate's
percentile rule, resamples and seed (`gate.bootstrap` in pipelines/conf/config.yaml). Production is read only over
the canary's own time span, so a busy Monday does not count against either arm.

A canary is *significantly worse* on a metric when the upper bound of the oriented difference is below zero. Several
metrics are tested at once, so each is tested at a Bonferroni-corrected level (alpha / number tested): the chance
of flagging a canary that is no worse on any of them stays at most 1 - confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# metric -> (higher is better, what it is); the per-user value is the user's mean over their interactions
TESTED = {
    "rating": (True, "mean rating, scaled to [0, 1], over rated interactions"),
    "edit_rate": (False, "share of interactions a person edited"),
    "over_refusal_rate": (False, "share of interactions refused where a person's feedback shows it should have helped"),
    "tool_error_rate": (False, "share of interactions with a failed tool call"),
    "latency_ms": (False, "milliseconds to the complete answer"),
}


@dataclass(frozen=True)
class Bootstrap:
    samples: int
    confidence: float
    seed: int


def unpaired_bounds(a: list[float], b: list[float], samples: int, confidence: float, seed: int) -> tuple[float, float]:
    """One-sided lower and upper bounds, each at `confidence`, on mean(a) - mean(b), resampling a and b
    independently (percentile bootstrap; the same percentile rule as rlops.gates.bootstrap_interval)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    means = np.empty(samples)
    step = max(1, 2_000_000 // max(len(xa), len(xb)))  # resamples per block: bounded memory on large logs
    for start in range(0, samples, step):
        k = min(step, samples - start)
        ma = xa[rng.integers(0, len(xa), (k, len(xa)), dtype=np.int32)].mean(axis=1)
        mb = xb[rng.integers(0, len(xb), (k, len(xb)), dtype=np.int32)].mean(axis=1)
        means[start:start + k] = ma - mb
    means.sort()
    alpha = 1.0 - confidence
    lo = means[max(0, int(alpha * samples) - 1)]
    hi = means[min(samples - 1, int((1.0 - alpha) * samples))]
    return float(lo), float(hi)


def compare(canary: dict[str, dict[str, list[float]]], production: dict[str, dict[str, list[float]]],
            boot: Bootstrap, min_users: int) -> list[dict[str, Any]]:
    """One result per metric in TESTED, from {metric -> {user -> [sum, count]}} of each arm."""
    def user_means(per_user: dict[str, list[float]]) -> list[float]:
        return [total / n for _, (total, n) in sorted(per_user.items()) if n]

    arms = {m: (user_means(canary.get(m, {})), user_means(production.get(m, {}))) for m in TESTED}
    testable = [m for m, (c, p) in arms.items() if len(c) >= min_users and len(p) >= min_users]
    level = 1.0 - (1.0 - boot.confidence) / max(1, len(testable))  # Bonferroni over the metrics tested
    out = []
    for i, (metric, (higher, what)) in enumerate(TESTED.items()):
        c, p = arms[metric]
        row: dict[str, Any] = {"metric": metric, "what": what, "higher_is_better": higher, "users_canary": len(c),
                               "users_production": len(p), "canary": _mean(c), "production": _mean(p),
                               "tested": metric in testable, "worse": False}
        if metric not in testable:
            row["reason"] = f"not tested: fewer than {min_users} users with a value in an arm"
            out.append(row)
            continue
        lo, hi = unpaired_bounds(c, p, boot.samples, level, boot.seed + i)
        sign = 1.0 if higher else -1.0
        lo, hi = sorted((sign * lo, sign * hi))  # oriented: positive = the canary is better
        diff = sign * (row["canary"] - row["production"])
        row.update(diff=round(diff, 6), ci_low=round(lo, 6), ci_high=round(hi, 6), confidence=round(level, 6),
                   worse=hi < 0)
        row["reason"] = (f"significantly worse: the upper {level:.4g} bound of the improvement is {hi:.4g} < 0"
                         if hi < 0 else f"not significantly worse (upper bound {hi:.4g} >= 0)")
        out.append(row)
    return out


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 6) if xs else None
