"""Time each stage of the main job (`dvc repro` of the example cycle) in a fresh copy of the project.

    .venv/bin/python benchmarks/stage_times.py                 # the README's main job: SmolLM2-135M-Instruct
    .venv/bin/python benchmarks/stage_times.py model=tiny      # any `rlops plan` overrides

Each stage runs alone (`dvc repro --single-item`), in pipeline order, so its wall time includes its own
interpreter start and imports, as in `dvc repro`. Prints a Markdown table to paste into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch_project import copy_project

SPEC = "specs/cycles/0001-damaged-orders.yaml"
STAGES = ["base", "extract", "train", "evaluate@incumbent", "evaluate@candidate", "gate"]


def sh(cmd, cwd, env):
    p = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if p.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def main(overrides: list[str]) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", HF_HUB_OFFLINE="1")
    with tempfile.TemporaryDirectory(prefix="rlops-bench-") as tmp:
        repo = Path(tmp)
        copy_project(repo, env)
        sh(["rlops", "plan", SPEC, *overrides], repo, env)
        rows, total = [], 0.0
        for stage in STAGES:
            t = time.perf_counter()
            sh(["dvc", "repro", "--single-item", stage], repo, env)
            dt = time.perf_counter() - t
            total += dt
            rows.append((stage, dt))
            print(f"{stage}: {dt:.1f} s", file=sys.stderr, flush=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        # exit 4 (a failed gate) is a normal outcome here, so not through sh()
        verdict = subprocess.run(["rlops", "verdict"], cwd=repo, env=env, text=True, capture_output=True).stdout
        train = (repo / "artifacts/train/metrics.json").read_text()
    print(f"\nrlops plan {SPEC} {' '.join(overrides)}".rstrip())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}\n")
    print("| stage | seconds |\n|---|---:|")
    for stage, dt in rows:
        print(f"| {stage} | {dt:.1f} |")
    print(f"| **total** | **{total:.1f}** |\n\npeak RSS of the largest stage process: {peak:.0f} MiB")
    print(f"\ntrain metrics: {train}\n{verdict}")


if __name__ == "__main__":
    main(sys.argv[1:])
