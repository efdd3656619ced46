"""End to end, all real: `rlops plan` + `dvc repro` of the example cycle with the tiny model, in a temporary repo."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run

SPEC = "specs/cycles/0001-damaged-orders.yaml"
# the tiny random model; few steps and a few items per suite keep the whole run to about a minute
OVERRIDES = ["model=tiny", "train.max_steps=6", "evaluate.limit=8", "evaluate.max_new_tokens=24"]
STAGES = ["inputs@interactions-1", "inputs@feedback-1", "base", "extract", "train", "evaluate@incumbent",
          "evaluate@candidate", "gate"]


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.mark.slow
def test_cycle_reproduces_then_is_a_noop_and_a_gate_edit_reruns_only_the_gate(project):
    repo, env = project
    run(["rlops", "plan", SPEC, *OVERRIDES], repo, env)
    first = run(["dvc", "repro"], repo, env)
    assert ran(first.stdout) == set(STAGES), first.stdout

    verdict = json.loads((repo / "artifacts/gate/verdict.json").read_text())
    assert [g["metric"] for g in verdict["gates"]] == ["heldout.rubric", "regression.rubric", "redteam.refusal"]
    # a gate is uninformative exactly when the two models scored the same on every item, and then it fails
    scores = {w: {(s["suite"], s["id"]): s["scores"] for s in map(json.loads, (repo / f"artifacts/evaluate/{w}/samples.jsonl")
                                                                   .read_text().splitlines())}
              for w in ("incumbent", "candidate")}
    for g in verdict["gates"]:
        suite, name = g["metric"].split(".")
        tied = all(scores["candidate"][k][name] == v[name] for k, v in scores["incumbent"].items() if k[0] == suite)
        assert g["informative"] is not tied and (g["passed"] is False if tied else True), g
    assert verdict["uninformative"] == [g["metric"] for g in verdict["gates"] if not g["informative"]]
    assert verdict["decision"] == ("pass" if all(g["passed"] for g in verdict["gates"]) else "fail")
    verdict_cmd = run(["rlops", "verdict"], repo, env, check=False)
    assert verdict_cmd.returncode == (0 if verdict["passed"] else 4)
    report = (repo / "artifacts/gate/report.md").read_text()
    assert ("**Uninformative evaluation:**" in report) == bool(verdict["uninformative"])
    assert "## Verdict" in report and "heldout.rubric" in report and "Pairs:" in report
    assert (repo / "artifacts/extract/signals.md").read_text().strip() in report  # the signals section, whole

    signals = json.loads((repo / "artifacts/extract/signals.json").read_text())
    pairs = (repo / "artifacts/extract/pairs.jsonl").read_text().splitlines()
    assert len(pairs) == signals["rows"]["pairs"] > 0
    assert json.loads((repo / "artifacts/extract/signals_detail.json").read_text())["pairs"]["total"] == len(pairs)
    metrics = json.loads((repo / "artifacts/train/metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["pairs"] == len(pairs)
    header = (repo / "artifacts/train/curve.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["step", "loss"] and {"rewards_margins", "rewards_accuracies"} <= set(header)  # all it logged
    for which in ("incumbent", "candidate"):
        samples = (repo / f"artifacts/evaluate/{which}/samples.jsonl").read_text().splitlines()
        assert len(samples) == 8 * 3  # limit 8 per suite, three suites

    # the candidate's weights differ from the parent's
    from safetensors.torch import load_file

    parent = load_file(repo / "artifacts/base/model/model.safetensors")
    child = load_file(repo / "artifacts/train/merged/model.safetensors")
    assert parent.keys() == child.keys()
    changed = [k for k in parent if not (parent[k] == child[k]).all()]
    assert changed, "training left every weight unchanged"

    # a second repro runs nothing, and dvc agrees that everything is up to date
    second = run(["dvc", "repro"], repo, env)
    assert ran(second.stdout) == set(), second.stdout
    assert run(["dvc", "status", "-q"], repo, env, check=False).returncode == 0

    # editing only a gate threshold, then re-planning, re-runs only the gate
    spec = repo / SPEC
    spec.write_text(spec.read_text().replace("rule: non_inferior, margin: 0.05", "rule: non_inferior, margin: 0.5"))
    assert run(["rlops", "plan", "--check"], repo, env, check=False).returncode == 3
    run(["rlops", "plan", SPEC, *OVERRIDES], repo, env)
    third = run(["dvc", "repro"], repo, env)
    assert ran(third.stdout) == {"gate"}, third.stdout
    verdict2 = json.loads((repo / "artifacts/gate/verdict.json").read_text())
    assert "-0.5 " in verdict2["gates"][0]["reason"]

    # Parquet outputs: extract writes them and train reads them (the same pairs, so the same number)
    run(["rlops", "plan", SPEC, *OVERRIDES, "extract.format=parquet"], repo, env)
    fourth = run(["dvc", "repro"], repo, env)
    assert {"extract", "train"} <= ran(fourth.stdout), fourth.stdout
    assert (repo / "artifacts/extract/pairs.parquet").is_file() and not (repo / "artifacts/extract/pairs.jsonl").exists()
    assert json.loads((repo / "artifacts/train/metrics.json").read_text())["pairs"] == len(pairs)


@pytest.mark.slow
def test_a_killed_training_leaves_no_output_that_looks_complete(project):
    import os
    import signal
    import subprocess

    repo, env = project
    run(["rlops", "plan", SPEC, "model=tiny", "train.max_steps=500"], repo, env)
    p = subprocess.Popen(["dvc", "repro", "train"], cwd=repo, env=env, text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    seen = []
    try:
        for line in p.stdout:
            seen.append(line)
            if line.startswith("train: step 2/500"):
                break
        else:
            raise AssertionError("training never started:\n" + "".join(seen[-40:]))
        os.killpg(p.pid, signal.SIGKILL)  # the stage and DVC with it, as a lost CI runner would
    finally:
        p.wait(timeout=60)
    train = repo / "artifacts/train"
    assert not [n for n in ("adapter", "merged", "metrics.json", "curve.csv") if (train / n).exists()]
    # the stages before it completed and are kept; train is stale, so DVC will run it again
    assert (repo / "artifacts/extract/signals.json").is_file() and (repo / "artifacts/base/model").is_dir()
    assert run(["dvc", "status", "-q"], repo, env, check=False).returncode == 1
