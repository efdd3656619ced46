"""What every train method shares: the context it runs in, loading the start checkpoint, LoRA or full fine-tuning,
the TRL config built from its settings, the curve, the outputs and the progress line.

A method's `run(ctx)` reads its sets from `ctx.inputs`, builds its dataset and its TRL trainer, and returns
`finish(ctx, trainer, tokenizer, {...its own metrics})`. Heavy imports live inside the functions.

Outputs (in `ctx.out_dir`, each written atomically): `adapter/` (the LoRA adapter; for a full fine-tune a note
that there is none), `merged/` (the weights evaluation and serving load), `metrics.json` (the same bytes for the
same inputs on any machine: no timings, no absolute paths) and `curve.csv` (every numeric key the trainer logged).
Timings go to `timings.json` beside them, which DVC does not hash (see rlops/stages.py).
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlops import layout
from rlops.errors import StageFailed
from rlops.io import atomic_dir, atomic_write_json, atomic_write_text
from rlops.train.runtime import Runtime, resume_checkpoint, runtime_args


@dataclass
class TrainContext:
    """Everything a method's run function needs; built by rlops/stages.py for each step."""

    params: dict[str, Any]  # the whole params.yaml
    root: Path  # the repository root
    settings: Any  # the method's typed settings (its `components.Method.settings` model)
    runtime: Runtime
    seed: int
    start: Path  # the checkpoint this step starts from: the parent, or the previous recipe step's merged weights
    inputs: dict[str, Path]  # set name -> extract file (methods.input_files)
    out_dir: Path  # where this step writes adapter/, merged/, metrics.json, curve.csv
    label: str = "train"  # the progress lines' prefix, e.g. "train" or "train 2-dpo"
    timings: dict[str, float] = field(default_factory=dict)  # filled by finish; not hashed by DVC


# ---- data -------------------------------------------------------------------------------------------------------

def read_rows(path: Path, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The `fields` of every row of an extract set (.jsonl or .parquet).

    Parquet stores messages as structs with every field, so a field a message does not have comes back as None;
    such fields are left out again (role and content are always kept), giving the rows the jsonl would give."""
    if path.suffix == ".parquet":
        import duckdb

        con = duckdb.connect()
        try:
            found = con.execute(f"SELECT {', '.join(fields)} FROM read_parquet(?)", [str(path)]).fetchall()
        finally:
            con.close()
        return [{f: ([_message(m) for m in value] if isinstance(value, list) else value) for f, value in zip(fields, row)}
                for row in found]
    with path.open(encoding="utf-8") as f:
        return [{k: row[k] for k in fields} for row in map(json.loads, f)]


def _message(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in m.items() if v is not None or k in ("role", "content")}
    if out.get("tool_calls"):
        out["tool_calls"] = [{k: v for k, v in call.items() if v is not None} for call in out["tool_calls"]]
    return out


def for_template(rows: list[dict[str, Any]], chat_template: str | None) -> list[dict[str, Any]]:
    """The rows as the tokenizer's chat template can render them.

    A template that knows no tool calls (SmolLM2's reads only role and content) fails on an assistant message whose
    content is null, as imported agent logs have; there each tool call is written into the content as text
    (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`), so the prompt keeps what the agent did."""
    if chat_template and "tool_calls" in chat_template:
        return rows
    return [{k: ([_as_text(m) for m in v] if isinstance(v, list) else v) for k, v in row.items()} for row in rows]


def _as_text(m: dict[str, Any]) -> dict[str, Any]:
    parts = [m["content"]] if m.get("content") else []
    for call in m.get("tool_calls") or []:
        fn = call.get("function", {})
        try:
            arguments = json.loads(fn.get("arguments") or "{}")
        except ValueError:
            arguments = fn.get("arguments")
        parts.append("<tool_call>\n" + json.dumps({"name": fn.get("name"), "arguments": arguments}, ensure_ascii=False)
                     + "\n</tool_call>")
    return {"role": m["role"], "content": "\n".join(parts)}


def dataset(ctx: TrainContext, set_name: str, fields: tuple[str, ...], tokenizer):
    """One extract set as a datasets.Dataset the chat template can render; a clear error when it is empty."""
    from datasets import Dataset

    rows = read_rows(ctx.inputs[set_name], fields)
    if not rows:
        raise StageFailed(f"{ctx.inputs[set_name]} holds no rows; {ctx.settings.method} needs its {set_name} set",
                          hint=f"see {layout.SIGNALS_MD} (or {layout.SIGNALS_DETAIL}) for what was dropped and why")
    return Dataset.from_list(for_template(rows, tokenizer.chat_template))


# ---- model, adapters, TRL config ----------------------------------------------------------------------------------

def load_tokenizer(ctx: TrainContext):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ctx.start)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(ctx: TrainContext, auto_class: str = "AutoModelForCausalLM", **kw: Any):
    """The start checkpoint in the runtime's precision (`auto_class` e.g. AutoModelForSequenceClassification)."""
    import transformers

    return getattr(transformers, auto_class).from_pretrained(ctx.start, dtype=ctx.runtime.torch_dtype(), **kw)


def peft_config(ctx: TrainContext, task_type: str = "CAUSAL_LM"):
    """The LoRA adapters of the settings, or None for a full fine-tune (`lora: null`)."""
    lora = ctx.settings.lora
    if lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type=task_type)


def trl_config(config_class: type, ctx: TrainContext, output_dir: Path, **fixed: Any):
    """`config_class` (a TRL config dataclass) from the method's settings: every settings field but the ones rlops
    reads itself passes by name, then `trl`'s keys, then what runtime and seed decide, then `fixed` (the method's
    own choices). A key the class does not have is refused by field, with the fix."""
    import dataclasses

    from rlops.errors import InvalidInput, Problem

    known = {f.name for f in dataclasses.fields(config_class)}
    s = ctx.settings
    own = {k: getattr(s, k) for k in type(s).model_fields if k not in type(s).NOT_TRL}
    own = {k: (list(v) if isinstance(v, tuple) else v) for k, v in own.items()}
    wrong = [Problem("params.yaml", None, f"train.trl.{k}", f"{config_class.__name__} has no key {k!r}; remove it")
             for k in s.trl if k not in known]
    wrong += [Problem("params.yaml", None, f"train.{k}", f"{config_class.__name__} has no key {k!r} (a bug in "
                      f"rlops/train/{s.method}.py: add it to NOT_TRL)") for k in own if k not in known]
    if wrong:
        raise InvalidInput(wrong, hint="run `rlops plan` again: it checks every key against the installed trl")
    seed = ctx.seed
    values = {**own, **s.trl, "output_dir": str(output_dir), "seed": seed, "data_seed": seed, "report_to": "none",
              "save_strategy": "no", "disable_tqdm": True, "dataloader_num_workers": 0,
              "bf16": ctx.runtime.precision == "bf16", "fp16": ctx.runtime.precision == "fp16",
              "use_cpu": ctx.runtime.device == "cpu", **runtime_args(ctx.runtime, ctx.out_dir), **fixed}
    return config_class(**values)


# ---- training and its outputs ------------------------------------------------------------------------------------

def progress_callback(ctx: TrainContext, keys: tuple[str, ...] = ()):
    """One line per logged step: the step, the loss and the method's own keys (e.g. rewards/margins)."""
    from transformers import TrainerCallback

    label, total = ctx.label, ctx.settings.max_steps

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                more = "".join(f" {k.split('/')[-1]} {logs[k]:+.4f}" for k in keys if k in logs)
                print(f"{label}: step {state.global_step}/{total} loss {logs['loss']:.4f}{more}", flush=True)

    return Progress()


def train(ctx: TrainContext, trainer) -> list[dict[str, Any]]:
    """Run the trainer (resuming where runtime says) and return its logged history; refuse NaN or no loss."""
    import time

    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the progress line replaces its raw dicts
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_checkpoint(ctx.runtime, ctx.out_dir))
    ctx.timings["train_seconds"] = round(time.perf_counter() - started, 1)
    history = [h for h in trainer.state.log_history if "loss" in h]
    if not history:
        raise StageFailed("training logged no loss", hint="set train.logging_steps <= train.max_steps")
    if any(math.isnan(h["loss"]) for h in history):
        raise StageFailed("the training loss became NaN", hint="lower train.learning_rate or use runtime.precision fp32")
    return history


def curve_csv(history: list[dict[str, Any]]) -> str:
    """Every numeric key logged with a loss, one row per logged step (`rewards/margins` -> `rewards_margins`)."""
    keys = sorted({k for h in history for k, v in h.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step", "loss")})
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["step", "loss", *(k.replace("/", "_") for k in keys)])
    for h in history:
        w.writerow([h["step"], round(h["loss"], 6), *("" if k not in h else round(float(h[k]), 6) for k in keys)])
    return out.getvalue()


def last(history: list[dict[str, Any]], key: str) -> float | None:
    """The last logged value of `key` (rounded), or None when the method never logged it."""
    found = [h[key] for h in history if key in h]
    return round(float(found[-1]), 6) if found else None


def stable_name(ctx: TrainContext) -> str:
    """What the adapter names as its base: the start checkpoint relative to the repository root (a path that holds
    in any checkout), never the absolute path of this one."""
    try:
        return ctx.start.resolve().relative_to(ctx.root.resolve()).as_posix()
    except ValueError:
        return ctx.params["model"]["name"]


def finish(ctx: TrainContext, trainer, tokenizer, history: list[dict[str, Any]], metrics: dict[str, Any]) -> dict[str, Any]:
    """Write the adapter, the merged weights, the curve and the metrics (loss first/last + `metrics`); return them."""
    if not trainer.accelerator.is_main_process:
        return {}
    model = trainer.model
    # the adapter's config and model card name their base by the model config's path: make it one any checkout has
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.config.name_or_path = base.name_or_path = stable_name(ctx)  # the card's tags read the model's own name
    if hasattr(model, "peft_config"):
        for cfg in model.peft_config.values():
            cfg.base_model_name_or_path = stable_name(ctx)
        with atomic_dir(ctx.out_dir / "adapter") as tmp:
            model.save_pretrained(tmp)
        model = model.merge_and_unload()
    else:  # a full fine-tune has no adapter: the folder says so, so every declared output exists
        with atomic_dir(ctx.out_dir / "adapter") as tmp:
            (tmp / "README.md").write_text("Full fine-tune (train.lora: null): no adapter; the weights are in merged/.\n")
    with atomic_dir(ctx.out_dir / "merged") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    out = {"method": ctx.settings.method, "steps": trainer.state.global_step,
           "loss_first": round(history[0]["loss"], 6), "loss": round(history[-1]["loss"], 6), **metrics}
    atomic_write_text(ctx.out_dir / "curve.csv", curve_csv(history))
    atomic_write_json(ctx.out_dir / "metrics.json", out)
    print(f"{ctx.label}: done in {ctx.timings.get('train_seconds')} s, loss {out['loss_first']} -> {out['loss']}",
          flush=True)
    return out


def scratch():
    """A temporary folder for TRL's output_dir (nothing of it is kept: the outputs are written by `finish`)."""
    return tempfile.TemporaryDirectory(prefix="rlops-train-")
