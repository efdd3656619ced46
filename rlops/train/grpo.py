"""Method `grpo`: Group Relative Policy Optimization (TRL GRPOTrainer) on the prompts of the logged interactions.

For each prompt it samples `num_generations` completions from the current policy, scores each with the spec's
weighted reward functions (rlops/train/rewards.py: a reward model for RLHF, a judge for RLAIF, a rubric) and moves
the policy toward the completions that beat their group's mean, with a KL penalty to the parent (`beta`).
The shared work is in rlops/train/rl.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rlops import components
from rlops.train import common, rl


class GRPOSettings(rl.RLSettings):
    """Group Relative Policy Optimization (TRL GRPOTrainer) with weighted reward functions, with LoRA adapters."""

    method: Literal["grpo"] = Field("grpo", description="The training method.")


def run(ctx: common.TrainContext) -> dict[str, Any]:
    from trl import GRPOConfig, GRPOTrainer

    return rl.run_rl(ctx, GRPOConfig, GRPOTrainer)


METHOD = components.register(components.Method(
    "method", "grpo", "On-policy RL (GRPO) on the logged prompts with weighted reward functions (RLHF, RLAIF, rubric)",
    reads="prompts of every set; reward functions", writes="adapter, merged weights, metrics, curve",
    function=run, settings=GRPOSettings, sets=("prompts",), trl_config="trl.trainer.grpo_config:GRPOConfig"))
