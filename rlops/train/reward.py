"""Method `reward`: a reward model (TRL RewardTrainer: a sequence-classification head on the start checkpoint)
trained on the `pairs` set, so that the chosen reply scores above the rejected one.

A share of the pairs (`eval_share`) is held out, chosen by a seeded hash of each pair's id (its feedback event ids,
else its content), so the split does not move when other pairs come or go; the metrics give the held-out accuracy
(chosen scored above rejected) of the trained model and of the untrained head, and the pair counts.

The model is written like every method's: `merged/` holds the reward model (weights + tokenizer), which the `grpo`
and `rloo` reward function `reward_model` reads. It is no policy (`policy=False`): in a recipe the step after it
starts from the checkpoint the reward step started from, and points at the reward step's folder
(`artifacts/train/steps/1-reward/merged` for step 1); a later cycle points at a copy kept in the repository
(`dvc add models/reward-v1` after copying merged/ there):

    rewards: [{name: reward_model, weight: 1.0, path: models/reward-v1}]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from rlops import components, settings
from rlops.errors import StageFailed
from rlops.train import common

FIELDS = ("prompt", "chosen", "rejected", "meta")


class RewardSettings(settings.TrainSettings):
    """A reward model (TRL RewardTrainer) on preference pairs, with LoRA adapters; held-out pair accuracy reported."""

    NOT_TRL: ClassVar[tuple[str, ...]] = (*settings.TrainSettings.NOT_TRL, "eval_share")

    method: Literal["reward"] = Field("reward", description="The training method.")
    eval_share: float = Field(0.2, ge=0, lt=1, description="Share of the pairs held out to measure accuracy, chosen "
                                                           "by a seeded hash of each pair's id (0: none).")
    center_rewards_coefficient: float | None = Field(
        None, ge=0, description="Pulls the scores' mean toward 0 (TRL's; e.g. 0.01); null: off.")


def pair_id(row: dict[str, Any]) -> str:
    """A pair's id: its feedback event ids (what extraction read), else its content."""
    meta = row.get("meta") or {}
    events = meta.get("event_ids") or []
    if events:
        return "events:" + ",".join(sorted(events))
    return "content:" + json.dumps([row["prompt"], row["chosen"], row["rejected"]], sort_keys=True)


def held_out(row: dict[str, Any], share: float, seed: int) -> bool:
    """Whether a pair is in the held-out share: a seeded hash of its id, read as a number in [0, 1)."""
    digest = hashlib.sha256(f"{seed}:{pair_id(row)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def split(rows: list[dict[str, Any]], share: float, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held out) rows."""
    out = [r for r in rows if held_out(r, share, seed)]
    return [r for r in rows if not held_out(r, share, seed)], out


def accuracy(model, tokenizer, rows: list[dict[str, Any]], max_length: int) -> float | None:
    """The share of pairs whose chosen reply the model scores above the rejected one (None without pairs)."""
    import torch

    if not rows:
        return None
    device = next(model.parameters()).device
    model.eval()

    def scores(answers: str) -> list[float]:
        texts = [tokenizer.apply_chat_template(r["prompt"] + r[answers], tokenize=False) for r in rows]
        out = []
        for i in range(0, len(texts), 8):
            batch = tokenizer(texts[i:i + 8], return_tensors="pt", padding=True, truncation=True,
                              max_length=max_length, add_special_tokens=False).to(device)
            with torch.inference_mode():
                out += model(**batch).logits[:, 0].float().tolist()
        return out

    won = sum(c > r for c, r in zip(scores("chosen"), scores("rejected")))
    return round(won / len(rows), 6)


def run(ctx: common.TrainContext) -> dict[str, Any]:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    p = ctx.settings
    tokenizer = common.load_tokenizer(ctx)
    rows = common.for_template(common.read_rows(ctx.inputs["pairs"], FIELDS), tokenizer.chat_template)
    train_rows, test_rows = split(rows, p.eval_share, ctx.seed)
    if not train_rows:
        raise StageFailed(f"{ctx.inputs['pairs']} holds {len(rows)} pairs, none left to train on after holding out "
                          f"{p.eval_share:g}", hint="collect more pairs, or lower train.eval_share")
    model = common.load_model(ctx, "AutoModelForSequenceClassification", num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    untrained = accuracy(model, tokenizer, test_rows, p.max_length)
    data = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in train_rows])
    print(f"{ctx.label}: reward model on {len(train_rows)} pairs ({len(test_rows)} held out), {p.max_steps} steps, "
          f"device {ctx.runtime.device}, {ctx.runtime.precision}", flush=True)
    with common.scratch() as tmp:
        args = common.trl_config(RewardConfig, ctx, Path(tmp))
        trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                                peft_config=common.peft_config(ctx, "SEQ_CLS"),
                                callbacks=[common.progress_callback(ctx, ("accuracy", "margin"))])
        if len(trainer.train_dataset) == 0:  # TRL drops pairs longer than max_length instead of truncating them
            raise StageFailed(f"every one of the {len(train_rows)} training pairs is longer than train.max_length "
                              f"({p.max_length} tokens)", hint="raise train.max_length")
        history = common.train(ctx, trainer)
    trained = accuracy(trainer.model, tokenizer, test_rows, p.max_length)
    print(f"{ctx.label}: held-out pair accuracy {untrained} -> {trained} ({len(test_rows)} pairs)", flush=True)
    return common.finish(ctx, trainer, tokenizer, history, {
        "pairs": len(rows), "pairs_train": len(train_rows), "pairs_held_out": len(test_rows),
        "accuracy": trained, "accuracy_untrained": untrained,
        "train_accuracy": common.last(history, "accuracy"), "reward_margin": common.last(history, "margin")})


METHOD = components.register(components.Method(
    "method", "reward", "A reward model (sequence-classification head) on preference pairs, for grpo/rloo (RLHF)",
    reads="pairs: prompt, chosen, rejected", writes="the reward model (merged/), metrics with held-out accuracy, curve",
    function=run, settings=RewardSettings, sets=("pairs",), trl_config="trl.trainer.reward_config:RewardConfig",
    policy=False))
