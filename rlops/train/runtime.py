"""Device and precision come from params (`runtime`), never from code."""

from __future__ import annotations

from typing import Any

from rlops import settings
from rlops.errors import StageFailed

PRECISIONS = ("fp32", "bf16", "fp16")


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
        if self.threads:
            torch.set_num_threads(int(self.threads))


# ---- the hooks every method's TrainingArguments go through (rlops/train/common.py trl_config and train) ----------

def runtime_args(rt: Runtime, out_dir) -> dict:
    """TrainingArguments keys the runtime decides beyond device and precision (launcher, checkpoints, tracking), for
    the step writing to `out_dir`; they override the method's settings. The one place save_strategy is set."""
    return {"save_strategy": "no"}


def resume_checkpoint(rt: Runtime, out_dir):
    """The checkpoint a killed run resumes from (Trainer.train's resume_from_checkpoint), or None to start fresh."""
    return None
