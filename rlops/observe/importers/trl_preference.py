"""TRL preference rows -> two interactions with the same prompt and a pairwise event.

Standard rows are {"prompt": text, "chosen": text, "rejected": text}; conversational rows hold lists of messages.
Without a `prompt` (TRL's implicit prompt), conversational chosen/rejected share their prompt as a prefix.

| TRL preference                              | rlops                                                      |
|---------------------------------------------|------------------------------------------------------------|
| `prompt` (text: one user message)           | input_messages of both interactions                        |
| `chosen` (text: one assistant message)      | output_messages of the chosen interaction                  |
| `rejected`                                  | output_messages of the rejected interaction                |
| implicit prompt: shared prefix of chosen/rejected | input_messages; the rest are the answers             |
| the pair                                    | feedback kind pairwise, actor dataset:trl-preference       |
| `score_chosen`, `score_rejected` (if any)   | feedback kind rating (scale from --scale score=LO,HI, default [1, 10]) |
| (none)                                      | ids from file name + line + content; agent from --policy/--agent-version; timestamp --timestamp |

Quarantined: standard rows without a prompt (a text cannot be split into prompt and answer), rows whose answers are
not assistant messages. Other keys are counted as unmapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rlops.components import Importer, register
from rlops.observe.importers import SOURCE, WRITES
from rlops.observe.importers.builders import Context, Malformed
from rlops.observe.importers.preference import conversation, pair, rows, split_shared

READ_UNIT = "rows"


def convert(ctx: Context, source: Path) -> Iterator:
    def one(where, row):
        chosen = conversation(row.get("chosen"), ctx, "assistant", "chosen")
        rejected = conversation(row.get("rejected"), ctx, "assistant", "rejected")
        if "prompt" in row:
            prompt = conversation(row["prompt"], ctx, "user", "prompt")
        elif isinstance(row.get("chosen"), str):
            raise Malformed("prompt: missing; a standard (text) row needs one, only conversational rows may "
                            "leave the prompt implicit")
        else:
            prompt, chosen, rejected = split_shared(chosen, rejected)
        scored = "score_chosen" in row or "score_rejected" in row
        ctx.note_unmapped(row, {"prompt", "chosen", "rejected", "score_chosen", "score_rejected"}, "")
        return pair(ctx, where, row, prompt, chosen, rejected, score_name="score",
                    scores=(row.get("score_chosen"), row.get("score_rejected")) if scored else None)

    return rows(ctx, source, one)


register(Importer("importer", "trl-preference", description="TRL preference rows {prompt, chosen, rejected}, standard or conversational",
                   reads=SOURCE, writes=WRITES, function=convert,
                  read_unit=READ_UNIT))
