"""A hand-edited or stale params.yaml gets every problem named by field, before any heavy import."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT

from rlops.errors import InvalidInput
from rlops.evaluate.harness import EvalParams
from rlops.train.dpo import DPOParams
from rlops.train.runtime import Runtime

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def messages(call) -> list[str]:
    with pytest.raises(InvalidInput) as raised:
        call()
    return [str(p) for p in raised.value.problems]


def test_committed_params_read_into_typed_objects():
    assert DPOParams.from_mapping(PARAMS["train"]).max_steps == PARAMS["train"]["max_steps"]
    assert EvalParams.from_mapping(PARAMS["evaluate"]).suites == ["heldout", "regression", "redteam", "overrefusal"]
    assert Runtime.from_mapping(PARAMS["runtime"]).launcher == "python"


def test_dpo_params_report_unknown_missing_and_bad_values():
    train = {k: v for k, v in PARAMS["train"].items() if k != "beta"} | {"betta": 0.2}
    assert messages(lambda: DPOParams.from_mapping(train)) == [
        "params.yaml: train.beta: missing",
        "params.yaml: train.betta: unknown setting; check its spelling against pipelines/conf/ and the README's "
        "settings tables"]
    bad = PARAMS["train"] | {"max_steps": 0, "learning_rate": -1}
    assert messages(lambda: DPOParams.from_mapping(bad)) == [
        "params.yaml: train.learning_rate: must be greater than 0, not -1",
        "params.yaml: train.max_steps: must be at least 1, not 0"]


def test_a_hand_edited_loss_type_is_refused_by_field_not_by_trl():
    """Issue 10: an unknown loss_type in a hand-edited params.yaml reached TRL's ValueError ("unexpected error")."""
    assert messages(lambda: DPOParams.from_mapping(PARAMS["train"] | {"loss_type": "sigmiod"}))[0].startswith(
        "params.yaml: train.loss_type: 'sigmiod' is not a DPO loss type; use one of: sigmoid")
    assert DPOParams.from_mapping(PARAMS["train"] | {"loss_type": ["sigmoid", "sft"]}).loss_type == ["sigmoid", "sft"]


def test_eval_and_runtime_params_report_every_problem():
    ev = {k: v for k, v in PARAMS["evaluate"].items() if k != "suites"} | {"batch_size": "8", "limit": 0}
    assert messages(lambda: EvalParams.from_mapping(ev)) == [
        "params.yaml: evaluate.batch_size: must be a whole number, not '8'",
        "params.yaml: evaluate.limit: must be at least 1, not 0",
        "params.yaml: evaluate.suites: missing"]
    assert messages(lambda: Runtime.from_mapping({"device": "tpu", "precision": "fp32", "threads": None})) == [
        "params.yaml: runtime.checkpoint_steps: missing",
        "params.yaml: runtime.device: must be cpu, cuda, cuda:N or mps, not 'tpu'",
        "params.yaml: runtime.launcher: missing", "params.yaml: runtime.report_to: missing"]
    assert messages(lambda: Runtime.from_mapping(PARAMS["runtime"] | {"device": "tpu", "precision": "fp8"})) == [
        "params.yaml: runtime.device: must be cpu, cuda, cuda:N or mps, not 'tpu'",
        "params.yaml: runtime.precision: must be one of 'fp32', 'bf16' or 'fp16', not 'fp8'"]
