"""The `train` stage for `method: dpo`: TRL's DPOTrainer with LoRA from the parent checkpoint.

Writes the LoRA adapter, a merged checkpoint (what evaluation and serving load), training metrics and the
loss / reward-margin curve. Device and precision come from `runtime`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from rlops import layout, settings
from rlops.errors import StageFailed
from rlops.io import atomic_dir, atomic_write_json, atomic_write_text
from rlops.train.checkpoints import Checkpoints, weights_digest
from rlops.train.runtime import Runtime


class DPOParams(settings.DPOSettings):
    """The `train` section of params.yaml for DPO, typed (declared in rlops/settings.py; defaults in
    pipelines/conf/method/dpo.yaml, generated from it)."""

    @classmethod
    def from_mapping(cls, m: dict[str, Any]) -> "DPOParams":
        # a hand-edited loss_type is refused here by field: TRL's own ValueError would read as rlops' bug
        return settings.read(cls, m, "train", hint="set it in the cycle spec's train.overrides and run `rlops plan` "
                                                    "again")


def read_pairs(path: Path) -> list[dict[str, Any]]:
    """The prompt/chosen/rejected of every row of the extract stage's pairs.jsonl or pairs.parquet.

    Parquet stores messages as structs with every field, so a field a message does not have comes back as None;
    such fields are left out again (role and content are always kept), giving the rows pairs.jsonl would give."""
    fields = ("prompt", "chosen", "rejected")
    if path.suffix == ".parquet":
        import duckdb

        con = duckdb.connect()
        try:
            found = con.execute(f"SELECT {', '.join(fields)} FROM read_parquet(?)", [str(path)]).fetchall()
        finally:
            con.close()
        return [{f: [_message(m) for m in value] for f, value in zip(fields, row)} for row in found]
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
    return [{k: [_as_text(m) for m in v] for k, v in row.items()} for row in rows]


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


def _load_pairs(path: Path, tokenizer):
    from datasets import Dataset

    rows = read_pairs(path)
    if not rows:
        raise StageFailed(f"{path} holds no preference pairs",
                          hint=f"see {layout.SIGNALS_MD} (or {layout.SIGNALS_DETAIL}) for what was dropped and why")
    return Dataset.from_list(for_template(rows, tokenizer.chat_template))


def _curve_csv(history: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["step", "loss", "reward_margin", "reward_accuracy"])
    for h in history:
        if "loss" in h and "step" in h:
            w.writerow([h["step"], round(h["loss"], 6), round(h.get("rewards/margins", 0.0), 6),
                        round(h.get("rewards/accuracies", 0.0), 6)])
    return out.getvalue()


def _progress_callback(total: int):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                print(f"train: step {state.global_step}/{total} loss {logs['loss']:.4f} "
                      f"margin {logs.get('rewards/margins', 0.0):+.4f}", flush=True)

    return Progress()


def train(params: dict[str, Any], root: Path, base_dir: Path, pairs: Path, out_dir: Path) -> dict[str, Any]:
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import DPOConfig, DPOTrainer

    p = DPOParams.from_mapping(params["train"])
    rt = Runtime.from_mapping(params["runtime"])
    rt.apply()
    seed = int(params["seed"])
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    dataset = _load_pairs(pairs, tokenizer)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=rt.torch_dtype())
    print(f"train: dpo on {len(dataset)} pairs, {p.max_steps} steps, device {rt.device}, {rt.precision}", flush=True)
    started = time.time()
    ckpt = Checkpoints.for_run(root, params, [base_dir, pairs], rt.checkpoint_steps)
    with tempfile.TemporaryDirectory(prefix="rlops-train-") as scratch:
        args = DPOConfig(
            output_dir=str(ckpt.folder) if ckpt.every else scratch,
            **ckpt.trainer_args(),
            beta=p.beta,
            loss_type=list(p.loss_type) if isinstance(p.loss_type, list) else [p.loss_type],
            learning_rate=p.learning_rate,
            max_steps=p.max_steps,
            per_device_train_batch_size=p.per_device_train_batch_size,
            gradient_accumulation_steps=p.gradient_accumulation_steps,
            max_length=p.max_length,
            warmup_steps=p.warmup_steps,
            logging_steps=p.logging_steps,
            gradient_checkpointing=p.gradient_checkpointing,
            bf16=rt.precision == "bf16",
            fp16=rt.precision == "fp16",
            use_cpu=rt.device == "cpu",
            seed=seed,
            data_seed=seed,
            report_to=rt.trackers() or "none",
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        lora = LoraConfig(r=p.lora.r, lora_alpha=p.lora.alpha, lora_dropout=p.lora.dropout,
                          target_modules=p.lora.target_modules, task_type="CAUSAL_LM")
        trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora, callbacks=[_progress_callback(p.max_steps), ckpt.callback()])
        trainer.remove_callback(PrinterCallback)  # our one-line progress replaces its raw dicts
        resume = ckpt.resume_from()
        if resume:
            print(f"train: resuming from {resume}", flush=True)
        trainer.train(resume_from_checkpoint=resume)
    history = [h for h in trainer.state.log_history if "loss" in h]
    if not history:
        raise StageFailed("training logged no loss", hint="set train.logging_steps <= train.max_steps")
    last = history[-1]
    if any(math.isnan(h["loss"]) for h in history):
        raise StageFailed("the training loss became NaN", hint="lower train.learning_rate or use runtime.precision fp32")
    if not trainer.accelerator.is_main_process:
        return {}
    peft_model = trainer.model
    with atomic_dir(out_dir / "adapter") as tmp:
        peft_model.save_pretrained(tmp)
    merged = peft_model.merge_and_unload()
    with atomic_dir(out_dir / "merged") as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    metrics = {
        "method": "dpo",
        "pairs": len(dataset),
        "parent_digest": weights_digest(base_dir),
        "steps": trainer.state.global_step,
        "loss": round(last["loss"], 6),
        "loss_first": round(history[0]["loss"], 6),
        "reward_margin": round(last.get("rewards/margins", 0.0), 6),
        "reward_accuracy": round(last.get("rewards/accuracies", 0.0), 6),
        "seconds": round(time.time() - started, 1),
    }
    atomic_write_text(out_dir / "curve.csv", _curve_csv(history))
    atomic_write_json(out_dir / "metrics.json", metrics)
    ckpt.finish()
    print(f"train: done in {metrics['seconds']} s, loss {metrics['loss_first']} -> {metrics['loss']}", flush=True)
    return metrics
