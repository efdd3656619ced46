"""OpenAI DPO fine-tuning JSONL -> two interactions with the same prompt and a pairwise event.

Each line is {"input": {"messages": [...], "tools": [...], "parallel_tool_calls": bool},
"preferred_output": [assistant messages], "non_preferred_output": [assistant messages]}.

| OpenAI DPO                                  | rlops                                                      |
|---------------------------------------------|------------------------------------------------------------|
| `input.messages`                            | input_messages of both interactions                        |
| `input.tools` (or legacy `input.functions`) | tool_definitions                                           |
| `preferred_output`                          | output_messages of the chosen interaction                  |
| `non_preferred_output`                      | output_messages of the rejected interaction                |
| the pair                                    | feedback kind pairwise, actor dataset:openai-dpo           |
| (none)                                      | ids from file name + line + content; agent from --policy/--agent-version; timestamp --timestamp |

Other keys (`input.parallel_tool_calls`, `metadata` ...) are counted as unmapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rlops.components import Importer, register
from rlops.observe.importers import SOURCE, WRITES
from rlops.observe.importers.builders import Context, Malformed
from rlops.observe.importers.messages import tool_definitions
from rlops.observe.importers.preference import conversation, pair, rows

READ_UNIT = "lines"


def convert(ctx: Context, source: Path) -> Iterator:
    def one(where, row):
        request = row.get("input")
        if not isinstance(request, dict):
            raise Malformed("input: missing, or not an object with messages")
        prompt = conversation(request.get("messages"), ctx, "user", "input.messages")
        tools = tool_definitions(request.get("tools") or request.get("functions"), ctx, "input.tools")
        chosen = conversation(row.get("preferred_output"), ctx, "assistant", "preferred_output")
        rejected = conversation(row.get("non_preferred_output"), ctx, "assistant", "non_preferred_output")
        ctx.note_unmapped(row, {"input", "preferred_output", "non_preferred_output"}, "")
        ctx.note_unmapped(request, {"messages", "tools", "functions"}, "input.")
        return pair(ctx, where, row, prompt, chosen, rejected, tools=tools)

    return rows(ctx, source, one)


register(Importer("importer", "openai-dpo", description="OpenAI DPO fine-tuning JSONL (preferred/non-preferred output)",
                   reads=SOURCE, writes=WRITES, function=convert,
                  read_unit=READ_UNIT))
