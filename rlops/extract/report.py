"""Account for every feedback event (used, dropped with a reason, or quarantined) and render the counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rlops.errors import StageFailed
from rlops.extract.params import SIGNALS, ExtractParams
from rlops.extract.records import LoadedFeedback, LoadedInteractions
from rlops.extract.rules import Pair

USED = "used"
# every reason an event can be dropped for, in the order they are checked; all appear in signals.json
DROP_REASONS = (
    "outside_window",  # given outside data.window
    "no_signal",  # a comment: kept for people, no training signal
    "signal_disabled",  # its kind is not in extract.signals
    "trivial_edit",  # the edit changed fewer than extract.edit_min_chars characters
    "rating_superseded",  # the same interaction was rated again later
    "rating_unpaired",  # no other answer to the same prompt was rated
    "rating_tie_or_small_gap",  # other answers were rated, none at least extract.rating_min_gap apart
    "identical_answers",  # chosen and rejected say the same thing
    "contaminated",  # the last user message is an eval prompt
    "duplicate_pair",  # an earlier pair has the same prompt, chosen and rejected
)


def signals_report(
    interactions: LoadedInteractions,
    feedback: LoadedFeedback,
    status: Mapping[str, str],
    pairs: Sequence[Pair],
) -> dict[str, Any]:
    """The content of signals.json; raises StageFailed if an event is unaccounted for or counted twice."""
    ids = [e.event_id for e in feedback.records]
    if set(status) != set(ids) or len(ids) != len(set(ids)):
        missing, extra = sorted(set(ids) - set(status)), sorted(set(status) - set(ids))
        raise StageFailed(f"extract accounting is broken (a bug): unaccounted events {missing[:5]}, unknown {extra[:5]}")
    unknown = sorted(set(status.values()) - {USED, *DROP_REASONS})
    if unknown:
        raise StageFailed(f"extract accounting is broken (a bug): unknown drop reasons {unknown}")
    kinds = {e.event_id: e.kind for e in feedback.records}
    used = Counter(kinds[eid] for eid, s in status.items() if s == USED)
    dropped = Counter(s for s in status.values() if s != USED)
    per_rule = Counter(p.rule for p in pairs)
    n_used, n_dropped, n_quarantined = sum(used.values()), sum(dropped.values()), len(feedback.quarantined)
    holds = feedback.read == n_used + n_dropped + n_quarantined
    if not holds:
        raise StageFailed(
            f"extract accounting is broken (a bug): {feedback.read} feedback lines read, "
            f"{n_used} used + {n_dropped} dropped + {n_quarantined} quarantined"
        )
    return {
        "records_read": {"interactions": interactions.read, "feedback": feedback.read},
        "quarantined": {"interactions": len(interactions.quarantined), "feedback": n_quarantined},
        "used": {kind: used[kind] for kind in SIGNALS},
        "dropped": {reason: dropped[reason] for reason in DROP_REASONS},
        "pairs": {**{rule: per_rule[rule] for rule in SIGNALS}, "total": len(pairs)},
        "invariant": {
            "feedback_read": feedback.read,
            "used": n_used,
            "dropped": n_dropped,
            "quarantined": n_quarantined,
            "holds": holds,
        },
    }


def signals_markdown(report: Mapping[str, Any], params: ExtractParams) -> str:
    """A short Markdown section for the pull request's report."""
    read, quarantined = report["records_read"], report["quarantined"]
    window = f"{params.window.start} to {params.window.end}" if params.window else "all dates"
    lines = [
        "### Training signals",
        "",
        f"Read {read['interactions']} interactions and {read['feedback']} feedback events "
        f"(`{params.interactions}`, `{params.feedback}`); window: {window}; "
        f"signals: {', '.join(params.signals)}.",
        "",
        "| rule | events used | pairs |",
        "|---|---:|---:|",
        *(f"| {rule} | {report['used'][rule]} | {report['pairs'][rule]} |" for rule in SIGNALS),
        f"| **total** | **{report['invariant']['used']}** | **{report['pairs']['total']}** |",
        "",
    ]
    dropped = [(reason, n) for reason, n in report["dropped"].items() if n]
    if dropped:
        lines += ["| dropped events | count |", "|---|---:|", *(f"| {r} | {n} |" for r, n in dropped), ""]
    lines.append(
        f"Quarantined (malformed, see `quarantine.jsonl`): {quarantined['interactions']} interaction "
        f"and {quarantined['feedback']} feedback lines. Every feedback event is counted once: "
        f"{report['invariant']['used']} used + {report['invariant']['dropped']} dropped + "
        f"{report['invariant']['quarantined']} quarantined = {report['invariant']['feedback_read']} read."
    )
    return "\n".join(lines) + "\n"
