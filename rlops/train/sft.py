"""Method `sft`: supervised fine-tuning (TRL SFTTrainer) on the `sft` set, the loss on the completion only.

Each sft row is a conversation whose last message is the target answer (an edited reply, a well-rated one). It is
split into a prompt (every message before it) and a completion (it), TRL's prompt-completion form, and the loss is
taken on the completion's tokens only (`completion_only_loss`): the model learns the answer, not the question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from rlops import components, settings
from rlops.errors import StageFailed
from rlops.train import common


class SFTSettings(settings.TrainSettings):
    """Supervised fine-tuning (TRL SFTTrainer) on target answers, loss on the completion only, with LoRA adapters."""

    method: Literal["sft"] = Field("sft", description="The training method.")


def prompt_completion(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """{messages} -> {prompt: every message but the last, completion: [the last]}; the last must be the assistant's."""
    out = []
    for i, row in enumerate(rows):
        messages = row["messages"]
        if not messages or messages[-1].get("role") != "assistant":
            raise StageFailed(f"sft row {i + 1} does not end with an assistant message",
                              hint="the extract stage writes sft rows ending with the target answer; re-run it")
        out.append({"prompt": messages[:-1], "completion": messages[-1:]})
    return out


def run(ctx: common.TrainContext) -> dict[str, Any]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    p = ctx.settings
    tokenizer = common.load_tokenizer(ctx)
    rows = common.read_rows(ctx.inputs["sft"], ("messages",))
    if not rows:
        raise StageFailed(f"{ctx.inputs['sft']} holds no rows; sft needs its sft set",
                          hint="see artifacts/extract/signals.md for what was dropped and why")
    data = Dataset.from_list(prompt_completion(common.for_template(rows, tokenizer.chat_template)))
    model = common.load_model(ctx)
    print(f"{ctx.label}: sft on {len(data)} rows, {p.max_steps} steps, device {ctx.runtime.device}, "
          f"{ctx.runtime.precision}", flush=True)
    with common.scratch() as tmp:
        args = common.trl_config(SFTConfig, ctx, Path(tmp), completion_only_loss=True, packing=False)
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                             peft_config=common.peft_config(ctx),
                             callbacks=[common.progress_callback(ctx, ("mean_token_accuracy",))])
        history = common.train(ctx, trainer)
    return common.finish(ctx, trainer, tokenizer, history, {
        "rows": len(data), "token_accuracy": common.last(history, "mean_token_accuracy")})


METHOD = components.register(components.Method(
    "method", "sft", "Supervised fine-tuning on target answers (edits, well-rated replies), loss on the answer only",
    reads="sft: messages ending with the target answer", writes="adapter, merged weights, metrics, curve",
    function=run, settings=SFTSettings, sets=("sft",), trl_config="trl.trainer.sft_config:SFTConfig"))
