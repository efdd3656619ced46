"""lm-eval runs every suite with its version and settings recorded in results.json, and runs lm-eval tasks named
in the spec (`evaluate.lm_eval_tasks`): here a local task YAML through `evaluate.lm_eval_include_path`, since no
hub is reachable. An unknown task, unreachable task data, or a task folder that brings code is a clear error
before any model loads. Real lm-eval on the tiny random model."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from rlops.errors import InvalidInput, StageFailed
from rlops.evaluate import lmeval_tasks
from rlops.evaluate.suites import load_suite

ROOT = Path(__file__).resolve().parent.parent
TASK = """task: capitals_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Capital of {{{{country}}}}:"
doc_to_target: "{{{{capital}}}}"
generation_kwargs: {{until: ["\\n"], max_gen_toks: 4, do_sample: false}}
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A repository with one suite (the first items of the over-refusal suite), a local lm-eval task and the tiny
    random model made by the base stage's own code."""
    from rlops.train.parent import materialize

    root = tmp_path_factory.mktemp("evalrepo")
    shutil.copytree(ROOT / "specs/evals/overrefusal", root / "specs/evals/overrefusal")
    tasks = root / "specs/lm_eval"
    tasks.mkdir(parents=True)
    (tasks / "capitals.jsonl").write_text('{"country": "France", "capital": "Paris"}\n'
                                          '{"country": "Italy", "capital": "Rome"}\n')
    (tasks / "capitals.yaml").write_text(TASK.format(data=tasks / "capitals.jsonl"))
    model = yaml.safe_load((ROOT / "pipelines/conf/model/tiny.yaml").read_text())
    materialize({"model": model, "seed": 0}, ROOT, root / "artifacts/model")
    return root


def params(**evaluate) -> dict:
    p = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    p["evaluate"] = {**p["evaluate"], "suites": ["overrefusal"], "limit": 2, "batch_size": 2, "max_new_tokens": 4,
                     **evaluate}
    return p


@pytest.mark.slow  # a real lm-eval run: over 20 s on a busy 2-core machine
def test_results_record_lm_eval_s_version_the_settings_and_a_named_local_task(world, tmp_path):
    from rlops.evaluate.harness import evaluate

    p = params(lm_eval_tasks=["capitals_local"], lm_eval_include_path="specs/lm_eval")
    summary = evaluate(p, world, "incumbent", world / "artifacts/model", tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"] == summary["settings"]
    s = results["settings"]
    assert s["lm_eval"] == version("lm_eval")
    suite = load_suite(world, "specs/evals", "overrefusal")
    assert s["suites"] == {"overrefusal": {"digest": lmeval_tasks.suite_digest(suite), "metrics": ["refused"],
                                           "max_new_tokens": suite.max_new_tokens}}
    assert s["lm_eval_tasks"] == ["capitals_local"] and s["limit"] == 2 and s["seed"] == p["seed"]
    assert s["chat_template"] is True and len(s["system_prompt_sha256"]) == 64
    assert s["runtime"] == {"device": p["runtime"]["device"], "precision": p["runtime"]["precision"]}
    assert set(results["metrics"]) == {"overrefusal.refused", "capitals_local.exact_match"}
    assert results["metrics"]["capitals_local.exact_match"]["n"] == 2
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert sorted(r["suite"] for r in rows) == ["capitals_local"] * 2 + ["overrefusal"] * 2
    assert all("Capital of" in r["prompt"] for r in rows if r["suite"] == "capitals_local")


def test_the_record_is_the_same_for_the_same_evaluation_and_changes_with_a_suite(world, tmp_path):
    from rlops.evaluate.harness import EvalParams

    p = params()
    ev = EvalParams.from_mapping(p["evaluate"])
    suite = load_suite(world, "specs/evals", "overrefusal")
    first = lmeval_tasks.record([suite], ev, p, "cpu", "fp32")
    assert lmeval_tasks.record([suite], ev, p, "cpu", "fp32") == first  # no clock in it
    copy = tmp_path / "specs/evals/overrefusal"
    shutil.copytree(world / "specs/evals/overrefusal", copy)
    data = copy / "prompts.jsonl"
    data.write_text(data.read_text().replace("my own order", "my order"))
    changed = lmeval_tasks.record([load_suite(tmp_path, "specs/evals", "overrefusal")], ev, p, "cpu", "fp32")
    assert changed["suites"]["overrefusal"]["digest"] != first["suites"]["overrefusal"]["digest"]


@pytest.mark.slow  # an unknown name makes lm-eval index its own hundreds of tasks
def test_an_unknown_task_is_a_clear_error_before_the_model_loads(world, tmp_path):
    from rlops.evaluate.harness import evaluate

    p = params(lm_eval_tasks=["capitals_local", "no_such_task_anywhere"], lm_eval_include_path="specs/lm_eval")
    with pytest.raises(InvalidInput) as e:  # no model folder: the error comes first
        evaluate(p, world, "incumbent", tmp_path / "no-model", tmp_path / "out")
    assert "evaluate.lm_eval_tasks: unknown lm-eval task 'no_such_task_anywhere'" in str(e.value.problems[0])
    assert "capitals_local" not in str(e.value.problems)
    assert not (tmp_path / "out").exists()


def test_unreachable_task_data_is_a_clear_error_naming_the_task(world, tmp_path):
    from rlops.evaluate.harness import evaluate

    folder = world / "specs/lm_eval_missing"
    folder.mkdir(exist_ok=True)
    (folder / "t.yaml").write_text(TASK.format(data=folder / "absent.jsonl").replace("capitals_local", "absent_local"))
    p = params(lm_eval_tasks=["absent_local"], lm_eval_include_path="specs/lm_eval_missing")
    with pytest.raises(StageFailed, match="lm-eval task 'absent_local': its data could not be loaded") as e:
        evaluate(p, world, "incumbent", tmp_path / "no-model", tmp_path / "out")
    assert "local copy" in e.value.hint


def test_a_task_folder_that_brings_code_or_is_missing_is_refused(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks/t.yaml").write_text("task: t\nprocess_docs: !function utils.process\n")
    with pytest.raises(InvalidInput) as e:
        lmeval_tasks.include_path(tmp_path, "tasks")
    assert str(e.value.problems[0]).startswith("tasks/t.yaml:2: ") and "!function" in str(e.value.problems[0])
    with pytest.raises(InvalidInput, match="evaluate.lm_eval_include_path: '../elsewhere' is not a folder"):
        lmeval_tasks.include_path(tmp_path, "../elsewhere")
    assert lmeval_tasks.include_path(tmp_path, None) is None
