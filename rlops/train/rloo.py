"""Method `rloo`: REINFORCE Leave-One-Out (TRL RLOOTrainer) on the prompts of the logged interactions.

Like `grpo`, it samples `num_generations` completions per prompt and scores them with the spec's weighted reward
functions; each completion's baseline is the mean reward of the others of its prompt. KL to the parent: `beta`.
The shared work is in rlops/train/rl.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rlops import components
from rlops.train import common, rl


class RLOOSettings(rl.RLSettings):
    """REINFORCE Leave-One-Out (TRL RLOOTrainer) with weighted reward functions, with LoRA adapters."""

    method: Literal["rloo"] = Field("rloo", description="The training method.")


def run(ctx: common.TrainContext) -> dict[str, Any]:
    from trl import RLOOConfig, RLOOTrainer

    return rl.run_rl(ctx, RLOOConfig, RLOOTrainer)


METHOD = components.register(components.Method(
    "method", "rloo", "On-policy RL (RLOO) on the logged prompts with weighted reward functions (RLHF, RLAIF, rubric)",
    reads="prompts of every set; reward functions", writes="adapter, merged weights, metrics, curve",
    function=run, settings=RLOOSettings, sets=("prompts",), trl_config="trl.trainer.rloo_config:RLOOConfig"))
