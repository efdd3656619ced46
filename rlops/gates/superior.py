"""superior: the candidate is better than the incumbent by more than `margin`, with confidence.

Passes when the one-sided lower confidence bound of the mean per-item difference (positive = candidate better)
is above margin.
"""

from __future__ import annotations

from pydantic import Field

from rlops.components import Component, register
from rlops.gates import Evidence, GateSettings, Outcome


class Superior(GateSettings):
    margin: float = Field(0.0, title="Margin", ge=0, description="superior: the gain required, in the metric's units.")


def superior(settings: Superior, evidence: Evidence) -> Outcome:
    lo, _ = evidence.bounds
    ok = lo > settings.margin
    return Outcome(ok, f"lower bound of the difference {lo:+.3f} is {'above' if ok else 'not above'} "
                       f"{settings.margin:g}", bound=lo)


COMPONENT = register(Component(
    "gate_rule", "superior", "candidate better by more than margin: that lower bound is > margin",
    reads="paired per-item scores of one metric", writes="pass/fail, the lower bound and the reason",
    function=superior, settings=Superior))
