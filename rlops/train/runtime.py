"""Device and precision come from params (`runtime`), never from code."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from rlops import settings
from rlops.errors import StageFailed

PRECISIONS = ("fp32", "bf16", "fp16")
# tracker -> (the module its transformers integration imports, the pip package that provides it)
TRACKER_PACKAGES = {"mlflow": ("mlflow", "mlflow"), "tensorboard": ("tensorboard", "tensorboard"),
                    "wandb": ("wandb", "wandb")}
TENSORBOARD_DIR = ".rlops/runs"  # tensorboard's event files, outside DVC's outputs (TENSORBOARD_LOGGING_DIR wins)


class Runtime(settings.RuntimeSettings):
    """The `runtime` section of params.yaml, typed (declared in rlops/settings.py)."""

    @classmethod
    def from_mapping(cls, m: dict[str, Any]) -> "Runtime":
        return settings.read(cls, m, "runtime", hint="choose a runtime config: `rlops plan SPEC runtime=cpu` or "
                                                      "`runtime=cuda` (pipelines/conf/runtime/ defines every key)")

    def torch_dtype(self):
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]

    def apply(self) -> None:
        """Check the device exists and set process-wide torch settings (threads) before any model work."""
        import torch

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise StageFailed(f"runtime.device is {self.device} but torch sees no CUDA device",
                              hint="plan with `runtime=cpu` here, or install a CUDA build of torch on the GPU runner")
        self.trackers()
        if self.threads:
            torch.set_num_threads(int(self.threads))

    def trackers(self) -> list[str]:
        """`report_to` as TRL's config takes it (a list; [] for none), each tracker's package checked first."""
        chosen = [] if self.report_to == "none" else [self.report_to] if isinstance(self.report_to, str) \
            else list(self.report_to)
        missing = [t for t in chosen if importlib.util.find_spec(TRACKER_PACKAGES[t][0]) is None]
        if missing:
            packages = " ".join(TRACKER_PACKAGES[t][1] for t in missing)
            raise StageFailed(f"runtime.report_to names {', '.join(missing)}, but its Python package is not installed",
                              hint=f"pip install {packages} (or set runtime.report_to: none)")
        if "tensorboard" in chosen:
            os.environ.setdefault("TENSORBOARD_LOGGING_DIR", TENSORBOARD_DIR)
        return chosen


# ---- the hooks every method's TrainingArguments go through (rlops/train/common.py trl_config and train) ----------

def runtime_args(ctx) -> dict:
    """TrainingArguments keys the runtime decides beyond device and precision (checkpoints, tracking) for one
    step (`ctx`: common.TrainContext); they override the method's settings. The one place save_strategy is set."""
    from rlops.train import checkpoints

    ck = checkpoints.for_context(ctx)
    return {**ck.trainer_args(), **({"output_dir": str(ck.folder)} if ck.every else {}),
            "report_to": ctx.runtime.trackers() or "none"}


def resume_checkpoint(ctx, trainer):
    """The checkpoint a killed run resumes from (Trainer.train's resume_from_checkpoint), or None to start fresh;
    adds the callback that marks each saved checkpoint complete."""
    from rlops.train import checkpoints

    ck = checkpoints.for_context(ctx)
    if ck.every:
        trainer.add_callback(ck.callback())
    found = ck.resume_from()
    if found:
        print(f"{ctx.label}: resuming from {Path(found).relative_to(ctx.root).as_posix()}", flush=True)
    return found
