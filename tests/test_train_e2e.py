"""Each method through `rlops plan` + `dvc repro train`, all real (tiny model, TRL, DVC), in a temporary repo:
kto alone, and the recipe sft then dpo, whose second step starts from the first step's checkpoint. (dpo alone runs
through dvc repro in tests/test_pipeline_e2e.py.)"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import run

from rlops import layout

SPEC = "specs/cycles/0001-damaged-orders.yaml"
ONE = "  method: dpo\n  overrides: {beta: 0.1, max_steps: 24}\n"
SPECS = {
    "kto": "  method: kto\n  overrides: {max_steps: 2}\n",
    "sft+dpo": "  steps:\n    - {method: sft, overrides: {max_steps: 2}}\n"
               "    - {method: dpo, overrides: {max_steps: 2, loss_type: [sigmoid, sft]}}\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("method", list(SPECS))
def test_plan_and_dvc_repro_train(project, method):
    repo, env = project
    spec = repo / SPEC
    assert ONE in spec.read_text()
    spec.write_text(spec.read_text().replace(ONE, SPECS[method]))
    run(["rlops", "plan", SPEC, "model=tiny"], repo, env)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["train"]["method"] == method
    out = run(["dvc", "repro", "train"], repo, env).stdout
    recipe = json.loads((repo / layout.RECIPE).read_text())["steps"]
    assert [s["method"] for s in recipe] == method.split("+")
    metrics = json.loads((repo / layout.TRAIN_METRICS).read_text())
    assert metrics == recipe[-1]["metrics"] and metrics["steps"] == 2
    assert (repo / layout.MERGED / "model.safetensors").is_file()
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train"]
    assert {o["path"] for o in lock["outs"]} >= {layout.ADAPTER, layout.MERGED, layout.TRAIN_STEPS}
    assert not (repo / layout.TRAIN_TIMINGS).exists() or layout.TRAIN_TIMINGS not in {o["path"] for o in lock["outs"]}
    if method == "kto":
        assert "kto on" in out and metrics["desirable"] > 0 and metrics["undesirable"] > 0
        assert 1 <= metrics["desirable_weight"] * metrics["desirable"] / (
            metrics["undesirable_weight"] * metrics["undesirable"]) <= 4 / 3
    else:  # the dpo step starts from the sft step's checkpoint, which is a DVC-tracked output of its own
        first = f"{layout.TRAIN_STEPS}/1-sft"
        assert recipe[0]["start"] == layout.BASE_MODEL and recipe[1]["start"] == f"{first}/merged"
        assert json.loads((repo / first / "metrics.json").read_text())["method"] == "sft"
        adapter = json.loads((repo / layout.ADAPTER / "adapter_config.json").read_text())
        assert adapter["base_model_name_or_path"] == f"{first}/merged"
        assert (repo / first / "merged" / "model.safetensors").read_bytes() != \
            (repo / layout.MERGED / "model.safetensors").read_bytes()
    assert "up to date" in run(["dvc", "status", "train"], repo, env).stdout.lower() or \
        run(["dvc", "status", "-q", "train"], repo, env, check=False).returncode == 0
