"""`rlops deploy render`: the manifest's state as configuration for a serving engine a team already runs.

| file                      | for                                                                                 |
|---------------------------|-------------------------------------------------------------------------------------|
| `kserve.yaml`             | a KServe `InferenceService` (serving.kserve.io/v1beta1): the huggingface runtime on the production checkpoint, or on the canary's with `canaryTrafficPercent` |
| `vllm.args`               | `vllm serve BASE --enable-lora --lora-modules NAME=PATH ...`, one argument per line: every served version as a LoRA module on the base weights |
| `rlops-serve.yaml`        | `rlops serve --config` in front of that vLLM: each version is its LoRA module's name |

KServe's canary is a rollout of the InferenceService itself: the spec names the new (canary) checkpoint and
`canaryTrafficPercent` sends that share of traffic to it while the previous ready revision (production, applied
before) keeps the rest; promotion is applying the next render (no canary: 100%). KServe has no shadow; a shadow in
the manifest is named in an annotation only, and served by `rlops serve`. Checkpoints are addressed as
`<storage>/<policy>/<version>` (the registered weights, `dvc pull`ed and uploaded there) and adapters as
`<adapters>/<policy>/<version>` (the train stage's artifacts/train/adapter of that cycle, published there: the
registry records the merged weights, not the adapter).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from rlops.errors import InvalidInput, Problem
from rlops.io import atomic_write_text
from rlops.registry.manifest import Manifest

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def k8s_name(policy: str) -> str:
    name = "".join(c if c.isalnum() else "-" for c in policy.lower()).strip("-")[:63]
    if not name or not name[0].isalpha():
        raise InvalidInput([Problem("", None, "policy", f"{policy!r} gives no Kubernetes name (a letter first)")])
    return name


def module_name(policy: str, version: str) -> str:
    """The name a version is served under by vLLM (and asked for by rlops serve): support-agent-v2."""
    return f"{policy}-{version}"


def kserve(manifest: Manifest, storage: str, precision: str) -> dict:
    """The InferenceService for `manifest`: the canary's checkpoint at canaryTrafficPercent, else production's."""
    version = manifest.canary or manifest.production
    model = {"modelFormat": {"name": "huggingface"},
             "storageUri": f"{storage.rstrip('/')}/{manifest.policy}/{version}",
             "args": [f"--model_name={manifest.policy}", f"--dtype={DTYPES[precision]}"]}
    predictor: dict = {"model": model}
    if manifest.canary:
        predictor["canaryTrafficPercent"] = round(100 * float(manifest.canary_fraction or 0))
    annotations = {"rlops.dev/production": manifest.production}
    if manifest.canary:
        annotations["rlops.dev/canary"] = manifest.canary
    if manifest.shadow:
        annotations["rlops.dev/shadow"] = f"{manifest.shadow} (not served by KServe; use rlops serve)"
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": k8s_name(manifest.policy), "annotations": annotations}, "spec": {"predictor": predictor}}


def vllm_args(manifest: Manifest, base: str, adapters: str, precision: str, lora_rank: int) -> list[str]:
    """`vllm serve` arguments: the base weights, and every non-base version the manifest serves as a LoRA module."""
    versions = [v for v in dict.fromkeys(manifest.stages().values()) if v != "base"]
    args = ["serve", base, "--served-model-name", module_name(manifest.policy, "base"),
            "--dtype", DTYPES[precision], "--seed", "0"]
    if versions:
        args += ["--enable-lora", "--max-loras", str(len(versions)), "--max-lora-rank", str(lora_rank),
                 "--lora-modules", *(f"{module_name(manifest.policy, v)}={adapters.rstrip('/')}/{manifest.policy}/{v}"
                                     for v in versions)]
    return args


def serve_config(manifest: Manifest, url: str) -> dict:
    return {"policy": manifest.policy, "backend": "upstream", "base_url": url,
            "versions": {v: {"model": module_name(manifest.policy, v)}
                         for v in dict.fromkeys(manifest.stages().values())}}


def render(root: Path, manifest: Manifest, out: Path, *, storage: str, base: str, adapters: str, url: str,
           precision: str, lora_rank: int) -> list[Path]:
    """Write the three files into `out` (each atomically); returns their paths."""
    head = (f"# Rendered by `rlops deploy render` from deployments/{manifest.policy}.yaml: "
            f"{', '.join(f'{s} {v}' for s, v in manifest.stages().items())}. Re-render after each promotion.\n")
    files = {
        "kserve.yaml": head + yaml.safe_dump(kserve(manifest, storage, precision), sort_keys=False),
        "vllm.args": "\n".join(vllm_args(manifest, base, adapters, precision, lora_rank)) + "\n",
        "rlops-serve.yaml": head + yaml.safe_dump(serve_config(manifest, url), sort_keys=False),
    }
    return [atomic_write_text(out / name, text) for name, text in files.items()]
