"""Resumable training, all real: the train stage killed with SIGKILL mid-run by `dvc repro`, resumed by the next
`dvc repro` from its last checkpoint, ends with the adapter of an uninterrupted run.

Tolerance: on CPU in fp32 a resumed run replays the same operations on the same data in the same order from the
restored weights, optimizer, scheduler and RNG states, so the adapters agree to float32 rounding; RESUME_ATOL (1e-6,
about eight ulps of the adapters' largest entries) leaves room for a kernel that reduces in another order, and is
a thousand times smaller than one optimizer step moves a weight here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import run

SPEC = "specs/cycles/0001-damaged-orders.yaml"
STEPS, EVERY = 10, 2
OVERRIDES = ["model=tiny", f"train.max_steps={STEPS}", f"runtime.checkpoint_steps={EVERY}", "train.max_length=96",
             "train.per_device_train_batch_size=2"]
RESUME_ATOL = 1e-6


def adapter(repo: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(repo / "artifacts/train/adapter/adapter_model.safetensors")


def complete_checkpoints(repo: Path) -> list[Path]:
    return sorted((repo / ".rlops/checkpoints").glob("*/checkpoint-*/COMPLETE"))


@pytest.mark.slow
def test_a_train_stage_killed_with_sigkill_resumes_and_ends_with_the_same_adapter(project):
    from rlops.train.checkpoints import weights_digest

    repo, env = project
    run(["rlops", "plan", SPEC, *OVERRIDES], repo, env)
    run(["dvc", "repro", "base", "extract"], repo, env)

    # the train stage's first run, killed (with its child processes) once its first checkpoint is complete
    log = (repo.parent / "killed.log").open("w")
    killed = subprocess.Popen(["dvc", "repro", "train"], cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    for _ in range(18000):  # polls for up to ~15 min (a count, not the clock: no test asserts on wall-clock time)
        if complete_checkpoints(repo) or killed.poll() is not None:
            break
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    found = complete_checkpoints(repo)
    assert found, f"no checkpoint before the stage ended; its output:\n{(repo.parent / 'killed.log').read_text()}"
    step = int(found[-1].parent.name.split("-")[1])
    assert 0 < step < STEPS
    assert not (repo / "artifacts/train/metrics.json").exists(), "the killed stage wrote its metrics"

    # the next `dvc repro` resumes from that checkpoint, finishes, and removes the run's checkpoints
    resumed = run(["dvc", "repro", "train"], repo, env)
    assert f"checkpoint-{step}" in "".join(ln for ln in resumed.stdout.splitlines() if "train: resuming from" in ln), \
        resumed.stdout
    assert not complete_checkpoints(repo)
    after_resume = adapter(repo)
    resumed_metrics = json.loads((repo / "artifacts/train/metrics.json").read_text())
    assert resumed_metrics["steps"] == STEPS
    assert resumed_metrics["parent_digest"] == weights_digest(repo / "artifacts/base/model")

    # an uninterrupted run of the same stage (forced past DVC's run cache, which would restore the resumed outputs)
    fresh = run(["dvc", "repro", "--force", "--no-run-cache", "--single-item", "train"], repo, env)
    assert "resuming from" not in fresh.stdout and f"step {STEPS}/{STEPS}" in fresh.stdout
    reference = adapter(repo)
    assert after_resume.keys() == reference.keys()
    worst = max(float((after_resume[k] - reference[k]).abs().max()) for k in reference)
    assert worst <= RESUME_ATOL, f"the resumed adapter differs from the uninterrupted one by {worst}"
    print(f"largest difference between the resumed and the uninterrupted adapter: {worst}")
    assert json.loads((repo / "artifacts/train/metrics.json").read_text()) == resumed_metrics
