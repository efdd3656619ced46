"""TRL unpaired preference rows (KTO) -> one interaction and a binary rating event.

Rows are {"prompt": text, "completion": text, "label": bool}, or conversational with lists of messages.

| TRL unpaired                                | rlops                                                      |
|---------------------------------------------|------------------------------------------------------------|
| `prompt` (text: one user message)           | input_messages                                             |
| `completion` (text: one assistant message)  | output_messages                                            |
| `label` true / false                        | feedback kind rating {value 1 / 0, scale [0, 1]}, actor dataset:trl-unpaired |
| (none)                                      | ids from file name + line + content; agent from --policy/--agent-version; timestamp --timestamp |

Quarantined: a missing prompt or completion, a label that is not true/false. Other keys are counted as unmapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rlops.components import Importer, register
from rlops.observe.importers import SOURCE, WRITES
from rlops.observe.importers.builders import Context, Malformed
from rlops.observe.importers.preference import conversation, rows, unpaired

READ_UNIT = "rows"


def convert(ctx: Context, source: Path) -> Iterator:
    def one(where, row):
        label = row.get("label")
        if not isinstance(label, bool):
            raise Malformed(f"label: must be true or false, not {label!r}")
        prompt = conversation(row.get("prompt"), ctx, "user", "prompt")
        completion = conversation(row.get("completion"), ctx, "assistant", "completion")
        ctx.note_unmapped(row, {"prompt", "completion", "label"}, "")
        return unpaired(ctx, where, row, prompt, completion, label)

    return rows(ctx, source, one)


register(Importer("importer", "trl-unpaired", description="TRL unpaired preference rows {prompt, completion, label}",
                   reads=SOURCE, writes=WRITES, function=convert,
                  read_unit=READ_UNIT))
