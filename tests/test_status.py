"""`rlops status` and the staleness of `rlops verdict` (issue 10 item 5): on a real project copy, real dvc."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import run

SPEC = "specs/cycles/0001-damaged-orders.yaml"
TINY = ["model=tiny", "train.max_steps=6", "evaluate.limit=8", "evaluate.max_new_tokens=24"]


def stages_of(repo) -> list[str]:
    """Every stage of dvc.yaml as DVC names it (foreach stages as stage@key), in file order."""
    names = []
    sources = yaml.safe_load((repo / "params.yaml").read_text())["data"]["sources"]
    for name, stage in yaml.safe_load((repo / "dvc.yaml").read_text())["stages"].items():
        keys = stage.get("foreach")
        keys = sources if keys == "${data.sources}" else keys
        names += [f"{name}@{key}" for key in keys] if keys else [name]
    return names


def section(out: str, name: str) -> str:
    """The lines of one part of `rlops status` (e.g. 'plan:' and its indented continuation)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(name))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return "\n".join(lines[start:end])


def status(repo, env) -> str:
    p = run(["rlops", "status"], repo, env)
    assert p.returncode == 0 and "Traceback" not in p.stderr
    return p.stdout


def test_status_after_plan_after_a_spec_edit_and_after_a_data_change(project):
    repo, env = project
    run(["rlops", "plan", SPEC, *TINY], repo, env)
    out = status(repo, env)
    assert section(out, "cycle:") == f"cycle:    1 (planned from {SPEC} with {' '.join(TINY)})"
    assert section(out, "plan:").startswith("plan:     current")
    every = stages_of(repo)
    assert f"would re-run {len(every)}: " in section(out, "stages:")
    assert set(section(out, "stages:").split(": ", 2)[2].split(", ")) == set(every)
    assert section(out, "verdict:").startswith("verdict:  none yet")

    # extract alone, for real: then it is up to date, and a change to its logs re-runs it and what follows it
    run(["dvc", "repro", "extract"], repo, env)
    rerun = section(status(repo, env), "stages:").split(": ", 2)[2].split(", ")
    assert "extract" not in rerun and "base" in rerun and "gate" in rerun
    feedback = repo / "data/example/feedback.jsonl"
    feedback.write_text(feedback.read_text() + feedback.read_text().splitlines()[0] + "\n")
    rerun = section(status(repo, env), "stages:").split(": ", 2)[2].split(", ")
    assert {"extract", "train", "evaluate@candidate", "gate"} <= set(rerun)
    assert rerun.index("extract") < rerun.index("train") < rerun.index("gate")  # in pipeline order

    # editing the spec without re-planning: the plan is stale, with the one value that changed
    spec = repo / SPEC
    spec.write_text(spec.read_text().replace("rule: non_inferior, margin: 0.05", "rule: non_inferior, margin: 0.2"))
    plan = section(status(repo, env), "plan:")
    assert plan.startswith("plan:     STALE") and "gate.rules[0].margin: 0.05 in params.yaml, 0.2 planned" in plan
    assert len([line for line in plan.splitlines() if " planned" in line]) == 1  # nothing else changed
    assert f"run `rlops plan {SPEC} {' '.join(TINY)}`" in plan


def test_status_and_verdict_import_nothing_heavy(project):
    """DVC is asked in a subprocess: the `rlops` process itself stays light (fresh interpreter)."""
    import subprocess
    import sys

    from test_light_imports import PROBE

    repo, env = project
    gate = repo / "artifacts/gate"
    gate.mkdir(parents=True)
    (gate / "verdict.json").write_text(json.dumps({"passed": False, "decision": "fail", "gates": []}))
    for args, rc in ((["status"], 0), (["verdict"], 4)):
        p = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=repo, env=env, text=True, capture_output=True)
        result = json.loads(p.stdout.strip().splitlines()[-1])
        assert result == {"rc": rc, "heavy": []}, p.stderr


def test_verdict_says_when_it_is_stale(project):
    """A verdict on disk, then the spec edited without re-planning: the old verdict is not presented as current."""
    repo, env = project
    run(["rlops", "plan", SPEC, *TINY], repo, env)
    gate = repo / "artifacts/gate"
    gate.mkdir(parents=True)
    (gate / "verdict.json").write_text(json.dumps({"passed": True, "decision": "pass", "cycle": 1, "gates": [
        {"passed": True, "metric": "heldout.rubric", "rule": "non_inferior", "reason": "r"}]}))
    spec = repo / SPEC
    spec.write_text(spec.read_text().replace("beta: 0.1", "beta: 0.3"))
    p = run(["rlops", "verdict"], repo, env, check=False)
    assert p.returncode == 0  # the decision's exit code is unchanged; what it says is not
    assert "verdict: PASS (STALE)" in p.stdout
    assert "params.yaml differs from its spec and the conf" in p.stdout
    assert "DVC outputs are stale: `dvc repro` would re-run" in p.stdout
    out = status(repo, env)
    assert section(out, "verdict:").startswith("verdict:  PASS, STALE")


@pytest.mark.slow
def test_the_normal_loop_a_spec_edit_without_re_planning_makes_the_verdict_stale(project):
    """The issue's case: after `dvc repro`, the spec is edited and not re-planned; `dvc repro` says up to date,
    and `rlops verdict` used to print the old verdict as if it were current."""
    repo, env = project
    run(["rlops", "plan", SPEC, *TINY], repo, env)
    run(["dvc", "repro"], repo, env)
    decision = json.loads((repo / "artifacts/gate/verdict.json").read_text())["decision"].upper()
    out = status(repo, env)
    assert section(out, "stages:").startswith("stages:   up to date")
    assert section(out, "verdict:") == f"verdict:  {decision}, current"
    assert "STALE" not in run(["rlops", "verdict"], repo, env, check=False).stdout

    spec = repo / SPEC
    spec.write_text(spec.read_text().replace("rule: non_inferior, margin: 0.05", "rule: non_inferior, margin: 0.2"))
    assert "up to date" in run(["dvc", "repro"], repo, env).stdout.lower()  # DVC reads params.yaml, not the spec
    p = run(["rlops", "verdict"], repo, env, check=False)
    assert f"verdict: {decision} (STALE)" in p.stdout and "gate.rules[0].margin: 0.05 in params.yaml, 0.2 planned" in p.stdout
    assert section(status(repo, env), "verdict:").startswith(f"verdict:  {decision}, STALE")

    # re-planned but not reproduced: the plan is current, DVC's outputs are not
    run(["rlops", "plan", SPEC, *TINY], repo, env)
    out = status(repo, env)
    assert section(out, "plan:").startswith("plan:     current")
    assert section(out, "stages:") == "stages:   `dvc repro` would re-run 1: gate"
    assert "DVC outputs are stale: `dvc repro` would re-run gate" in section(out, "verdict:")
    run(["dvc", "repro"], repo, env)
    assert "plan_stale" not in json.loads((repo / "artifacts/gate/verdict.json").read_text())
    assert "Stale plan" not in (repo / "artifacts/gate/report.md").read_text()

    # a hand edit of params.yaml is what DVC runs: the gate's report and verdict say it is not the spec's plan
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("margin: 0.2", "margin: 0.3", 1))
    run(["dvc", "repro"], repo, env)
    verdict = json.loads((repo / "artifacts/gate/verdict.json").read_text())
    assert verdict["plan_stale"] == ["gate.rules[0].margin: 0.3 in params.yaml, 0.2 planned"]
    report = (repo / "artifacts/gate/report.md").read_text()
    assert "> **Stale plan:**" in report and "> - `gate.rules[0].margin: 0.3 in params.yaml, 0.2 planned`" in report
    assert report.index("Stale plan") < report.index("**Spec:**")  # at the top, before anything a reviewer reads
    assert "STALE" in run(["rlops", "verdict"], repo, env, check=False).stdout
