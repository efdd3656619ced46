"""What a cycle's evaluation costs with the evaluation cache, against evaluating both models, in the same run.

    .venv/bin/python benchmarks/eval_cache.py                      # the demo model, SmolLM2-135M-Instruct
    .venv/bin/python benchmarks/eval_cache.py model=tiny           # any `rlops plan` overrides

In a fresh copy of the project: `rlops plan`, `dvc repro base`, and a candidate made without training (the parent's
weights with one tensor nudged: another model, so another cache key, with the same evaluation cost as a trained
one). Then, each stage alone with `dvc repro --single-item --force` (so each time includes DVC, its interpreter
start, imports, hashing the model, as in `dvc repro`):

- both:   no cache; evaluate@incumbent, then evaluate@candidate (what every cycle cost before the cache);
- cached: the incumbent's entry from `both` kept, the candidate's removed (a new candidate); evaluate@candidate,
          then evaluate@incumbent, which is a cache hit.

Prints the two totals, their ratio (target: at most 0.55) and a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch_project import copy_project

SPEC = "specs/cycles/0001-damaged-orders.yaml"


def sh(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if p.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def nudged_copy(src: Path, dst: Path) -> None:
    """The parent's weights with one tensor changed by a tiny amount: a different model to evaluate."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    weights = load_file(src / "model.safetensors")
    name = sorted(weights)[-1]
    weights[name] = weights[name] + 1e-6
    save_file(weights, dst / "model.safetensors", metadata={"format": "pt"})


def timed(stage: str, repo: Path, env: dict[str, str]) -> tuple[float, str]:
    t = time.perf_counter()
    out = sh(["dvc", "repro", "--single-item", "--force", stage], repo, env).stdout
    dt = time.perf_counter() - t
    hit = "cache hit" in out
    print(f"  {stage}: {dt:.1f} s ({'cache hit' if hit else 'evaluated'})", file=sys.stderr, flush=True)
    return dt, "cache hit" if hit else "evaluated"


def main(overrides: list[str]) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", HF_HUB_OFFLINE="1",
               DVC_NO_ANALYTICS="1")
    with tempfile.TemporaryDirectory(prefix="rlops-bench-") as tmp:
        repo = Path(tmp)
        copy_project(repo, env)
        sh(["rlops", "plan", SPEC, *overrides], repo, env)
        sh(["dvc", "repro", "--single-item", "base"], repo, env)
        nudged_copy(repo / "artifacts/base/model", repo / "artifacts/train/merged")
        sh([sys.executable, "-c", "import lm_eval, transformers, torch"], repo, env)  # warm the file cache first
        load = os.getloadavg()

        print("both models evaluated:", file=sys.stderr)
        both = [("evaluate@incumbent", *timed("evaluate@incumbent", repo, env)),
                ("evaluate@candidate", *timed("evaluate@candidate", repo, env))]
        shutil.rmtree(repo / ".rlops/eval-cache/candidate")  # a new candidate: only the incumbent's entry is known
        print("with the cache:", file=sys.stderr)
        cached = [("evaluate@candidate", *timed("evaluate@candidate", repo, env)),
                  ("evaluate@incumbent", *timed("evaluate@incumbent", repo, env))]
        load = tuple(max(a, b) for a, b in zip(load, os.getloadavg()))
        items = sum(1 for _ in (repo / "artifacts/evaluate/incumbent/samples.jsonl").open())

    total_both, total_cached = sum(r[1] for r in both), sum(r[1] for r in cached)
    ratio = total_cached / total_both
    print(f"\nrlops plan {SPEC} {' '.join(overrides)}".rstrip())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}; load average (1, 5, 15 min, the higher of start and end): "
          f"{', '.join(f'{x:.2f}' for x in load)}; {items} items per model\n")
    print("| run | stage | outcome | seconds |\n|---|---|---|---:|")
    for name, rows in (("both", both), ("cached", cached)):
        for stage, dt, how in rows:
            print(f"| {name} | {stage} | {how} | {dt:.1f} |")
    print(f"| **both** | | | **{total_both:.1f}** |\n| **cached** | | | **{total_cached:.1f}** |")
    print(f"\nratio cached / both: {ratio:.3f} (target <= 0.55: {'met' if ratio <= 0.55 else 'NOT met'})")


if __name__ == "__main__":
    main(sys.argv[1:])
