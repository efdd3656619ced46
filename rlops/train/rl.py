"""What `grpo` and `rloo` share: the prompts of the logged interactions, the settings of on-policy RL with weighted
reward functions (rlops/train/rewards.py), and the run function over a TRL trainer.

The prompts are the `prompts` set: the prompt of every row of every extract set (pairs, unpaired, sft, rewards),
each once, in file order; each keeps the logged reply the users liked best as `reference` (the chosen reply of a
pair, a good unpaired reply, an sft target, the best-rewarded reply), which the `judge` reward compares with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from rlops import layout, settings
from rlops.errors import StageFailed
from rlops.settings import cross_field
from rlops.train import common, rewards

DEFAULT_REWARDS = [{"name": "rubric", "weight": 1.0, "rubric": "support-quality"}]


class RLSettings(settings.TrainSettings):
    """On-policy RL with weighted reward functions (shared by grpo and rloo)."""

    NOT_TRL: ClassVar[tuple[str, ...]] = (*settings.TrainSettings.NOT_TRL, "rewards", "max_length", "max_prompts")

    per_device_train_batch_size: int = Field(
        4, ge=1, description="Completions per device per step; times gradient_accumulation_steps a multiple of "
                             "num_generations.")
    beta: float = Field(0.04, ge=0, description="Strength of the KL penalty to the parent (0: none, no reference "
                                                "model is kept).")
    num_generations: int = Field(4, ge=2, description="Completions sampled per prompt; each is scored against the "
                                                      "others of its prompt.")
    max_completion_length: int = Field(64, ge=1, description="Tokens sampled per completion.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the completions.")
    max_prompts: int | None = Field(None, ge=1, description="Use at most this many prompts (the first, in file "
                                                            "order); null: every prompt.")
    rewards: list[dict[str, Any]] = Field(
        DEFAULT_REWARDS, description="The reward functions, each {name, weight, its settings}: reward_model {path} "
                                     "(RLHF), judge {judge: {type: ...}} (RLAIF), rubric {rubric}; summed with "
                                     "the weights.")

    @field_validator("rewards")
    @classmethod
    def _rewards(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = rewards.entry_problems(value)
        if found:
            raise ValueError("; ".join(found))
        return value

    @model_validator(mode="after")
    def _whole_groups(self) -> RLSettings:
        per_step = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if per_step % self.num_generations:
            raise cross_field(f"per_device_train_batch_size * gradient_accumulation_steps ({per_step}) must be a "
                              f"multiple of num_generations ({self.num_generations}): each prompt's completions are "
                              "compared in one batch")
        return self


# ---- the prompts set --------------------------------------------------------------------------------------------

def _reference(name: str, row: dict[str, Any]) -> list | None:
    if name == "pairs":
        return row.get("chosen")
    if name == "unpaired":
        return row.get("completion") if row.get("label") else None
    if name == "rewards":
        return row.get("completion")
    return None


def read_prompts(root: Path, params: dict[str, Any]) -> list[dict[str, Any]]:
    """{prompt, reference} for each distinct prompt of the extract sets (reference: a liked reply or None)."""
    found: dict[str, dict[str, Any]] = {}
    best_reward: dict[str, float] = {}
    for name, fields in (("pairs", ("prompt", "chosen")), ("sft", ("messages",)),
                         ("unpaired", ("prompt", "completion", "label")), ("rewards", ("prompt", "completion", "reward"))):
        path = root / layout.extract_set(name, params)
        if not path.is_file():
            continue
        for row in common.read_rows(path, fields):
            prompt, ref = (row["messages"][:-1], row["messages"][-1:]) if name == "sft" else (row["prompt"], _reference(name, row))
            if not prompt:
                continue
            key = json.dumps(prompt, sort_keys=True)
            entry = found.setdefault(key, {"prompt": prompt, "reference": None})
            if name == "rewards":  # the best-rewarded reply, unless a person's choice already gave one
                if entry["reference"] is None or (key in best_reward and row["reward"] > best_reward[key]):
                    entry["reference"], best_reward[key] = ref, row["reward"]
            elif entry["reference"] is None and ref:
                entry["reference"] = ref
    return list(found.values())


def prompts_dataset(ctx: common.TrainContext, tokenizer):
    from datasets import Dataset

    rows = read_prompts(ctx.root, ctx.params)
    if ctx.settings.max_prompts:
        rows = rows[:ctx.settings.max_prompts]
    if not rows:
        raise StageFailed(f"the extract sets under {layout.EXTRACT} hold no prompts; {ctx.settings.method} samples "
                          "answers to the logged prompts", hint=f"see {layout.SIGNALS_MD} for what was dropped and why")
    rows = common.for_template(rows, tokenizer.chat_template)
    # datasets cannot hold a column that is None in some rows and a list in others: no reference is an empty list
    return Dataset.from_list([{"prompt": r["prompt"], "reference": r["reference"] or []} for r in rows])


# ---- the run ------------------------------------------------------------------------------------------------------

LOGGED = ("reward", "reward_std", "kl")


def run_rl(ctx: common.TrainContext, config_class: type, trainer_class: type) -> dict[str, Any]:
    """Train with `trainer_class` (GRPOTrainer or RLOOTrainer) on the prompts with the spec's reward functions."""
    p = ctx.settings
    tokenizer = common.load_tokenizer(ctx)
    data = prompts_dataset(ctx, tokenizer)
    fns, weights = rewards.build(p.rewards, ctx)
    model = common.load_model(ctx)
    print(f"{ctx.label}: {p.method} on {len(data)} prompts x {p.num_generations} completions, rewards "
          f"{', '.join(f'{f.__name__}*{w:g}' for f, w in zip(fns, weights))}, {p.max_steps} steps, "
          f"device {ctx.runtime.device}, {ctx.runtime.precision}", flush=True)
    with common.scratch() as tmp:
        args = common.trl_config(config_class, ctx, Path(tmp), reward_weights=weights)
        trainer = trainer_class(model=model, reward_funcs=fns, args=args, train_dataset=data,
                                processing_class=tokenizer, peft_config=common.peft_config(ctx),
                                callbacks=[common.progress_callback(ctx, LOGGED)])
        history = common.train(ctx, trainer)
    per_function = {f"reward_{f.__name__}": common.last(history, f"rewards/{f.__name__}/mean") for f in fns}
    return common.finish(ctx, trainer, tokenizer, history, {
        "prompts": len(data), "reward_first": common.last(history[:1], "reward"), "reward": common.last(history, "reward"),
        "reward_std": common.last(history, "reward_std"), "kl": common.last(history, "kl"), **per_function})
