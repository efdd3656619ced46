"""The gate: verdicts from per-item evaluation results and the gates declared in the cycle spec.

Each gate arrives complete from params.yaml: `rlops plan` fills what the spec leaves out from
pipelines/conf/config.yaml (`gate.rule_defaults`), so every threshold is visible there.

Pure functions. Means are compared on items paired by id (candidate and incumbent answered the same
prompts), with a one-sided paired bootstrap bound, which is tighter than comparing two separate means.

A gate whose items all tie (candidate and incumbent scored the same on every item: both at the floor, both at the
ceiling, or the same answers) is *uninformative*: the evaluation cannot tell the two models apart, so it gives no
reason to move production to the candidate, whatever the rule says. Such a gate fails unless the spec sets
`allow_uninformative: true` on it; either way the verdict and the report say so. A constant non-zero difference
is not a tie: every item moved the same way, which is the strongest signal there is.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class GateResult:
    metric: str
    rule: str
    passed: bool
    reason: str
    candidate: float | None = None
    incumbent: float | None = None
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    regressions: list[str] = field(default_factory=list)
    informative: bool = True  # False when every paired item tied: the evaluation could not tell the models apart


@dataclass(frozen=True)
class Verdict:
    passed: bool
    gates: list[GateResult]

    @property
    def uninformative(self) -> list[str]:
        """The metrics of the gates whose evaluation carried no information (allowed or not)."""
        return [g.metric for g in self.gates if not g.informative]

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "decision": "pass" if self.passed else "fail",
                "uninformative": self.uninformative, "gates": [asdict(g) for g in self.gates]}


def paired(candidate: list[dict], incumbent: list[dict], metric: str) -> list[tuple[str, float, float]]:
    """(item id, candidate score, incumbent score) for items of `suite.metric` that both models answered."""
    suite, name = metric.split(".", 1)

    def index(items):
        return {it["id"]: it["scores"][name] for it in items if it["suite"] == suite and name in it["scores"]}

    c, i = index(candidate), index(incumbent)
    return [(k, c[k], i[k]) for k in sorted(c.keys() & i.keys())]


def bootstrap_interval(diffs: list[float], samples: int, confidence: float, seed: int) -> tuple[float, float]:
    """One-sided lower and upper bounds on the mean difference, each at `confidence` (percentile bootstrap)."""
    if not diffs:
        return 0.0, 0.0
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(samples))
    alpha = 1.0 - confidence
    lo = means[max(0, int(alpha * samples) - 1)]
    hi = means[min(samples - 1, int((1.0 - alpha) * samples))]
    return lo, hi


def _mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def check_gate(gate: dict[str, Any], candidate: list[dict], incumbent: list[dict], bootstrap: dict[str, Any]) -> GateResult:
    metric, rule = gate["metric"], gate["rule"]
    rows = paired(candidate, incumbent, metric)
    if not rows:
        return GateResult(metric, rule, False, f"no evaluation items for {metric}: is the suite in evaluate.suites?")
    cand = _mean([r[1] for r in rows])
    inc = _mean([r[2] for r in rows])
    diffs = [r[1] - r[2] for r in rows]
    # a gate without its own confidence uses the bootstrap's (one value in params.yaml, not a default in code)
    confidence = float(gate.get("confidence", bootstrap["confidence"]))
    lo, hi = bootstrap_interval(diffs, int(bootstrap["samples"]), confidence, int(bootstrap["seed"]))
    common = dict(candidate=round(cand, 6), incumbent=round(inc, 6), diff=round(cand - inc, 6),
                  ci_low=round(lo, 6), ci_high=round(hi, 6), n=len(rows))
    if rule == "non_inferior":
        margin = float(gate["margin"])
        ok = lo >= -margin
        why = (f"lower bound of the difference {lo:+.3f} is {'at or above' if ok else 'below'} "
               f"-{margin:g} ({confidence:.0%} paired bootstrap)")
    elif rule == "superior":
        margin = float(gate["margin"])
        ok = lo > margin
        why = f"lower bound of the difference {lo:+.3f} is {'above' if ok else 'not above'} {margin:g}"
    elif rule == "at_least":
        value = float(gate["value"])
        ok = cand >= value
        why = f"candidate {cand:.3f} is {'at or above' if ok else 'below'} {value:g}"
    elif rule == "no_item_regression":
        allowed = int(gate["max_regressions"])
        regressed = [r[0] for r in rows if r[1] < r[2]]
        ok = len(regressed) <= allowed
        why = f"{len(regressed)} item(s) got worse (allowed: {allowed})"
        return uninformative(GateResult(metric, rule, ok, why, regressions=regressed, **common), gate, rows)
    else:
        return GateResult(metric, rule, False, f"unknown rule '{rule}'", **common)
    return uninformative(GateResult(metric, rule, ok, why, **common), gate, rows)


def uninformative(result: GateResult, gate: dict[str, Any], rows: list[tuple[str, float, float]]) -> GateResult:
    """The result as is when some item separates the models; otherwise marked uninformative, and failed unless the
    gate allows it (`allow_uninformative: true`)."""
    if any(c != i for _, c, i in rows):
        return result
    values = sorted({c for _, c, _ in rows})
    scored = f"all at {values[0]:.3f}" if len(values) == 1 else f"{len(values)} distinct scores, identical for both"
    why = (f"uninformative: candidate and incumbent tied on all {len(rows)} items ({scored}), so this evaluation "
           f"cannot tell them apart")
    if gate.get("allow_uninformative") is True:
        return replace(result, informative=False, reason=f"{why}; allowed by the spec (allow_uninformative); "
                                                            f"{result.reason}")
    return replace(result, passed=False, informative=False,
                   reason=f"{why}; fails unless the gate sets allow_uninformative: true (rule: {result.reason})")


def decide(gates: list[dict[str, Any]], candidate: list[dict], incumbent: list[dict], bootstrap: dict[str, Any]) -> Verdict:
    results = [check_gate(g, candidate, incumbent, bootstrap) for g in gates]
    return Verdict(passed=all(r.passed for r in results), gates=results)
