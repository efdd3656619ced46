"""Anthropic HH-RLHF transcripts -> two interactions with the same prompt and a pairwise event.

Each line is {"chosen": TRANSCRIPT, "rejected": TRANSCRIPT}; a transcript is "\\n\\nHuman: ...\\n\\nAssistant: ..."
turns, and the two differ only in the last Assistant turn.

| HH-RLHF                                     | rlops                                                      |
|---------------------------------------------|------------------------------------------------------------|
| turns before the last `Assistant:`          | input_messages of both interactions (Human -> user, Assistant -> assistant) |
| last `Assistant:` turn of `chosen`          | output_messages of the chosen interaction                  |
| last `Assistant:` turn of `rejected`        | output_messages of the rejected interaction                |
| the pair                                    | feedback kind pairwise {chosen_id, rejected_id}, actor dataset:hh-rlhf |
| (none)                                      | ids from file name + line + content; agent from --policy/--agent-version; timestamp --timestamp |

Quarantined: a line that is not JSON, lacks chosen/rejected, has no `Human:` turn first or no `Assistant:` turn
last, or whose two transcripts differ before the last Assistant turn. Other keys are counted as unmapped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlops.components import Importer, register
from rlops.observe.importers import SOURCE, WRITES
from rlops.observe.importers.builders import Context, Malformed
from rlops.observe.importers.preference import pair, rows

READ_UNIT = "lines"
_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
_ROLE = {"Human": "user", "Assistant": "assistant"}


def transcript(text: Any, field: str) -> list[dict[str, Any]]:
    """The turns of one transcript as messages; Malformed when it is not a Human-first transcript."""
    if not isinstance(text, str):
        raise Malformed(f"{field}: must be a transcript string, not {type(text).__name__}")
    pieces = _TURN.split(text)
    if pieces[0].strip():
        raise Malformed(f"{field}: text before the first '\\n\\nHuman:' turn")
    turns = [{"role": _ROLE[pieces[i]], "content": pieces[i + 1]} for i in range(1, len(pieces), 2)]
    if not turns or turns[0]["role"] != "user":
        raise Malformed(f"{field}: does not start with a '\\n\\nHuman:' turn")
    if turns[-1]["role"] != "assistant":
        raise Malformed(f"{field}: does not end with an '\\n\\nAssistant:' turn")
    return turns


def convert(ctx: Context, source: Path) -> Iterator:
    def one(where, row):
        chosen, rejected = transcript(row.get("chosen"), "chosen"), transcript(row.get("rejected"), "rejected")
        if chosen[:-1] != rejected[:-1]:
            differ = next((i for i, (a, b) in enumerate(zip(chosen, rejected)) if a != b),
                          min(len(chosen), len(rejected)) - 1)
            raise Malformed(f"chosen/rejected: the transcripts differ before their last Assistant turn "
                            f"(at turn {differ + 1})")
        ctx.note_unmapped(row, {"chosen", "rejected"}, "")
        return pair(ctx, where, row, chosen[:-1], chosen[-1:], rejected[-1:], scores=None)

    return rows(ctx, source, one)


register(Importer("importer", "hh-rlhf", description="Anthropic HH-RLHF transcripts (chosen/rejected)",
                   reads=SOURCE, writes=WRITES, function=convert,
                  read_unit=READ_UNIT))
