"""UltraFeedback-binarized rows -> two interactions, a pairwise event and two rating events.

Each row (HuggingFaceH4/ultrafeedback_binarized) is {prompt, prompt_id, chosen: [messages], rejected: [messages],
messages, score_chosen, score_rejected}; chosen and rejected are full conversations ending in the answer.

| UltraFeedback-binarized                     | rlops                                                      |
|---------------------------------------------|------------------------------------------------------------|
| `chosen` without its final assistant turn   | input_messages of both interactions (must equal rejected's) |
| final assistant turn of `chosen`/`rejected` | output_messages of the chosen/rejected interaction         |
| the pair                                    | feedback kind pairwise, actor dataset:ultrafeedback        |
| `score_chosen`, `score_rejected`            | feedback kind rating {value, scale [1, 10]} (set --scale score=LO,HI) |
| `prompt`                                    | checked against the prompt's last user message; not copied |
| `messages`                                  | a copy of `chosen`; not copied                             |
| (none)                                      | ids from file name + line + content; agent from --policy/--agent-version; timestamp --timestamp |

Other keys (`prompt_id`, `source` ...) are counted as unmapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rlops.components import Importer, register
from rlops.observe.importers import SOURCE, WRITES
from rlops.observe.importers.builders import Context, Malformed
from rlops.observe.importers.messages import final_assistant
from rlops.observe.importers.preference import conversation, pair, rows

READ_UNIT = "rows"


def convert(ctx: Context, source: Path) -> Iterator:
    def one(where, row):
        chosen = conversation(row.get("chosen"), ctx, "user", "chosen")
        rejected = conversation(row.get("rejected"), ctx, "user", "rejected")
        prompt, chosen_answer = final_assistant(chosen)
        rejected_prompt, rejected_answer = final_assistant(rejected)
        if not prompt:
            raise Malformed("chosen: no prompt before the answer")
        if prompt != rejected_prompt:
            raise Malformed("chosen/rejected: the two conversations have different prompts")
        text = row.get("prompt")
        users = [m for m in prompt if m["role"] == "user"]
        if isinstance(text, str) and users and users[-1]["content"] != text:
            raise Malformed("prompt: differs from the last user message of chosen")
        ctx.note_unmapped(row, {"chosen", "rejected", "prompt", "messages", "score_chosen", "score_rejected"}, "")
        return pair(ctx, where, row, prompt, chosen_answer, rejected_answer,
                    scores=(row.get("score_chosen"), row.get("score_rejected")), score_name="score")

    return rows(ctx, source, one)


register(Importer("importer", "ultrafeedback", description="UltraFeedback-binarized (prompt, chosen, rejected, scores)",
                   reads=SOURCE, writes=WRITES, function=convert,
                  read_unit=READ_UNIT))
