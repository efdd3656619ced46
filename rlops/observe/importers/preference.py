"""Shared by the dataset importers: a preference row becomes two interactions with the same prompt and a pairwise
event (plus rating events when the row has scores); an unpaired row becomes one interaction and a binary rating.

Datasets carry no ids, agents or times: ids derive from the file name, line and content of the row; the agent is
{name: --policy or the format, version: --agent-version or 'imported'}; times are --timestamp (or its default).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rlops.observe.importers.builders import (
    Context,
    Malformed,
    actor,
    derived_id,
    feedback,
    interaction,
    number,
    row_key,
)
from rlops.observe.importers.messages import messages
from rlops.observe.importers.source import Where

Out = Iterator[tuple[str, dict[str, Any], Where]]


def conversation(value: Any, ctx: Context, default_role: str, field: str) -> list[dict[str, Any]]:
    """Messages of one dataset field (a string is one message of `default_role`); Malformed when empty."""
    if value is None:
        raise Malformed(f"{field}: missing")
    if not isinstance(value, (str, list, dict)):
        raise Malformed(f"{field}: must be text or a list of messages, not {type(value).__name__}")
    msgs = messages(value, ctx, default_role, field)
    if not msgs:
        raise Malformed(f"{field}: empty")
    return msgs


def answers(msgs: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """An answer must be assistant messages (tool calls and tool results allowed between them)."""
    if not msgs:
        raise Malformed(f"{field}: no answer after the prompt")
    if msgs[0]["role"] != "assistant":
        raise Malformed(f"{field}: the answer starts with a {msgs[0]['role']} message, not an assistant message")
    return msgs


def split_shared(chosen: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> tuple[list, list, list]:
    """Implicit prompt: the longest shared prefix of two conversations, ending before an assistant turn."""
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    while n > 0 and chosen[n - 1]["role"] == "assistant":
        n -= 1  # an answer that starts the same way is still part of the answer
    if n == 0:
        raise Malformed("chosen/rejected: no shared prompt (the conversations differ from their first message)")
    return chosen[:n], chosen[n:], rejected[n:]


def pair(ctx: Context, where: Where, row: Any, prompt: list[dict[str, Any]], chosen: list[dict[str, Any]],
         rejected: list[dict[str, Any]], *, scores: tuple[Any, Any] | None = None, score_name: str = "score",
         default_scale: tuple[float, float] = (1, 10), system: str | None = None,
         tools: list[dict[str, Any]] | None = None) -> Out:
    """Two interactions (chosen, rejected) and a pairwise event; rating events for the scores, if any."""
    chosen, rejected = answers(chosen, "chosen"), answers(rejected, "rejected")
    if chosen == rejected:
        ctx.skipped["chosen and rejected are the same answer"] += 1
        return
    ratings = []
    if scores is not None:
        lo, hi = ctx.options.scales.get(score_name, default_scale)
        ctx.scales[score_name] = [lo, hi]
        for side, value in zip(("chosen", "rejected"), scores):
            if value is None:
                continue
            if number(value) is None:
                raise Malformed(f"score_{side}: {value!r} is not a number")
            if not lo <= value <= hi:
                raise Malformed(f"score_{side}: {value} is outside the scale [{lo}, {hi}] "
                                f"(set --scale {score_name}=LO,HI)")
            ratings.append((side, value, [lo, hi]))
    when = ctx.default_timestamp("timestamp")
    agent = ctx.agent()
    key = row_key(where, row)
    ids = {side: derived_id(ctx.fmt, key, side) for side in ("chosen", "rejected")}
    for side, output in (("chosen", chosen), ("rejected", rejected)):
        yield "interaction", interaction(interaction_id=ids[side], timestamp=when, agent=agent,
                                         system_instructions=system, tool_definitions=tools,
                                         input_messages=prompt, output_messages=output), where
    who = actor("dataset", ctx.fmt)
    yield "feedback", feedback(event_id=derived_id(ctx.fmt, key, "pairwise"), interaction_id=ids["chosen"],
                               timestamp=when, actor=who, kind="pairwise",
                               details={"chosen_id": ids["chosen"], "rejected_id": ids["rejected"]}), where
    for side, value, scale in ratings:
        yield "feedback", feedback(event_id=derived_id(ctx.fmt, key, f"rating-{side}"),
                                   interaction_id=ids[side], timestamp=when, actor=who, kind="rating",
                                   details={"value": value, "scale": scale}), where


def unpaired(ctx: Context, where: Where, row: Any, prompt: list[dict[str, Any]], completion: list[dict[str, Any]],
             label: bool) -> Out:
    """One interaction and a binary rating (1 desirable, 0 undesirable)."""
    completion = answers(completion, "completion")
    when = ctx.default_timestamp("timestamp")
    key = row_key(where, row)
    iid = derived_id(ctx.fmt, key, "completion")
    yield "interaction", interaction(interaction_id=iid, timestamp=when, agent=ctx.agent(), input_messages=prompt,
                                     output_messages=completion), where
    yield "feedback", feedback(event_id=derived_id(ctx.fmt, key, "label"), interaction_id=iid, timestamp=when,
                               actor=actor("dataset", ctx.fmt), kind="rating",
                               details={"value": 1 if label else 0, "scale": [0, 1]}), where


def rows(ctx: Context, source: Any, convert) -> Out:
    """Run `convert(where, row)` on every row; a Malformed row is quarantined with its reason."""
    for where, row in ctx.records(source):
        if not isinstance(row, dict):
            ctx.quarantine(where, f"a row must be a JSON object, not {type(row).__name__}")
            continue
        try:
            with ctx.tentative():
                out = list(convert(where, row))  # a row is all or nothing: nothing is written from a bad one
        except Malformed as e:
            ctx.quarantine(where, str(e))
            continue
        yield from out
