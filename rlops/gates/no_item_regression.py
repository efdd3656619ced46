"""no_item_regression: at most `max_regressions` items score worse for the candidate than for the incumbent.

"Worse" follows the metric's direction (a longer answer is worse on a lower-is-better length metric). The verdict
lists the items that got worse.
"""

from __future__ import annotations

from pydantic import Field

from rlops.components import Component, register
from rlops.gates import Evidence, GateSettings, Outcome


class NoItemRegression(GateSettings):
    max_regressions: int = Field(0, title="Maximum regressions", ge=0,
                                 description="no_item_regression: how many items may score worse than the "
                                             "incumbent's.")


def no_item_regression(settings: NoItemRegression, evidence: Evidence) -> Outcome:
    regressed = [i for i, d in zip(evidence.ids, evidence.diffs) if d < 0]
    ok = len(regressed) <= settings.max_regressions
    return Outcome(ok, f"{len(regressed)} item(s) got worse (allowed: {settings.max_regressions})",
                   regressions=regressed)


COMPONENT = register(Component(
    "gate_rule", "no_item_regression", "no item scores worse than the incumbent's, or at most max_regressions",
    reads="paired per-item scores of one metric", writes="pass/fail, the items that got worse and the reason",
    function=no_item_regression, settings=NoItemRegression))
