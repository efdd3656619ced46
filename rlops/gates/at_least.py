"""at_least: the candidate's mean reaches `value`, in the metric's direction (at or below it when lower is better)."""

from __future__ import annotations

from pydantic import Field

from rlops.components import Component, register
from rlops.gates import Evidence, GateSettings, Outcome


class AtLeast(GateSettings):
    value: float = Field(title="Value", description="at_least: the mean the candidate must reach.")


def at_least(settings: AtLeast, evidence: Evidence) -> Outcome:
    cand = evidence.mean("candidate")
    if evidence.higher_is_better:
        ok = cand >= settings.value
        return Outcome(ok, f"candidate {cand:.3f} is {'at or above' if ok else 'below'} {settings.value:g}")
    ok = cand <= settings.value
    return Outcome(ok, f"candidate {cand:.3f} is {'at or below' if ok else 'above'} {settings.value:g}")


COMPONENT = register(Component(
    "gate_rule", "at_least", "candidate mean ≥ value (≤ value for a lower-is-better metric)",
    reads="the candidate's per-item scores of one metric", writes="pass/fail and the reason",
    function=at_least, settings=AtLeast))
