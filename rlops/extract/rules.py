"""Rules that turn feedback events into preference pairs, one per signal kind.

Each rule takes the usable events of its kind and returns the pairs it made plus, for every
event that made none, the reason. `RULES` maps a signal name to its rule.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlops.extract.params import ExtractParams
from rlops.extract.records import FeedbackEvent, Interaction, Message, message


@dataclass(frozen=True)
class Pair:
    rule: str
    prompt: tuple[Message, ...]
    chosen: tuple[Message, ...]
    rejected: tuple[Message, ...]
    interaction_ids: tuple[str, ...]  # chosen first where there are two
    event_ids: tuple[str, ...]

    def sort_key(self) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        # ids are unique, so this orders pairs the same way whatever order the logs came in
        return (self.rule, self.event_ids, self.interaction_ids)

    def to_row(self) -> dict[str, Any]:
        """The row in TRL's conversational preference format, provenance under `meta`."""
        return {
            "prompt": list(self.prompt),
            "chosen": list(self.chosen),
            "rejected": list(self.rejected),
            "meta": {"rule": self.rule, "interaction_ids": list(self.interaction_ids), "event_ids": list(self.event_ids)},
        }


@dataclass
class RuleResult:
    pairs: list[Pair] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # event_id -> reason, for events that made no pair


Rule = Callable[[Sequence[FeedbackEvent], Mapping[str, Interaction], ExtractParams], RuleResult]


def text_of(messages: Sequence[Message]) -> str:
    return "\n".join(m["content"] for m in messages)


def chars_changed(a: str, b: str, cap: int) -> int:
    """Levenshtein distance between a and b, or `cap` if it is at least `cap` (banded, O(len * cap))."""
    if cap <= 0:
        return 0 if a == b else cap
    # strip what both share at the ends: an edit usually touches a small part of the text
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start : len(a) - end], b[start : len(b) - end]
    if abs(len(a) - len(b)) >= cap:
        return cap
    if not a or not b:
        return max(len(a), len(b))
    big = cap  # any value >= cap means "at least cap"
    previous = [j if j < cap else big for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        current = [big] * (len(b) + 1)
        current[0] = i if i < cap else big
        for j in range(max(1, i - cap + 1), min(len(b), i + cap - 1) + 1):
            current[j] = min(
                previous[j] + 1,
                current[j - 1] + 1,
                previous[j - 1] + (a[i - 1] != b[j - 1]),
                big,
            )
        if min(current) >= cap:
            return cap
        previous = current
    return min(previous[len(b)], cap)


def pairs_from_edits(
    events: Sequence[FeedbackEvent], interactions: Mapping[str, Interaction], params: ExtractParams
) -> RuleResult:
    """An edited answer is preferred over the original; edits of fewer than edit_min_chars characters are dropped."""
    out = RuleResult()
    for event in events:
        original = interactions[event.interaction_id]
        edited = tuple(message(m) for m in event.details["output_messages"])
        changed = chars_changed(text_of(original.output_messages), text_of(edited), params.edit_min_chars)
        if changed < params.edit_min_chars:
            out.dropped[event.event_id] = "trivial_edit"
            continue
        out.pairs.append(
            Pair("edit", original.prompt, edited, original.output_messages, (original.interaction_id,), (event.event_id,))
        )
    return out


def pairs_from_pairwise(
    events: Sequence[FeedbackEvent], interactions: Mapping[str, Interaction], params: ExtractParams
) -> RuleResult:
    """The answer chosen in an A/B comparison is preferred (loading checked both share one input)."""
    out = RuleResult()
    for event in events:
        chosen = interactions[event.details["chosen_id"]]
        rejected = interactions[event.details["rejected_id"]]
        out.pairs.append(
            Pair(
                "pairwise",
                chosen.prompt,
                chosen.output_messages,
                rejected.output_messages,
                (chosen.interaction_id, rejected.interaction_id),
                (event.event_id,),
            )
        )
    return out


def prompt_key(prompt: Sequence[Message]) -> tuple[tuple[str, str], ...]:
    """A prompt compared loosely: case and runs of whitespace do not matter."""
    return tuple((m["role"], " ".join(m["content"].lower().split())) for m in prompt)


def pairs_from_ratings(
    events: Sequence[FeedbackEvent], interactions: Mapping[str, Interaction], params: ExtractParams
) -> RuleResult:
    """Of two answers to the same prompt rated at least rating_min_gap apart, the higher one is preferred.

    One pair per such couple. An interaction rated twice keeps its latest rating.
    """
    out = RuleResult()
    latest: dict[str, FeedbackEvent] = {}
    for event in sorted(events, key=lambda e: (e.timestamp, e.event_id)):
        if event.interaction_id in latest:
            out.dropped[latest[event.interaction_id].event_id] = "rating_superseded"
        latest[event.interaction_id] = event

    groups: dict[tuple[tuple[str, str], ...], list[FeedbackEvent]] = {}
    for iid in sorted(latest):
        groups.setdefault(prompt_key(interactions[iid].prompt), []).append(latest[iid])

    paired: set[str] = set()
    for group in groups.values():
        for a, b in itertools.combinations(group, 2):
            if a.details["scale"] != b.details["scale"]:
                continue  # points on different scales are not comparable
            gap = abs(a.details["value"] - b.details["value"])
            if gap == 0 or gap < params.rating_min_gap:
                continue  # a tie says nothing about which answer is better
            hi, lo = (a, b) if a.details["value"] > b.details["value"] else (b, a)
            chosen, rejected = interactions[hi.interaction_id], interactions[lo.interaction_id]
            out.pairs.append(
                Pair(
                    "rating",
                    chosen.prompt,
                    chosen.output_messages,
                    rejected.output_messages,
                    (chosen.interaction_id, rejected.interaction_id),
                    (hi.event_id, lo.event_id),
                )
            )
            paired.update((hi.event_id, lo.event_id))
        for event in group:
            if event.event_id not in paired:
                out.dropped[event.event_id] = "rating_tie_or_small_gap" if len(group) > 1 else "rating_unpaired"
    return out


RULES: dict[str, Rule] = {"edit": pairs_from_edits, "pairwise": pairs_from_pairwise, "rating": pairs_from_ratings}
