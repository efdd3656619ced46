"""Device and precision come from params (`runtime`), never from code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlops.errors import InvalidInput, Problem, StageFailed
from rlops.params import build, key_problems

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Runtime:
    device: str  # cpu | cuda | cuda:N | mps
    precision: str  # fp32 | bf16 | fp16
    threads: int | None
    launcher: str  # used by dvc.yaml to start the train stage (`python`, `accelerate launch --multi_gpu`)

    @classmethod
    def from_mapping(cls, m: dict[str, Any]) -> "Runtime":
        missing = key_problems(cls, "runtime", m)
        if missing:
            raise InvalidInput(missing, hint="run `rlops plan` again: pipelines/conf/runtime/ defines every key")
        problems = []
        if m["precision"] not in PRECISIONS:
            problems.append(Problem("params.yaml", None, "runtime.precision", f"must be one of {', '.join(PRECISIONS)}"))
        device = str(m["device"])
        if not (device in ("cpu", "cuda", "mps") or device.startswith("cuda:")):
            problems.append(Problem("params.yaml", None, "runtime.device", "must be cpu, cuda, cuda:N or mps"))
        if problems:
            raise InvalidInput(problems, hint="choose a runtime config: `rlops plan SPEC runtime=cpu` or `runtime=cuda`")
        return build(cls, m)

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
