"""non_inferior: the candidate is no worse than the incumbent by more than `margin`, with confidence.

Passes when the one-sided lower confidence bound of the mean per-item difference (positive = candidate better,
in the metric's direction) is at or above -margin. The lower bound, not the mean: a small sample that merely
happens to average near zero must not pass.
"""

from __future__ import annotations

from pydantic import Field

from rlops.components import Component, register
from rlops.gates import Evidence, GateSettings, Outcome


class NonInferior(GateSettings):
    margin: float = Field(0.0, title="Margin", ge=0,
                          description="non_inferior: the loss allowed, in the metric's units.")


def non_inferior(settings: NonInferior, evidence: Evidence) -> Outcome:
    lo, _ = evidence.bounds
    ok = lo >= -settings.margin
    return Outcome(ok, f"lower bound of the difference {lo:+.3f} is {'at or above' if ok else 'below'} "
                       f"-{settings.margin:g} ({evidence.confidence:.0%} paired bootstrap)", bound=lo)


COMPONENT = register(Component(
    "gate_rule", "non_inferior", "candidate no worse than the incumbent minus margin: the one-sided paired-bootstrap "
    "lower bound of candidate − incumbent is ≥ −margin",
    reads="paired per-item scores of one metric", writes="pass/fail, the lower bound and the reason",
    function=non_inferior, settings=NonInferior))
