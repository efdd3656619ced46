"""Gate rules: one module per rule, each registering a `gate_rule` component (see rlops/components.py).

| rule                 | module                  | passes when (d = per-item difference, positive = candidate better) |
|----------------------|-------------------------|--------------------------------------------------------------------|
| `non_inferior`       | `non_inferior.py`       | lower confidence bound of mean(d) >= -margin                        |
| `superior`           | `superior.py`           | lower confidence bound of mean(d) > margin                          |
| `no_item_regression` | `no_item_regression.py` | at most max_regressions items with d < 0                            |
| `at_least`           | `at_least.py`           | the candidate's mean reaches value in the metric's direction        |
| `win_rate`           | `win_rate.py`           | one-sided Wilson lower bound of the judged win-rate >= min          |

A rule's function gets its typed settings and the `Evidence`: the items both models answered, paired by id, with
the differences already oriented by the metric's direction, so no rule can read a lower-is-better metric upside
down. A rule whose settings set `judged = True` (win_rate) gets instead the judge stage's per-item verdicts
(artifacts/judge/judgments.jsonl) as scores: 1 for a win, ½ for a tie, 0 for a loss, the incumbent's being 1 − that.
Its settings model subclasses `GateSettings`; the spec schema's gate definition, `rlops plan`'s defaults
and the README's rule list are derived from the registered rules (`gate_schema`, `rule_defaults`, `rule_lines`).
"""

from __future__ import annotations

import functools
import itertools
import operator
import random
import statistics
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from rlops import components
from rlops.components import Settings

KIND = "gate_rule"
COMMON = ("metric", "rule", "confidence", "allow_uninformative")  # keys every gate takes


class GateSettings(Settings):
    """The keys every gate takes; a rule's settings model adds its own."""

    judged: ClassVar[bool] = False  # True: the rule reads a judge's per-item verdicts, not the suite's scores

    metric: str = Field(title="Metric", pattern=r"^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_]*$",
                        description="<suite>.<metric>, e.g. heldout.rubric; the suite must be listed in evaluate.suites.")
    rule: str = Field(title="Rule", description="The gate rule, by name.")
    confidence: float | None = Field(None, title="Confidence", ge=0.5, le=0.999,
                                     description="Confidence level of the paired test behind the verdict, between 0.5 "
                                                 "and 0.999.")
    allow_uninformative: bool = Field(
        False, title="Allow an uninformative evaluation",
        description="When candidate and incumbent tie on every item (both at the floor or ceiling, or identical "
                    "answers), the evaluation cannot tell them apart and the gate fails; true lets such a gate pass, "
                    "still marked uninformative in the verdict and the report.")


@dataclass(frozen=True)
class Evidence:
    """What a rule judges: one metric's items that both models answered, paired by id."""

    metric: str  # suite.metric
    ids: list[str]
    candidate: list[float]  # raw scores, in the metric's own units
    incumbent: list[float]
    higher_is_better: bool
    confidence: float  # the gate's own, else gate.bootstrap.confidence
    samples: int
    seed: int

    @functools.cached_property
    def diffs(self) -> list[float]:
        """Per-item differences oriented so that positive means the candidate is better."""
        sign = 1.0 if self.higher_is_better else -1.0
        return [sign * (c - i) for c, i in zip(self.candidate, self.incumbent)]

    @functools.cached_property
    def bounds(self) -> tuple[float, float]:
        """One-sided lower and upper bounds on mean(diffs), each at `confidence` (paired percentile bootstrap)."""
        return bootstrap_interval(self.diffs, self.samples, self.confidence, self.seed)

    def mean(self, which: str) -> float:
        xs = self.candidate if which == "candidate" else self.incumbent
        return sum(xs) / len(xs) if xs else 0.0


@dataclass(frozen=True)
class Outcome:
    passed: bool
    reason: str
    regressions: list[str] = field(default_factory=list)  # ids of items that got worse, when the rule looks at items
    bound: float | None = None  # the bound the rule compared (shown in the report), if it compared one


def bootstrap_interval(diffs: list[float], samples: int, confidence: float, seed: int) -> tuple[float, float]:
    """One-sided lower and upper bounds on the mean difference, each at `confidence` (percentile bootstrap).

    Resample i draws the items `rng.randrange(n)` would draw, in the same order, and sums them left to right, so the
    bounds are exactly those of the plain loop (tests/test_verdict_recompute.py keeps it as the reference). The
    draws are read in one block of 32-bit words, which `randrange` takes one per call (top bits, rejected when too
    large); with numpy (when installed) the rest runs vectorised, 10x faster. `rlops audit verify` recomputes every
    promotion's verdict with it."""
    if not diffs:
        return 0.0, 0.0
    try:
        import numpy as np
    except ImportError:  # the light core does not require it
        np = None
    rng = random.Random(seed)
    n = len(diffs)
    bits = n.bit_length()
    need = n * samples
    chunks: list = []
    have = 0
    while have < need:
        words = (need - have) * (1 << bits) // n * 9 // 8 + 64  # n of every 2**bits draws are kept
        raw = rng.getrandbits(32 * words).to_bytes(4 * words, "little")
        if np is not None:
            block = np.frombuffer(raw, dtype="<u4") >> (32 - bits)
            block = block[block < n]
        else:
            block = list(filter(n.__gt__, map(operator.rshift, memoryview(raw).cast("I"), itertools.repeat(32 - bits))))
        chunks.append(block)
        have += len(block)
    if np is not None:
        values = np.asarray(diffs, dtype=np.float64)[np.concatenate(chunks)[:need]].reshape(samples, n)
        means = np.sort(np.cumsum(values, axis=1)[:, -1] / n).tolist()  # cumsum adds left to right, as sum() does
    else:
        picked = iter(list(map(diffs.__getitem__, list(itertools.chain.from_iterable(chunks))[:need])))
        means = sorted(map(operator.truediv, map(sum, zip(*[picked] * n)), itertools.repeat(n)))
    alpha = 1.0 - confidence
    lo = means[max(0, int(alpha * samples) - 1)]
    hi = means[min(samples - 1, int((1.0 - alpha) * samples))]
    return lo, hi


def wilson_lower(successes: float, n: int, confidence: float) -> float:
    """One-sided Wilson score lower bound of a proportion: `successes` of `n` (a tie may count half) at `confidence`."""
    if n <= 0:
        return 0.0
    z = statistics.NormalDist().inv_cdf(confidence)
    p = min(max(successes / n, 0.0), 1.0)
    centre = p + z * z / (2 * n)
    spread = z * ((p * (1 - p) + z * z / (4 * n)) / n) ** 0.5
    return max(0.0, (centre - spread) / (1 + z * z / n))


def perfect(metric: str, n: int, higher_is_better: bool, span: tuple[float, float], confidence: float,
            bootstrap: dict[str, Any]) -> Evidence:
    """`n` items on which the candidate scores the best value of `span` (low, high) and the incumbent the worst: the
    evidence of a perfect candidate, for `fewest_items`."""
    best, worst = (span[1], span[0]) if higher_is_better else span
    return Evidence(metric, [f"item-{i}" for i in range(n)], [best] * n, [worst] * n, higher_is_better, confidence,
                    int(bootstrap["samples"]), int(bootstrap["seed"]))


def fewest_items(rule_: components.Component, settings: GateSettings, evidence_of, limit: int = 1 << 16) -> int | None:
    """The fewest items with which the rule's own function passes `evidence_of(n)` (a perfect candidate), or None
    when not even `limit` items would do. Assumes more items never hurt a perfect candidate (true of every built-in
    rule); searched by doubling, then halving, so the rule runs about 2·log2(n) times. A rule whose bound does not
    move with more items (a perfect candidate's bootstrap bound is its constant difference), or that compares no
    bound, stops after two tries."""
    def passes(n: int) -> bool:
        return rule_.function(settings, evidence_of(n)).passed

    high, before = 1, rule_.function(settings, evidence_of(1))
    while not before.passed:
        if high >= limit:
            return None
        high = min(2 * high, limit)
        now = rule_.function(settings, evidence_of(high))
        if not now.passed and (now.bound is None or now.bound == before.bound):
            return None  # more items do not move what the rule compares
        before = now
    low = high // 2  # fails (or is 0)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if passes(mid) else (mid, high)
    return high


def needed_items(gate: dict[str, Any], n: int, bootstrap: dict[str, Any], where: str = "gate") -> str | None:
    """Why `n` items are too few for `gate` to pass even with a perfect candidate, and how many would do; None when
    they suffice, or when the gate cannot be judged here (unknown rule or metric, bad settings, an unbounded metric).
    The rule's own function decides (`fewest_items`), so this warning and the verdict cannot drift apart."""
    from rlops.errors import InvalidInput

    try:
        found = rule(gate["rule"])
    except (InvalidInput, KeyError, TypeError):
        return None
    settings, problems = components.validate(found, gate, "params.yaml", where)
    if settings is None:
        return None
    if getattr(found.settings, "judged", False):
        higher, span = True, (0.0, 1.0)  # a judged item scores 1 (win), ½ (tie) or 0 (loss)
    else:
        try:
            metric = components.get("metric", gate["metric"].split(".", 1)[-1])
        except InvalidInput:
            return None
        higher, span = metric.higher_is_better, metric.range
        if None in span:
            return None  # no best value, so no perfect candidate
    confidence = float(bootstrap["confidence"] if settings.confidence is None else settings.confidence)
    need = fewest_items(found, settings, lambda k: perfect(gate["metric"], k, higher, span, confidence, bootstrap))
    if need is None:
        return f"cannot pass at {confidence:.0%} confidence with any number of items, even with a perfect candidate"
    if need <= n:
        return None
    return (f"{n} item(s) are too few to pass at {confidence:.0%} confidence even with a perfect candidate; "
            f"it needs at least {need}")


def rule(name: str) -> components.Component:
    return components.get(KIND, name)


def rule_defaults(name: str) -> dict[str, Any]:
    """The defaults `rlops plan` fills into a gate of rule `name` (pipelines/conf/config.yaml may override them)."""
    return components.defaults(rule(name).settings, skip=("metric", "rule", "confidence"))


def rule_lines() -> list[str]:
    """One line per registered rule, for the README: `name`: description."""
    return [f"- `{c.name}`: {c.description}" for c in components.all_of(KIND)]


def gate_schema() -> dict[str, Any]:
    """The JSON Schema of one gate in a cycle spec, derived from the registered rules' settings models."""
    properties, branches = components.variant_schema(KIND, "rule")
    return {"title": "Gate",
            "description": "One rule comparing candidate and incumbent (or a fixed value) on one metric. "
                           "The rules and their keys come from the gate rule registry (rlops/gates/).",
            # each rule's branch names its keys (propertyNames), so an unknown key is reported once, with the rule's keys
            "type": "object", "required": ["metric", "rule"],
            "properties": properties, "allOf": branches}
