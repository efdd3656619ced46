"""Reward functions for on-policy RL (`grpo`, `rloo`), chosen by name in the spec and weighted.

```yaml
train:
  method: grpo
  rewards:
    - {name: reward_model, weight: 1.0, path: models/reward-v1}     # RLHF: a model trained with method `reward`
    - {name: judge, weight: 0.5, judge: {type: http, url: http://127.0.0.1:8000/v1, model: judge-1}}  # RLAIF
    - {name: rubric, weight: 0.5, rubric: support-quality}           # a programmatic rubric
```

Each is a component of kind `reward` (rlops/components.py): a typed settings model (besides `name` and `weight`,
which every entry takes) and a builder `(settings, ctx: common.TrainContext) -> fn`, where `fn(prompts, completions,
**columns) -> list[float]` is what TRL's GRPOTrainer and RLOOTrainer call (the prompts' other dataset columns, e.g.
`reference`, arrive as keyword arguments). TRL sums the functions with the weights (`reward_weights`).

| name           | reward of one completion                                                                         |
|----------------|--------------------------------------------------------------------------------------------------|
| `reward_model` | the score of a sequence-classification model (method `reward`'s `merged/`) on prompt + completion |
| `judge`        | a judge of rlops/extract/judges.py compares it with the logged reply in both orders: 1 better, 0 worse, 0.5 tie or order-dependent |
| `rubric`       | a rubric registered with `rlops.extract.judges.register_rubric`: its score                       |

A new reward function is a settings model, a builder, a `register(Component("reward", ...))` call and its line in
`components.BUILTIN["reward"]`. Light at import: pydantic and the standard library (the builders import torch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import Field, field_validator

from rlops import components
from rlops.components import Component, Settings, register
from rlops.errors import StageFailed

RewardFn = Callable[..., list[float]]  # (prompts, completions, **columns) -> one float per completion
SHARED = ("name", "weight")  # the keys every entry of train.rewards takes besides its function's settings


class RubricReward(Settings):
    rubric: str = Field(min_length=1, description="A rubric registered with @register_rubric, e.g. support-quality.")

    @field_validator("rubric")
    @classmethod
    def _registered(cls, name: str) -> str:
        from rlops.extract.judges import registered_rubric

        return registered_rubric(name)


class ModelReward(Settings):
    path: str = Field(min_length=1, description="The reward model's folder (method `reward` writes it as merged/), "
                                                "relative to the repository root.")
    max_length: int = Field(512, ge=1, description="Prompt + completion tokens the reward model reads.")

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        rel = PurePosixPath(value)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"{value!r} points outside the repository; use a path relative to its root")
        return rel.as_posix()


class JudgeReward(Settings):
    judge: dict[str, Any] = Field(description="A judge as extract.judge writes it, e.g. {type: rubric, rubric: "
                                              "support-quality} or {type: http, url: ..., model: ...}.")

    @field_validator("judge")
    @classmethod
    def _judge(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_judge(value)


def check_judge(value: Mapping[str, Any]) -> dict[str, Any]:
    """A judge mapping checked by the judge registry (its type and keys); ValueError naming each problem."""
    kind = value.get("type")
    if kind not in components.names("judge"):
        raise ValueError(f"judge.type {kind!r} is not a judge type; use one of {', '.join(components.names('judge'))}")
    judge = components.get("judge", kind)
    _, found = components.validate(judge, value, "", "judge", context={"root": Path.cwd()})
    if found:
        raise ValueError("; ".join(f"{p.field}: {p.message}" for p in found))
    return dict(value)


# ---- the builders --------------------------------------------------------------------------------------------------

def rubric_reward(settings: RubricReward, ctx) -> RewardFn:
    from rlops.extract.judges import RUBRICS

    score = RUBRICS[settings.rubric]

    def rubric(prompts, completions, **_):
        return [float(score(p, c)) for p, c in zip(prompts, completions)]

    return rubric


def model_reward(settings: ModelReward, ctx) -> RewardFn:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(ctx.root) / settings.path
    if not (folder / "config.json").is_file():
        raise StageFailed(f"the reward model {settings.path} is not in the workspace (no config.json)",
                          hint="train it first (method reward; in a recipe, an earlier step) or fetch it: "
                               f"`dvc pull {settings.path}.dvc`")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    device = ctx.runtime.device
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=ctx.runtime.torch_dtype()).to(device).eval()

    def reward_model(prompts, completions, **_):
        texts = [tokenizer.apply_chat_template(list(p) + list(c), tokenize=False) for p, c in zip(prompts, completions)]
        batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=settings.max_length,
                          add_special_tokens=False).to(device)
        with torch.inference_mode():
            return model(**batch).logits[:, 0].float().tolist()

    return reward_model


def judge_reward(settings: JudgeReward, ctx) -> RewardFn:
    from rlops.extract.judges import build_judge, judge_pair

    judge = build_judge(settings.judge, ctx.root)
    value = {"a": 1.0, "b": 0.0, None: 0.5}

    def judge_fn(prompts, completions, reference=None, **_):
        refs = reference if reference is not None else [None] * len(prompts)
        # no logged reply to compare with: a tie, so the completion neither gains nor loses
        return [value[judge_pair(judge, p, c, r).winner] if r else 0.5 for p, c, r in zip(prompts, completions, refs)]

    return judge_fn


for _reward in (
    Component("reward", "reward_model", "the score of a trained reward model (method reward) on prompt + answer (RLHF)",
              reads="a prompt and an answer; a reward model folder", writes="a score", function=model_reward,
              settings=ModelReward),
    Component("reward", "judge", "a judge compares the answer with the logged reply in both orders: 1, 0.5 or 0 (RLAIF)",
              reads="a prompt, an answer and the logged reply", writes="1, 0.5 or 0", function=judge_reward,
              settings=JudgeReward),
    Component("reward", "rubric", "a programmatic rubric registered by name scores the answer",
              reads="a prompt and an answer", writes="the rubric's score", function=rubric_reward,
              settings=RubricReward),
):
    register(_reward)


# ---- train.rewards: checked at plan time, built at run time ------------------------------------------------------

def entry_problems(entries: Any) -> list[str]:
    """Every problem of a `rewards` list, each as `[i].key: message`; [] when it is right."""
    if not isinstance(entries, list) or not entries:
        return ["must be a non-empty list such as [{name: rubric, weight: 1.0, rubric: support-quality}]"]
    found = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            found.append(f"[{i}]: must be a mapping with name, weight and the function's settings")
            continue
        name = entry.get("name")
        if name not in components.names("reward"):
            found.append(f"[{i}].name: {'missing' if name is None else repr(name) + ' is not a registered reward function'}"
                         f"; use one of {', '.join(components.names('reward'))}")
            continue
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            found.append(f"[{i}].weight: must be a number, not {weight!r}")
        c = components.get("reward", name)
        _, wrong = components.validate(c, {k: v for k, v in entry.items() if k not in SHARED}, "", f"[{i}]")
        found += [f"{p.field}: {p.message}" + ("" if p.field.split(".")[-1] in c.settings.model_fields else
                                               f" (every entry also takes {', '.join(SHARED)})") for p in wrong]
    return found


def build(entries: list[Mapping[str, Any]], ctx) -> tuple[list[RewardFn], list[float]]:
    """The reward functions of `train.rewards` and their weights, each named after its entry (TRL logs per name)."""
    fns, weights = [], []
    for i, entry in enumerate(entries):
        c = components.get("reward", entry["name"])
        typed = c.settings.model_validate({k: v for k, v in entry.items() if k not in SHARED})
        fn = c.function(typed, ctx)
        fn.__name__ = entry["name"] if [e["name"] for e in entries].count(entry["name"]) == 1 else f"{entry['name']}_{i}"
        fns.append(fn)
        weights.append(float(entry.get("weight", 1.0)))
    return fns, weights
