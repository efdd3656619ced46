"""Resumable training: checkpoints every `runtime.checkpoint_steps` steps, resumed by the next `dvc repro`.

Where: `.rlops/checkpoints/<key>/`, outside every DVC output (DVC deletes a stage's outputs before it runs it, so a
checkpoint kept there would not survive) and ignored by git. The key is a digest of everything that decides the
weights: the `train` section, the runtime (all but the settings that cannot change a weight: `checkpoint_steps`,
`report_to`, `threads`), the seed, and the bytes of every input (the parent's files, the training set). A changed
spec, parent or data set gets another folder, so a stale run is never resumed; the folder is removed once the
stage's outputs are written, so optimizer state never reaches an output.

A checkpoint is Trainer's own (`checkpoint-N/`: the adapter, optimizer, scheduler, RNG states of every process,
trainer state); it counts only once `COMPLETE` is written beside it, after Trainer finished saving it (Trainer writes
a checkpoint file by file, and a SIGKILL can land in between). Older ones are removed only then.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

ROOT = ".rlops/checkpoints"
COMPLETE = "COMPLETE"
# runtime settings that change where or how a run is watched, never a weight
NEUTRAL_RUNTIME = ("checkpoint_steps", "report_to", "threads")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(path: Path, suffixes: tuple[str, ...] | None = None) -> str:
    """sha256 over the (relative name, sha256) of every file under `path` (a file: its own bytes), in name order;
    only the files ending in one of `suffixes` when given."""
    path = Path(path)
    if path.is_file():
        return file_digest(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        if suffixes is None or f.name.endswith(suffixes):
            h.update(f"{f.relative_to(path).as_posix()}\0{file_digest(f)}\n".encode())
    return h.hexdigest()


def weights_digest(model_dir: Path) -> str:
    """The parent's digest: its weight files only (a re-saved tokenizer or config comment does not change it)."""
    return "sha256:" + tree_digest(model_dir, WEIGHT_SUFFIXES)


def key(params: dict[str, Any], inputs: list[Path]) -> str:
    """The digest of what decides this run's weights (see the module's docstring)."""
    runtime = {k: v for k, v in (params.get("runtime") or {}).items() if k not in NEUTRAL_RUNTIME}
    what = {"train": params.get("train"), "runtime": runtime, "seed": params.get("seed"),
            "inputs": [tree_digest(p) for p in inputs]}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:20]


def for_context(ctx) -> Checkpoints:
    """The checkpoints of one train step (`ctx`: common.TrainContext), keyed by its method settings, runtime, seed,
    start checkpoint and sets, and by where it writes (a recipe's steps never share a folder). Built once per step:
    the digests read every input byte."""
    found = ctx.__dict__.get("_checkpoints")
    if found is None:
        what = {**ctx.params, "train": {"settings": ctx.settings.model_dump(mode="json"), "label": ctx.label,
                                        "out_dir": Path(ctx.out_dir).resolve().relative_to(Path(ctx.root).resolve())
                                        .as_posix()},
                "seed": ctx.seed}
        inputs = [Path(ctx.start), *(Path(ctx.inputs[k]) for k in sorted(ctx.inputs))]
        found = ctx.__dict__["_checkpoints"] = Checkpoints.for_run(ctx.root, what, inputs,
                                                                   ctx.runtime.checkpoint_steps)
    return found


def _step(folder: Path) -> int:
    m = re.fullmatch(r"checkpoint-(\d+)", folder.name)
    return int(m.group(1)) if m else -1


class Checkpoints:
    """One run's checkpoint folder; `every` None (or 0) turns checkpointing off."""

    def __init__(self, folder: Path, every: int | None):
        self.folder = Path(folder)
        self.every = every or None

    @classmethod
    def for_run(cls, root: Path, params: dict[str, Any], inputs: list[Path], every: int | None) -> Checkpoints:
        return cls(Path(root) / ROOT / key(params, inputs), every)

    def complete(self) -> list[Path]:
        """The finished checkpoints, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.iterdir() if _step(p) >= 0 and (p / COMPLETE).is_file()]
        return sorted(found, key=_step)

    def resume_from(self) -> str | None:
        """The last finished checkpoint (Trainer's `resume_from_checkpoint`), or None to start from step 0."""
        if not self.every:
            return None
        found = self.complete()
        return str(found[-1]) if found else None

    def trainer_args(self) -> dict[str, Any]:
        """TrainingArguments for saving: every N steps into the folder; rotation is ours (see the docstring)."""
        if not self.every:
            return {"save_strategy": "no"}
        return {"save_strategy": "steps", "save_steps": self.every, "save_total_limit": None,
                "save_only_model": False}

    def callback(self):
        """Marks a checkpoint complete once Trainer has saved it whole, then removes the older ones."""
        from transformers import TrainerCallback

        folder = self.folder

        class MarkComplete(TrainerCallback):
            def on_save(self, args, state, control, **kw):
                if not state.is_world_process_zero:
                    return
                done = folder / f"checkpoint-{state.global_step}"
                if done.is_dir():
                    (done / COMPLETE).write_text(f"{state.global_step}\n")
                    for old in folder.iterdir():
                        if 0 <= _step(old) < state.global_step:
                            shutil.rmtree(old, ignore_errors=True)

        return MarkComplete()

    def finish(self) -> None:
        """Remove the run's checkpoints once its outputs are written (the next run with these inputs is DVC's
        no-op, and a forced one starts afresh)."""
        shutil.rmtree(self.folder, ignore_errors=True)
