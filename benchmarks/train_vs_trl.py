"""The train stage (rlops' code path) against a plain TRL script: same model, data, steps and settings.

    .venv/bin/python benchmarks/train_vs_trl.py                        # dpo, SmolLM2-135M-Instruct, 10 steps, 3 pairs
    .venv/bin/python benchmarks/train_vs_trl.py --steps 5 --pairs 2 model=tiny   # any `rlops plan` overrides

In a fresh copy of the project, `rlops plan` and `dvc repro base extract` prepare the parent and the pairs once.
Then A (rlops: `python pipelines/train.py`, the command dvc.yaml runs, so its interpreter start, imports, reading
params.yaml, the checkpoint key's digests, the checkpoint saves of runtime.checkpoint_steps, the merge and the
atomic writes count) and B (plain TRL: load the same parent and pairs, DPOTrainer with the same DPOConfig values and
LoRA, train, save the adapter and the merged weights) alternate A B A B ..., so a change in the machine's load hits
both. Prints each run, the medians, their ratio and the load (`uptime`) before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch_project import copy_project

SPEC = "specs/cycles/0001-damaged-orders.yaml"

# B: what a user would write with TRL alone, given the same parent folder, pairs file and params.yaml values
PLAIN_TRL = r'''
import json, sys, yaml
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

base, pairs, out = sys.argv[1:4]
p = yaml.safe_load(open("params.yaml"))
t, seed = p["train"], p["seed"]
tok = AutoTokenizer.from_pretrained(base)
rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in map(json.loads, open(pairs))]
model = AutoModelForCausalLM.from_pretrained(base)
args = DPOConfig(output_dir=out + "/scratch", beta=t["beta"], loss_type=[t["loss_type"]], learning_rate=t["learning_rate"],
                 max_steps=t["max_steps"], per_device_train_batch_size=t["per_device_train_batch_size"],
                 gradient_accumulation_steps=t["gradient_accumulation_steps"], max_length=t["max_length"],
                 warmup_steps=t["warmup_steps"], logging_steps=t["logging_steps"],
                 gradient_checkpointing=t["gradient_checkpointing"], bf16=False, fp16=False, use_cpu=True, seed=seed,
                 data_seed=seed, report_to="none", save_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
lora = t["lora"]
trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                     peft_config=LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                            target_modules=lora["target_modules"], task_type="CAUSAL_LM"))
trainer.train()
trainer.model.save_pretrained(out + "/adapter")
trainer.model.merge_and_unload().save_pretrained(out + "/merged")
tok.save_pretrained(out + "/merged")
'''


def sh(cmd, cwd, env) -> float:
    started = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if p.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return time.perf_counter() - started


def uptime() -> str:
    return subprocess.run(["uptime"], text=True, capture_output=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=3, help="A/B pairs of runs")
    ap.add_argument("overrides", nargs="*", help="rlops plan overrides, e.g. model=tiny")
    a = ap.parse_args()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    with tempfile.TemporaryDirectory(prefix="rlops-bench-") as tmp:
        repo = Path(tmp) / "repo"
        copy_project(repo, env)
        (Path(tmp) / "plain_trl.py").write_text(PLAIN_TRL)
        sh(["rlops", "plan", SPEC, f"train.max_steps={a.steps}", *a.overrides], repo, env)
        sh(["dvc", "repro", "base", "extract"], repo, env)
        load_before = uptime()
        times: dict[str, list[float]] = {"rlops": [], "trl": []}
        for i in range(a.pairs):
            for who in ("rlops", "trl"):
                if who == "rlops":
                    dt = sh([sys.executable, "pipelines/train.py"], repo, env)
                else:
                    out = Path(tmp) / f"trl-{i}"
                    dt = sh([sys.executable, str(Path(tmp) / "plain_trl.py"), "artifacts/base/model",
                             "artifacts/extract/pairs.jsonl", str(out)], repo, env)
                    shutil.rmtree(out)
                times[who].append(dt)
                print(f"run {i + 1} {who}: {dt:.1f} s  ({uptime().split('load average: ')[-1]})", flush=True)
        load_after = uptime()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; overrides: {' '.join(a.overrides) or 'none'}; {a.steps} steps")
    print(f"load before: {load_before}\nload after:  {load_after}")
    print(f"median rlops {med['rlops']:.1f} s, plain TRL {med['trl']:.1f} s, ratio {med['rlops'] / med['trl']:.3f} "
          f"(target <= 1.05); runs rlops {[round(t, 1) for t in times['rlops']]}, trl "
          f"{[round(t, 1) for t in times['trl']]}")


if __name__ == "__main__":
    main()
