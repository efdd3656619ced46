"""Method `dpo`: Direct Preference Optimization (TRL DPOTrainer) on the `pairs` set, from the start checkpoint.

Every TRL 1.16 loss type, and combinations with weights: `loss_type: [sigmoid, sft]` with `loss_weights: [1.0, 1.0]`
adds an NLL term on the chosen answer (TRL 1.16 has no rpo_alpha). `precompute_ref_log_probs` computes the
reference log-probabilities once. With LoRA the reference is the parent with the adapters disabled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from rlops import components, settings
from rlops.settings import DPO_LOSS_TYPES, cross_field
from rlops.train import common
from rlops.train.common import for_template  # noqa: F401 (its home before the shared module; tests import it here)

FIELDS = ("prompt", "chosen", "rejected")


class DPOSettings(settings.TrainSettings):
    """Direct Preference Optimization (TRL DPOTrainer) with LoRA adapters, from the parent checkpoint."""

    method: Literal["dpo"] = Field("dpo", description="The training method.")
    beta: float = Field(0.1, gt=0, description="Strength of the KL anchor to the parent.")
    loss_type: str | list[str] = Field(
        "sigmoid", description=f"TRL's DPO loss, or a list of them (e.g. [sigmoid, sft]): {', '.join(DPO_LOSS_TYPES)}.")
    loss_weights: list[float] | None = Field(
        None, description="One weight per loss of a loss_type list (e.g. [1.0, 1.0]); null: each 1.")
    precompute_ref_log_probs: bool = Field(
        False, description="Compute the reference log-probabilities once before training, not at every step.")

    @field_validator("loss_type")
    @classmethod
    def _known_loss(cls, value: str | list[str]) -> str | list[str]:
        given = value if isinstance(value, list) else [value]
        unknown = [v for v in given if v not in DPO_LOSS_TYPES]
        if unknown or not given:
            raise ValueError(f"{', '.join(map(repr, unknown)) or 'an empty list'} is not a DPO loss type; "
                             f"use one of: {', '.join(DPO_LOSS_TYPES)} (or a list of them)")
        return value

    @field_validator("loss_weights")
    @classmethod
    def _one_weight_per_loss(cls, value: list[float] | None, info: ValidationInfo) -> list[float] | None:
        losses = info.data.get("loss_type")
        losses = losses if isinstance(losses, list) else [losses]
        if value is not None and "loss_type" in info.data and len(value) != len(losses):
            raise cross_field(f"{len(value)} weights for {len(losses)} loss types ({', '.join(losses)}); give one "
                              "weight per loss type")
        return value


class DPOParams(DPOSettings):
    """The `train` section of params.yaml for DPO, typed."""

    @classmethod
    def from_mapping(cls, m: dict[str, Any]) -> DPOParams:
        # a hand-edited loss_type is refused here by field: TRL's own ValueError would read as rlops' bug
        return settings.read(cls, m, "train", hint="set it in the cycle spec's train.overrides and run `rlops plan` "
                                                    "again")


def read_pairs(path: Path) -> list[dict[str, Any]]:
    """The prompt/chosen/rejected of every row of the extract stage's pairs.jsonl or pairs.parquet."""
    return common.read_rows(path, FIELDS)


def run(ctx: common.TrainContext) -> dict[str, Any]:
    from trl import DPOConfig, DPOTrainer

    p = ctx.settings
    tokenizer = common.load_tokenizer(ctx)
    data = common.dataset(ctx, "pairs", FIELDS, tokenizer)
    model = common.load_model(ctx)
    print(f"{ctx.label}: dpo on {len(data)} pairs, {p.max_steps} steps, device {ctx.runtime.device}, "
          f"{ctx.runtime.precision}", flush=True)
    with common.scratch() as tmp:
        args = common.trl_config(DPOConfig, ctx, Path(tmp))
        trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                             peft_config=common.peft_config(ctx),
                             callbacks=[common.progress_callback(ctx, ("rewards/margins",))])
        history = common.train(ctx, trainer)
    return common.finish(ctx, trainer, tokenizer, history, {
        "pairs": len(data),
        "reward_margin": common.last(history, "rewards/margins"),
        "reward_accuracy": common.last(history, "rewards/accuracies"),
    })


METHOD = components.register(components.Method(
    "method", "dpo", "Direct Preference Optimization on preference pairs (every TRL loss type, combined losses)",
    reads="pairs: prompt, chosen, rejected", writes="adapter, merged weights, metrics, curve",
    function=run, settings=DPOSettings, sets=("pairs",), trl_config="trl.trainer.dpo_config:DPOConfig"))
