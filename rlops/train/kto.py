"""Method `kto`: Kahneman-Tversky Optimization (TRL KTOTrainer) on the `unpaired` set (answers labelled good/bad).

The classes are rarely balanced. As the KTO paper recommends (Ethayarajh et al. 2024, section 4.2), the weights
are chosen so that desirable_weight * n_desirable / (undesirable_weight * n_undesirable) lies in [1, 4/3]: here
exactly 1 (the rarer class is up-weighted, the other keeps 1), unless the spec sets both weights. The counts and
the weights used are in the metrics.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from rlops import components, settings
from rlops.errors import StageFailed
from rlops.train import common

FIELDS = ("prompt", "completion", "label")


class KTOSettings(settings.TrainSettings):
    """Kahneman-Tversky Optimization (TRL KTOTrainer) on answers labelled good or bad, with LoRA adapters."""

    NOT_TRL: ClassVar[tuple[str, ...]] = (*settings.TrainSettings.NOT_TRL, "desirable_weight", "undesirable_weight")

    method: Literal["kto"] = Field("kto", description="The training method.")
    beta: float = Field(0.1, gt=0, description="Strength of the KL anchor to the parent.")
    desirable_weight: float | None = Field(
        None, gt=0, description="Weight of the good answers' loss; null: balanced from the class counts (with "
                                "undesirable_weight null too).")
    undesirable_weight: float | None = Field(
        None, gt=0, description="Weight of the bad answers' loss; null: balanced from the class counts.")


def balanced_weights(n_desirable: int, n_undesirable: int) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight) with desirable_weight * n_d / (undesirable_weight * n_u) = 1."""
    if n_desirable == 0 or n_undesirable == 0:
        raise StageFailed(f"kto needs both good and bad answers; the unpaired set has {n_desirable} good and "
                          f"{n_undesirable} bad", hint="add the rating signal (or implicit) to extract.signals, or "
                                                       "collect feedback of the missing kind")
    # the up-weight is rounded up at 6 decimals (as the metrics record it), so the ratio is 1 or just above, never below
    if n_desirable < n_undesirable:
        return math.ceil(n_undesirable / n_desirable * 1e6) / 1e6, 1.0
    return 1.0, math.floor(n_desirable / n_undesirable * 1e6) / 1e6


def run(ctx: common.TrainContext) -> dict[str, Any]:
    from trl import KTOConfig, KTOTrainer

    p = ctx.settings
    tokenizer = common.load_tokenizer(ctx)
    data = common.dataset(ctx, "unpaired", FIELDS, tokenizer)
    n_good = sum(1 for label in data["label"] if label)
    n_bad = len(data) - n_good
    if p.desirable_weight is None and p.undesirable_weight is None:
        good_w, bad_w = balanced_weights(n_good, n_bad)
    else:
        good_w, bad_w = p.desirable_weight or 1.0, p.undesirable_weight or 1.0
    model = common.load_model(ctx)
    print(f"{ctx.label}: kto on {n_good} good and {n_bad} bad answers (weights {good_w:.3g} / {bad_w:.3g}), "
          f"{p.max_steps} steps, device {ctx.runtime.device}, {ctx.runtime.precision}", flush=True)
    with common.scratch() as tmp:
        args = common.trl_config(KTOConfig, ctx, Path(tmp), desirable_weight=good_w, undesirable_weight=bad_w)
        trainer = KTOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                             peft_config=common.peft_config(ctx), callbacks=[common.progress_callback(ctx, ("kl",))])
        history = common.train(ctx, trainer)
    return common.finish(ctx, trainer, tokenizer, history, {
        "desirable": n_good, "undesirable": n_bad, "desirable_weight": round(good_w, 6),
        "undesirable_weight": round(bad_w, 6), "kl": common.last(history, "kl"),
        "reward_margin": common.last(history, "rewards/margins")})


METHOD = components.register(components.Method(
    "method", "kto", "Kahneman-Tversky Optimization on answers labelled good or bad, class weights balanced",
    reads="unpaired: prompt, completion, label", writes="adapter, merged weights, metrics, curve",
    function=run, settings=KTOSettings, sets=("unpaired",), trl_config="trl.trainer.kto_config:KTOConfig"))
