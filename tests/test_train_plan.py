"""`rlops plan` refuses a train section the train stage would fail on, each problem at its place with the fix: an
unknown loss weight count, TRL keys the method's TRL config does not have (or that rlops sets itself), a set the
method reads that this spec's extraction does not produce. The registry's methods are the schema's enum."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from test_refuse_before_stages import SPEC, both, edit, line_of

from rlops.cli import main
from rlops.train import methods

OVERRIDES = "overrides: {beta: 0.1, max_steps: 24}"


def test_the_schema_s_methods_are_the_registry_s(project):
    repo, _ = project
    schema = json.loads((repo / "rlops/spec/schemas/cycle.schema.json").read_text())
    assert schema["properties"]["train"]["properties"]["method"]["enum"] == methods.names()
    assert {"sft", "dpo", "kto"} <= set(methods.names())


def test_trl_keys_pass_through_and_unknown_or_managed_ones_are_refused(project, capsys):
    repo, _ = project
    edit(repo, OVERRIDES, "overrides: {beta: 0.1, max_steps: 24, trl.lr_scheduler_type: cosine, "
                          "trl.lr_sheduler: 1, trl.seed: 3, loss_type: [sigmoid, sft], loss_weights: [1.0]}")
    rc_v, out_v, rc_p, err_p = both(repo, capsys)
    assert rc_v == 2 and rc_p == 2 and "lr_sheduler" in out_v  # validate checks the resolved values too
    where = f"{SPEC}:{line_of(repo / SPEC, 'trl.seed')}: train.overrides"
    assert f"{where}[\"trl.lr_sheduler\"]: DPOConfig (TRL) has no key 'lr_sheduler'" in err_p
    assert f"{where}[\"trl.seed\"]: rlops sets seed itself" in err_p
    assert f"{where}.loss_weights: 1 weights for 2 loss types (sigmoid, sft); give one weight per loss type" in err_p
    assert "lr_scheduler_type" not in err_p  # a real DPOConfig key passes
    edit(repo, "trl.lr_sheduler: 1, trl.seed: 3, loss_type: [sigmoid, sft], loss_weights: [1.0]",
         "loss_type: [sigmoid, sft], loss_weights: [1.0, 0.5]")
    assert main(["plan", "--root", str(repo), SPEC]) == 0
    params = (repo / "params.yaml").read_text()
    assert "lr_scheduler_type: cosine" in params and "- 0.5" in params


@pytest.mark.parametrize("method, signals, missing", [
    ("kto", "[edit, pairwise]", "unpaired"),
    ("sft", "[pairwise, rating]", "sft"),
    ("dpo", "[outcome]", None),  # outcome pairs success over failure: dpo has its pairs
])
def test_a_set_the_method_reads_that_extraction_does_not_produce(project, capsys, method, signals, missing):
    repo, _ = project
    edit(repo, "method: dpo", f"method: {method}")
    edit(repo, OVERRIDES, "overrides: {max_steps: 24}")
    edit(repo, "signals: [edit, pairwise, rating]", f"signals: {signals}")
    if missing is None:
        assert main(["plan", "--root", str(repo), SPEC]) == 0, capsys.readouterr().err
        return
    rc_v, out_v, rc_p, err_p = both(repo, capsys)
    where = f"{SPEC}:{line_of(repo / SPEC, f'method: {method}')}: train.method"
    for rc, text in ((rc_v, out_v), (rc_p, err_p)):
        assert rc == 2 and f"{where}: {method} reads the {missing} set, which this spec's extraction does not " \
                           "produce" in text and "to extract.signals, or choose another method" in text


def test_edit_sft_off_means_no_sft_set(project, capsys):
    repo, _ = project
    edit(repo, "method: dpo", "method: sft")
    edit(repo, OVERRIDES, "overrides: {max_steps: 24}")
    assert main(["plan", "--root", str(repo), SPEC]) == 0
    edit(repo, "edit_min_chars: 8", "edit_min_chars: 8\n  edit_sft: false")
    assert main(["plan", "--root", str(repo), SPEC]) == 2
    assert "sft reads the sft set" in capsys.readouterr().err


def readme_train_specs() -> list[str]:
    """The README's `train:` spec snippets (one per method, the DPO variants and a recipe)."""
    from conftest import ROOT

    blocks = re.findall(r"```yaml\n(train:.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 5
    return blocks


@pytest.mark.parametrize("block", readme_train_specs())
def test_every_readme_train_snippet_plans(project, capsys, block):
    repo, _ = project
    edit(repo, "train:\n  method: dpo\n  " + OVERRIDES + "\n", block)
    assert main(["plan", "--root", str(repo), SPEC]) == 0, capsys.readouterr().err
    params = yaml.safe_load((repo / "params.yaml").read_text())
    given = yaml.safe_load(block)["train"]
    steps = given.get("steps") or [given]
    assert params["train"]["method"] == "+".join(s["method"] for s in steps)
    for planned, step in zip(methods.steps(params["train"]), steps):
        assert {k: planned[k] for k in step.get("overrides", {})} == step.get("overrides", {})


def test_a_proposal_records_the_sets_the_method_read_and_each_recipe_step():
    from rlops import layout
    from rlops.registry.propose import trained_on, training_record

    outs = {layout.extract_set(s, "jsonl"): {"md5": f"md5-{s}"} for s in layout.SETS}
    params = {"extract": {"format": "jsonl"}, "train": {"method": "kto", "beta": 0.1, "max_steps": 3, "lr": 1}}
    assert trained_on(params, outs) == {"sets": {"unpaired": "md5-unpaired"}}
    assert training_record(params["train"]) == {"method": "kto", "beta": 0.1, "max_steps": 3}
    recipe = {"method": "sft+dpo", "steps": [{"method": "sft", "max_steps": 2}, {"method": "dpo", "beta": 0.2}]}
    assert trained_on({**params, "train": recipe}, outs) == {"sets": {"pairs": "md5-pairs", "sft": "md5-sft"}}
    assert training_record(recipe) == {"method": "sft+dpo", "steps": [{"method": "sft", "max_steps": 2},
                                                                     {"method": "dpo", "beta": 0.2}]}
