"""The gate: verdicts from per-item evaluation results and the gates declared in the cycle spec.

Each gate arrives complete from params.yaml: `rlops plan` fills what the spec leaves out from
pipelines/conf/config.yaml (`gate.rule_defaults`) and the rule's own defaults, so every threshold is visible there.
Each rule is a component looked up by name (rlops/gates/, one module per rule); this module pairs the items,
orients them by the metric's direction and hands them to the rule.

Pure functions. Means are compared on items paired by id (candidate and incumbent answered the same
prompts), with a one-sided paired bootstrap bound, which is tighter than comparing two separate means.

Direction: a metric's `higher_is_better` comes from the caller's `directions` (e.g. read from a suite's results,
for metrics not known statically), else from the metric registry (rlops/evaluate/metrics.py). The differences
`diff`, `ci_low` and `ci_high` in a verdict are oriented so that positive means the candidate is better; for a
lower-is-better metric they are incumbent − candidate, and the gate says so (`higher_is_better: false`).

A gate whose items all tie (candidate and incumbent scored the same on every item: both at the floor, both at the
ceiling, or the same answers) is *uninformative*: the evaluation cannot tell the two models apart, so it gives no
reason to move production to the candidate, whatever the rule says. Such a gate fails unless the spec sets
`allow_uninformative: true` on it; either way the verdict and the report say so. A constant non-zero difference
is not a tie: every item moved the same way, which is the strongest signal there is.

A judged rule (win_rate) reads the judge stage's per-item verdicts (`judgments`, artifacts/judge/judgments.jsonl)
instead of the suite's scores: each item's outcome is recomputed here from the judge's two recorded answers (both
orders), never from a re-run of the judge, so `rlops promote` and `audit verify` recompute it from the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from rlops import components
from rlops.errors import InvalidInput
from rlops.gates import Evidence, bootstrap_interval  # noqa: F401  (bootstrap_interval: part of this module's API)


@dataclass(frozen=True)
class GateResult:
    metric: str
    rule: str
    passed: bool
    reason: str
    candidate: float | None = None
    incumbent: float | None = None
    diff: float | None = None  # mean per-item difference, positive = candidate better (in the metric's direction)
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    regressions: list[str] = field(default_factory=list)
    informative: bool = True  # False when every paired item tied: the evaluation could not tell the models apart
    higher_is_better: bool | None = None  # the metric's direction, as the gate read it
    bound: float | None = None  # the bound the rule compared, when it compared one (the report shows it)


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


def direction(metric: str, directions: Mapping[str, bool] | None = None) -> bool | None:
    """Whether higher is better for `suite.metric`: the caller's `directions` first, then the metric registry."""
    if directions and metric in directions:
        return bool(directions[metric])
    try:
        return components.get("metric", metric.split(".", 1)[-1]).higher_is_better
    except InvalidInput:
        return None


def judged(judgments: list[dict], metric: str, judge: Mapping[str, Any]) -> list[tuple[str, float, float]]:
    """(item id, candidate score, incumbent score) from the judge's recorded verdicts on `suite.win_rate` by the
    judge configured as `judge`: 1/0 for a candidate win, ½/½ for a tie, 0/1 for a loss."""
    from rlops.gates.win_rate import SCORE, outcome

    suite = metric.split(".", 1)[0]
    rows = {}
    for j in judgments:
        if j.get("suite") == suite and (j.get("judge") or {}).get("config") == dict(judge):
            score = SCORE[outcome(j.get("forward"), j.get("backward"))]
            rows[str(j["id"])] = (str(j["id"]), score, 1.0 - score)
    return [rows[k] for k in sorted(rows)]


def check_gate(gate: dict[str, Any], candidate: list[dict], incumbent: list[dict], bootstrap: dict[str, Any],
               directions: Mapping[str, bool] | None = None, where: str = "gate",
               judgments: list[dict] | None = None) -> GateResult:
    metric, name = gate["metric"], gate["rule"]
    try:
        rule = components.get("gate_rule", name)
    except InvalidInput:
        known = ", ".join(components.names("gate_rule"))
        return GateResult(metric, name, False, f"unknown rule '{name}'; known: {known}")
    if getattr(rule.settings, "judged", False):
        settings, problems = components.validate(rule, gate, "params.yaml", where)
        if settings is None:
            return GateResult(metric, name, False, "; ".join(str(p) for p in problems))
        from rlops.gates.win_rate import METRIC

        if metric.split(".", 1)[-1] != METRIC:
            return GateResult(metric, name, False, f"a {name} gate's metric is <suite>.{METRIC}, not {metric}")
        rows, higher = judged(judgments or [], metric, settings.judge), True
        if not rows:
            return GateResult(metric, name, False, f"no judgments for {metric} by the judge {settings.judge}: run the "
                                                   "judge stage (dvc repro) after evaluating both models")
    else:
        rows = paired(candidate, incumbent, metric)
        if not rows:
            return GateResult(metric, name, False, f"no evaluation items for {metric}: is the suite in evaluate.suites?")
        higher = direction(metric, directions)
        if higher is None:
            return GateResult(metric, name, False, f"the direction of metric {metric} is unknown: register it as a "
                                                   "metric component (higher_is_better) or pass it from the suite's "
                                                   "results")
        settings, problems = components.validate(rule, gate, "params.yaml", where)
        if settings is None:
            return GateResult(metric, name, False, "; ".join(str(p) for p in problems))
    # a gate without its own confidence uses the bootstrap's (one value in params.yaml, not a default in code)
    confidence = float(bootstrap["confidence"] if settings.confidence is None else settings.confidence)
    evidence = Evidence(metric, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], higher,
                        confidence, int(bootstrap["samples"]), int(bootstrap["seed"]))
    lo, hi = evidence.bounds
    cand, inc = evidence.mean("candidate"), evidence.mean("incumbent")
    outcome = rule.function(settings, evidence)
    reason = outcome.reason if higher else f"{outcome.reason} (lower is better: differences are incumbent − " \
                                           "candidate)"
    result = GateResult(metric, name, outcome.passed, reason, candidate=round(cand, 6), incumbent=round(inc, 6),
                        diff=round((cand - inc) if higher else (inc - cand), 6), ci_low=round(lo, 6),
                        ci_high=round(hi, 6), n=len(rows), regressions=list(outcome.regressions),
                        higher_is_better=higher, bound=None if outcome.bound is None else round(outcome.bound, 6))
    return uninformative(result, gate, rows)


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


def decide(gates: list[dict[str, Any]], candidate: list[dict], incumbent: list[dict], bootstrap: dict[str, Any],
           directions: Mapping[str, bool] | None = None, judgments: list[dict] | None = None) -> Verdict:
    """The verdict of every gate; `directions` (suite.metric -> higher_is_better) for metrics the registry lacks;
    `judgments` (the judge stage's rows) for judged rules such as win_rate."""
    results = [check_gate(g, candidate, incumbent, bootstrap, directions, f"gate.rules[{i}]", judgments)
               for i, g in enumerate(gates)]
    return Verdict(passed=all(r.passed for r in results), gates=results)
