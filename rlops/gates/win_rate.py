"""win_rate: a judge prefers the candidate's answers to the incumbent's often enough, with confidence.

The judge stage (rlops/evaluate/judge.py, DVC stage `judge`) asks the gate's judge about every item of the suite
in both orders, candidate first and incumbent first, and records both answers. The candidate wins an item when both
orders pick it and loses when both pick the incumbent; a verdict that flips with the order, or a tie, is a tie and
counts half. The win-rate is (wins + ties/2) / n; the gate passes when its one-sided lower bound at the gate's
confidence is at or above `min`.

The bound is Wilson's, not the paired bootstrap of the other rules: a perfect record of 5 wins out of 5 has no
spread, so its bootstrap bound is 1.0 and would pass any min, while Wilson's (n / (n + z²) there) grows with the
number of items, so a handful of items cannot pass and `rlops plan` can say how many would be needed. With ties the
per-item score is 0, ½ or 1, whose variance is at most the p(1 − p) Wilson assumes, so the bound errs low.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from rlops.components import Component, register
from rlops.gates import Evidence, GateSettings, Outcome, wilson_lower

METRIC = "win_rate"  # a win_rate gate's metric is <suite>.win_rate
DEFAULT_JUDGE = {"type": "rubric", "rubric": "support-quality"}
WIN, TIE, LOSS = "win", "tie", "loss"
SCORE = {WIN: 1.0, TIE: 0.5, LOSS: 0.0}


class WinRate(GateSettings):
    judged: ClassVar[bool] = True

    min: float = Field(title="Minimum win-rate", ge=0, le=1,
                       description="win_rate: the value the one-sided lower bound of the judged win-rate must reach "
                                   "(ties count half; 0.5 is a draw).")
    judge: dict[str, Any] = Field(
        DEFAULT_JUDGE, title="Judge",
        description="win_rate: the pairwise judge, with the keys of extract.judge: {type: rubric, rubric: "
                    "support-quality}, {type: transformers, model: PATH} or {type: http, url: URL, model: NAME}. "
                    "The judge stage asks it about every item in both orders.")

    @field_validator("judge")
    @classmethod
    def _typed(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("type"), str):
            raise ValueError("needs a judge type, e.g. {type: rubric, rubric: support-quality}")
        return value


def outcome(forward: str, backward: str) -> str:
    """The candidate's result from the judge's two answers: `forward` with the candidate shown first, `backward`
    with the incumbent first. Only a verdict that survives the swap counts."""
    if (forward, backward) == ("first", "second"):
        return WIN
    if (forward, backward) == ("second", "first"):
        return LOSS
    return TIE


def win_rate(settings: WinRate, evidence: Evidence) -> Outcome:
    scores = evidence.candidate
    n = len(scores)
    wins, ties = scores.count(1.0), scores.count(0.5)
    rate = sum(scores) / n if n else 0.0
    lo = wilson_lower(sum(scores), n, evidence.confidence)
    ok = lo >= settings.min
    return Outcome(ok, f"win-rate {rate:.3f} ({wins} won, {ties} tied, {n - wins - ties} lost of {n}); its lower "
                       f"bound {lo:.3f} is {'at or above' if ok else 'below'} {settings.min:g} "
                       f"({evidence.confidence:.0%} one-sided Wilson)", bound=lo)


COMPONENT = register(Component(
    "gate_rule", "win_rate", "a judge compares candidate and incumbent answers item by item in both orders (a "
    "verdict that flips is a tie, ties count half): the one-sided Wilson lower bound of the win-rate is ≥ min",
    reads="the judge stage's per-item verdicts (artifacts/judge/judgments.jsonl)",
    writes="pass/fail, the lower bound of the win-rate and the reason", function=win_rate, settings=WinRate))
