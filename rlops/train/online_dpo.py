"""Method `online_dpo`: online preference tuning in rounds over TRL's stable DPOTrainer.

Each round samples two answers to every logged prompt (the `prompts` set, rlops/train/rl.py) from the current
policy, has the judge (`train.judge`, any judge type of rlops/extract/judges.py) compare them in both orders, keeps
the pairs whose two verdicts agree (an order-dependent verdict or a tie is dropped) and trains DPO on them. The
reference stays the parent (with LoRA: the adapters disabled), so `beta` anchors every round to it.

TRL 1.16's OnlineDPOTrainer lives under `trl.experimental` (it warns on import); this method uses the stable
DPOTrainer instead. Every round's judgments are saved, kept or not, so the data behind the update is auditable:
`adapter/rounds/round-N.jsonl` (inside the adapter folder, a DVC output, hashed in dvc.lock), one line per prompt
with both answers, both verdicts and the pair trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from rlops import components, settings
from rlops.errors import StageFailed
from rlops.io import atomic_dir
from rlops.train import common, rewards, rl

ROUNDS_DIR = "rounds"  # inside adapter/


class OnlineDPOSettings(settings.TrainSettings):
    """Online preference tuning: rounds of sampling, judging in both orders and DPO (TRL DPOTrainer), with LoRA."""

    NOT_TRL: ClassVar[tuple[str, ...]] = (*settings.TrainSettings.NOT_TRL, "rounds", "max_new_tokens", "temperature",
                                          "max_prompts", "judge")

    method: Literal["online_dpo"] = Field("online_dpo", description="The training method.")
    beta: float = Field(0.1, gt=0, description="Strength of the KL anchor to the parent.")
    max_steps: int = Field(10, ge=1, description="Optimizer steps per round.")
    rounds: int = Field(2, ge=1, description="Rounds of sampling, judging and training.")
    max_new_tokens: int = Field(64, ge=1, description="Tokens sampled per answer.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the answers.")
    max_prompts: int | None = Field(None, ge=1, description="Use at most this many prompts per round (the first, in "
                                                            "file order); null: every prompt.")
    judge: dict[str, Any] = Field(
        {"type": "rubric", "rubric": "support-quality"},
        description="The judge that compares the two answers, as extract.judge writes it: {type: rubric, rubric: "
                    "NAME}, {type: transformers, model: FOLDER} or {type: http, url: ..., model: ...}.")

    @field_validator("judge")
    @classmethod
    def _judge(cls, value: dict[str, Any]) -> dict[str, Any]:
        return rewards.check_judge(value)


def sample_answers(model, tokenizer, prompts: list[list[dict]], n: int, max_new_tokens: int, temperature: float,
                   seed: int) -> list[list[list[dict]]]:
    """`n` sampled answers (each [assistant message]) per prompt; seeded, so a run repeats."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    out = []
    for i, prompt in enumerate(prompts):
        torch.manual_seed(seed * 100003 + i)
        ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True, return_tensors="pt")
        ids = {k: v.to(device) for k, v in ids.items()}
        with torch.inference_mode():
            gen = model.generate(**ids, do_sample=True, temperature=temperature, max_new_tokens=max_new_tokens,
                                 num_return_sequences=n, pad_token_id=tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(gen[:, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        out.append([[{"role": "assistant", "content": t}] for t in texts])
    return out


def judge_round(judge, prompts: list[list[dict]], answers: list[list[list[dict]]]) -> list[dict[str, Any]]:
    """One record per prompt: both answers, both verdicts, and chosen/rejected when the verdicts agree."""
    from rlops.extract.judges import judge_pair

    records = []
    for prompt, (a, b) in zip(prompts, answers):
        j = judge_pair(judge, prompt, a, b)
        record = {"prompt": prompt, "a": a, "b": b, "forward": j.forward, "backward": j.backward, "winner": j.winner}
        if j.winner:
            record["chosen"], record["rejected"] = (a, b) if j.winner == "a" else (b, a)
        records.append(record)
    return records


def run(ctx: common.TrainContext) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    from rlops.extract.judges import build_judge

    p = ctx.settings
    tokenizer = common.load_tokenizer(ctx)
    prompts = [r["prompt"] for r in rl.read_prompts(ctx.root, ctx.params)][:p.max_prompts]
    if not prompts:
        raise StageFailed("the extract sets hold no prompts; online_dpo samples answers to the logged prompts",
                          hint="see artifacts/extract/signals.md for what was dropped and why")
    prompts = [r["prompt"] for r in common.for_template([{"prompt": q} for q in prompts], tokenizer.chat_template)]
    judge = build_judge(p.judge, ctx.root)
    model = common.load_model(ctx)
    peft = common.peft_config(ctx)
    print(f"{ctx.label}: online_dpo on {len(prompts)} prompts, {p.rounds} rounds of {p.max_steps} steps, judge "
          f"{judge.name}, device {ctx.runtime.device}, {ctx.runtime.precision}", flush=True)
    rounds, history, counts, trainer = [], [], [], None
    for r in range(1, p.rounds + 1):
        answers = sample_answers(model, tokenizer, prompts, 2, p.max_new_tokens, p.temperature, ctx.seed + r)
        records = judge_round(judge, prompts, answers)
        pairs = [{"prompt": x["prompt"], "chosen": x["chosen"], "rejected": x["rejected"]} for x in records if x["winner"]]
        rounds.append(records)
        counts.append({"round": r, "prompts": len(prompts), "pairs": len(pairs), "dropped": len(records) - len(pairs)})
        print(f"{ctx.label}: round {r}: {len(pairs)} agreeing pairs of {len(records)} judged", flush=True)
        if not pairs:
            continue
        with common.scratch() as tmp:
            args = common.trl_config(DPOConfig, ctx, Path(tmp))
            trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(pairs),
                                 processing_class=tokenizer, peft_config=peft if trainer is None else None,
                                 callbacks=[common.progress_callback(ctx, ("rewards/margins",))])
            trainer.remove_callback(PrinterCallback)
            trainer.train()
        offset = history[-1]["step"] if history else 0
        history += [{**h, "step": h["step"] + offset, "round": r} for h in trainer.state.log_history if "loss" in h]
        model = trainer.model  # the next round samples from the updated policy (and keeps training its adapters)
    if trainer is None:
        raise StageFailed(f"the judge {judge.name} agreed with itself on no pair in {p.rounds} rounds",
                          hint="use a judge that tells the answers apart (see the README's Judges section), raise "
                               "train.temperature for more varied answers, or raise train.rounds")
    if any(h["loss"] != h["loss"] for h in history):
        raise StageFailed("the training loss became NaN", hint="lower train.learning_rate or use runtime.precision fp32")
    metrics = common.finish(ctx, trainer, tokenizer, history, {
        "prompts": len(prompts), "rounds": p.rounds, "pairs": sum(c["pairs"] for c in counts),
        "pairs_per_round": {str(c["round"]): c["pairs"] for c in counts},
        "dropped_per_round": {str(c["round"]): c["dropped"] for c in counts},
        "reward_margin": common.last(history, "rewards/margins"),
        "reward_accuracy": common.last(history, "rewards/accuracies")})
    if metrics:  # the main process: the rounds' judgments beside the adapter they trained
        save_rounds(ctx.out_dir / "adapter", rounds)
    return metrics


def save_rounds(adapter: Path, rounds: list[list[dict[str, Any]]]) -> None:
    """Rewrite adapter/ with rounds/round-N.jsonl added (atomically: the folder is whole or as it was)."""
    import shutil

    with atomic_dir(adapter) as tmp:
        shutil.copytree(adapter, tmp, dirs_exist_ok=True)
        (tmp / ROUNDS_DIR).mkdir(exist_ok=True)
        for i, records in enumerate(rounds, 1):
            (tmp / ROUNDS_DIR / f"round-{i}.jsonl").write_text(
                "".join(json.dumps(x, ensure_ascii=False, sort_keys=True) + "\n" for x in records), encoding="utf-8")


METHOD = components.register(components.Method(
    "method", "online_dpo", "Online preference tuning: rounds of sampling, judging in both orders and DPO on the "
    "agreeing pairs", reads="prompts of every set; a judge", writes="adapter (with every round's judged pairs), "
    "merged weights, metrics, curve", function=run, settings=OnlineDPOSettings, sets=("prompts",),
    trl_config="trl.trainer.dpo_config:DPOConfig"))
