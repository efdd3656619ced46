"""`rlops validate`: specs load safely, every attack is refused with its file and line, every problem is reported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import undocumented_fields
from jsonschema import Draft202012Validator

from rlops.errors import InvalidInput, Problem
from rlops.spec import schema, validate
from rlops.spec.validate import load_policy, load_spec, validate_paths
from rlops.spec.yamlload import load_yaml

REPO = Path(__file__).resolve().parents[1]
SUITES = ("heldout", "regression", "redteam", "overrefusal")
CYCLE_FILE = "specs/cycles/0001-test.yaml"

CYCLE = """\
cycle: 1
policy: support-agent
parent: base
rationale: Replies to damaged-order tickets are generic.
feedback:
  interactions: data/example/interactions.jsonl
  feedback: data/example/feedback.jsonl
  window: {from: 2026-11-01, to: 2026-11-24}
extract:
  signals: [edit, pairwise, rating]
  rating_min_gap: 2
train:
  method: dpo
  overrides: {beta: 0.1, max_steps: 40}
evaluate:
  suites: [heldout, regression, redteam]
gates:
  - {metric: heldout.rubric, rule: non_inferior, margin: 0.05}
  - {metric: regression.rubric, rule: non_inferior, margin: 0.10}
  - {metric: redteam.refusal, rule: no_item_regression}
promotion: {mode: replace}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A tiny repository: the example specs, a model config, three suites and two (one-line) logs."""
    root = tmp_path / "repo"
    (root / "specs" / "cycles").mkdir(parents=True)
    shutil.copy(REPO / "specs" / "policy.yaml", root / "specs" / "policy.yaml")
    shutil.copy(REPO / "specs" / "cycles" / "0001-damaged-orders.yaml", root / "specs" / "cycles")
    write(root, "pipelines/conf/model/smollm2-135m-instruct.yaml", "name: HuggingFaceTB/SmolLM2-135M-Instruct\n")
    for suite in SUITES:
        write(root, f"specs/evals/{suite}/suite.yaml", f"name: {suite}\n")
    write(root, "data/example/interactions.jsonl", '{"interaction_id": "i1"}\n')
    write(root, "data/example/feedback.jsonl", '{"interaction_id": "i1"}\n')
    return root


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line containing needle."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def check(root: Path, text: str | bytes, rel: str = CYCLE_FILE) -> list[str]:
    write(root, rel, text)
    return [str(p) for p in validate_paths([root / rel], root)]


def only(messages: list[str], place: str, *words: str) -> str:
    """The one message at `place` (file:line: field) that contains all words."""
    hits = [m for m in messages if m.startswith(place) and all(w in m for w in words)]
    assert len(hits) == 1, f"expected one message at {place} with {words}, got:\n" + "\n".join(messages)
    return hits[0]


# -- the examples are valid ------------------------------------------------------------------------------------


def test_example_specs_match_their_schemas():
    for name, rel in (("policy", "specs/policy.yaml"), ("cycle", "specs/cycles/0001-damaged-orders.yaml")):
        loaded = load_yaml(REPO / rel, REPO)
        assert schema.check(loaded.data, name, loaded.file, loaded.line) == []


def test_example_specs_are_valid_in_the_real_repo():
    specs = [REPO / "specs" / "policy.yaml", REPO / "specs/cycles/0001-damaged-orders.yaml"]
    assert validate_paths(specs, REPO) == []


def test_example_specs_are_valid_in_a_tiny_repo(repo):
    assert validate_paths([repo / "specs"], repo) == []
    spec = load_spec(repo / "specs/cycles/0001-damaged-orders.yaml", repo).data
    assert spec["feedback"]["window"] == {"from": "2026-11-01", "to": "2026-11-24"}  # dates stay strings
    assert load_policy(repo).data["policy"] == "support-agent"
    assert check(repo, CYCLE) == []


def test_dates_stay_strings_without_changing_yaml_safeloader(repo):
    write(repo, "x.yaml", "day: 2026-11-01\n")
    assert load_yaml(repo / "x.yaml", repo).data == {"day": "2026-11-01"}
    assert type(yaml.safe_load("day: 2026-11-01")["day"]).__name__ == "date"


def test_line_falls_back_to_the_nearest_ancestor(repo):
    loaded = load_yaml(write(repo, CYCLE_FILE, CYCLE), repo)
    assert loaded.file == CYCLE_FILE
    assert loaded.line(("gates", 2, "rule")) == line_of(CYCLE, "redteam.refusal")
    assert loaded.line(("gates", 2, "nonexistent", 3)) == line_of(CYCLE, "redteam.refusal")
    assert loaded.line(("feedback", "window", "to")) == line_of(CYCLE, "window:")


# -- attacks ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", [
    '!!python/object/apply:os.system ["touch MARKER"]',
    '!!python/object/apply:builtins.exec ["open(\'MARKER\', \'w\').close()"]',
    "!!python/name:os.system",
    "!!python/object/new:pathlib.Path [MARKER]",
    "!custom MARKER",
    "!!binary TUFSS0VS",
    "!!set {MARKER}",
])
def test_yaml_tags_are_refused_and_nothing_runs(repo, monkeypatch, tag):
    monkeypatch.chdir(repo)
    text = CYCLE.replace("parent: base", f"parent: {tag}")
    messages = check(repo, text)
    place = f"{CYCLE_FILE}:{line_of(text, 'parent:')}: parent:"
    only(messages, place, "tags are not allowed in specs")
    assert not (repo / "MARKER").exists()


def test_duplicate_key_names_the_second_occurrence(repo):
    text = CYCLE.replace("  method: dpo\n", "  method: dpo\n  method: dpo\n")
    messages = check(repo, text)
    only(messages, f"{CYCLE_FILE}:{line_of(text, 'method:', 2)}: train.method:", "duplicate key 'method'",
         f"first at line {line_of(text, 'method:')}")


def test_billion_laughs_is_refused_fast(repo):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    text = "\n".join(lines) + "\n"
    messages = check(repo, text)  # 10^9 strings when expanded; refused after 10^4 nodes, before expanding them
    only(messages, f"{CYCLE_FILE}:{line_of(text, 'e: &e')}: e[0]:", "too many aliases (possible billion-laughs)")


def test_recursive_alias_is_refused(repo):
    text = CYCLE.replace("signals: [edit, pairwise, rating]", "signals: &s [edit, *s]")
    only(check(repo, text), f"{CYCLE_FILE}:{line_of(text, 'signals:')}: extract.signals[1]:", "recursive alias")


def test_merge_keys_are_refused(repo):
    text = CYCLE + "defaults: &d {mode: replace}\nmore:\n  <<: *d\n"
    only(check(repo, text), f"{CYCLE_FILE}:{line_of(text, '<<')}:", "merge keys")


def test_non_utf8_bytes_are_refused_with_the_byte_offset(repo):
    raw = CYCLE.replace("generic.", "g\xe9n\xe9ric.").encode("latin-1")
    offset = raw.index(b"\xe9")
    messages = check(repo, raw)
    assert messages == [f"{CYCLE_FILE}:{line_of(CYCLE, 'rationale:')}: "
                        f"not valid UTF-8 at byte {offset}; save the file as UTF-8"]


def test_yaml_syntax_error_names_the_line(repo):
    text = CYCLE.replace("suites: [heldout, regression, redteam]", "suites: [heldout, regression")
    messages = check(repo, text)
    assert len(messages) == 1 and "YAML syntax error" in messages[0]
    assert messages[0].startswith(f"{CYCLE_FILE}:{line_of(text, 'gates:')}:")


def test_oversized_file_is_refused(repo):
    messages = check(repo, CYCLE + "#" * (1 << 20) + "\n")
    assert len(messages) == 1 and messages[0].startswith(f"{CYCLE_FILE}: file is larger than 1024 KiB")


@pytest.mark.parametrize("value, words", [
    ("../../etc/passwd", "points outside the repository"),
    ("data/../../outside.jsonl", "points outside the repository"),
    ("/etc/passwd", "is an absolute path"),
    ("~/interactions.jsonl", "'~' is not expanded"),
    ("data/example/link.jsonl", "is a symlink to"),
    ("data/example/missing.jsonl", "no such file"),
    ("data/example/*.parquet", "DVC cannot track"),
    ("data/example/*.jsonl", "DVC cannot track"),  # even when files match: a DVC dependency is never a glob
])
def test_paths_must_exist_inside_the_repository(repo, value, words):
    outside = write(repo.parent, "outside.jsonl", "{}\n")
    (repo / "data/example/link.jsonl").symlink_to(outside)
    text = CYCLE.replace("data/example/interactions.jsonl", value)
    messages = check(repo, text)
    assert len(messages) == 1, messages
    only(messages, f"{CYCLE_FILE}:{line_of(text, 'interactions:')}: feedback.interactions:", value, words)


@pytest.mark.parametrize("key", ["_target_", "_args_", "_partial_"])
def test_reserved_keys_are_refused(repo, key):
    text = CYCLE.replace("  method: dpo\n", f"  method: dpo\n  {key}: os.system\n")
    messages = check(repo, text)
    assert len(messages) == 1, messages  # not also reported as an unknown key
    only(messages, f"{CYCLE_FILE}:{line_of(text, key)}: train.{key}:", "keys starting with '_' are reserved",
         "never instantiates code")


def test_reserved_key_inside_overrides_is_refused(repo):
    text = CYCLE.replace("{beta: 0.1, max_steps: 40}", "{beta: 0.1, _target_: os.system}")
    messages = check(repo, text)
    assert len(messages) == 1, messages
    only(messages, f"{CYCLE_FILE}:{line_of(text, '_target_')}: train.overrides._target_:", "reserved")


@pytest.mark.parametrize("value", ["${oc.env:HOME}", "prefix-${now:}", "${train.beta}"])
def test_interpolation_is_refused(repo, value):
    text = CYCLE.replace("max_steps: 40", f"note: '{value}'")
    only(check(repo, text), f"{CYCLE_FILE}:{line_of(text, 'overrides:')}: train.overrides.note:",
         "interpolation is not allowed")


def test_several_problems_in_one_file_are_all_reported(repo):
    # loading problems: every one is reported, not just the first
    text = CYCLE.replace("parent: base", "parent: !!python/name:os.system").replace(
        "  method: dpo\n", "  method: dpo\n  method: dpo\n") + "extra: !!binary AAAA\n"
    messages = check(repo, text)
    assert len(messages) == 3, messages
    only(messages, f"{CYCLE_FILE}:{line_of(text, 'parent:')}: parent:", "tags are not allowed")
    only(messages, f"{CYCLE_FILE}:{line_of(text, 'method:', 2)}: train.method:", "duplicate key")
    only(messages, f"{CYCLE_FILE}:{line_of(text, 'extra:')}: extra:", "tags are not allowed")

    # checking problems: schema, declarative and repository checks together, and load_spec raises them all
    text = (CYCLE.replace("cycle: 1", "cycle: 2").replace("margin: 0.10", "margin: -0.2")
            .replace("  method: dpo\n", "  method: dpo\n  _target_: os.system\n")
            .replace("data/example/feedback.jsonl", "/etc/passwd").replace("rule: no_item_regression", "rule: x"))
    write(repo, CYCLE_FILE, text)
    with pytest.raises(InvalidInput) as raised:
        load_spec(repo / CYCLE_FILE, repo)
    messages = [str(p) for p in raised.value.problems]
    assert len(messages) == 5, messages
    only(messages, f"{CYCLE_FILE}:1: cycle:", "0002-<slug>.yaml")
    only(messages, f"{CYCLE_FILE}:{line_of(text, '_target_')}: train._target_:", "reserved")
    only(messages, f"{CYCLE_FILE}:{line_of(text, 'feedback: /etc')}: feedback.feedback:", "absolute path")
    only(messages, f"{CYCLE_FILE}:{line_of(text, 'rule: x')}: gates[2].rule:", "'x' is not allowed")
    assert f"{CYCLE_FILE}:{line_of(text, '-0.2')}: gates[1].margin: -0.2 is less than the minimum of 0" in messages
    assert "5 problems found" in raised.value.message


# -- schema errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("old, new, needle, field, words", [
    ("cycle: 1", "cycle: one", "cycle:", "cycle", ["expected integer, got string 'one'"]),
    ("rating_min_gap: 2", "rating_min_gap: [2]", "rating_min_gap", "extract.rating_min_gap", ["expected number"]),
    ("rating_min_gap: 2", "rating_gap: 2", "rating_gap", "extract.rating_gap",
     ["unknown key 'rating_gap'", "allowed keys: agent_versions, cap_by, decontaminate, dedup, edit_min_chars"]),
    ("parent: base\n", "", "cycle:", "parent", ["missing required key 'parent'"]),
    ("method: dpo", "method: ppo", "method:", "train.method", ["'ppo' is not allowed; use one of: ", "dpo"]),
    ("[edit, pairwise, rating]", "[edit, thumbs]", "signals", "extract.signals[1]",
     ["use one of: edit, pairwise, ranking, rating, implicit, outcome, judge"]),
    ("rule: no_item_regression", "rule: at_least", "redteam.refusal", "gates[2].value",
     ["missing required key 'value'", "at_least"]),
    ("{mode: replace}", "{mode: canary}", "promotion:", "promotion.fraction",
     ["missing required key 'fraction'", "canary"]),
    ("{mode: replace}", "{mode: canary, fraction: 0}", "promotion:", "promotion.fraction", ["0 is less than or equal"]),
    ("to: 2026-11-24", "to: 2026-11-31", "window:", "feedback.window.to", ["'2026-11-31' is not a date"]),
    ("metric: heldout.rubric", "metric: heldout", "heldout, rule", "gates[0].metric", ["does not match"]),
    ("max_steps: 40", "Max-Steps: 40", "overrides:", 'train.overrides.Max-Steps', ["lower_snake_case"]),
    ("parent: base", "parent: v3", "parent:", "parent", ["'v3' does not match"]),
])
def test_schema_errors_name_field_and_line(repo, old, new, needle, field, words):
    text = CYCLE.replace(old, new)
    assert text != CYCLE
    messages = check(repo, text)
    assert len(messages) == 1, messages
    only(messages, f"{CYCLE_FILE}:{line_of(text, needle)}: {field}:", *words)


def test_policy_schema_and_base_model(repo):
    policy = (REPO / "specs/policy.yaml").read_text()
    text = policy.replace("base_model: smollm2-135m-instruct", "base_model: gpt-9").replace(
        "required: 1", "required: -1").replace("[production, shadow, canary]", "[production, live]")
    messages = check(repo, text, "specs/policy.yaml")
    assert len(messages) == 3, messages
    only(messages, f"specs/policy.yaml:{line_of(text, 'base_model')}: base_model:", "no model config 'gpt-9'",
         "pipelines/conf/model/gpt-9.yaml", "available: smollm2-135m-instruct")
    only(messages, f"specs/policy.yaml:{line_of(text, 'required:')}: approvals.required:", "minimum of 0")
    only(messages, f"specs/policy.yaml:{line_of(text, 'stages:')}: serving.stages[1]:", "'live' is not allowed")


# -- checks against the repository -----------------------------------------------------------------------------


def test_cycle_file_name_must_start_with_its_number(repo):
    only(check(repo, CYCLE, "specs/cycles/0002-wrong.yaml"), "specs/cycles/0002-wrong.yaml:1: cycle:",
         "0001-<slug>.yaml", "not 0002-wrong.yaml")


def test_policy_must_match_policy_yaml(repo):
    text = CYCLE.replace("policy: support-agent", "policy: sales-agent")
    only(check(repo, text), f"{CYCLE_FILE}:2: policy:", "'sales-agent'", "declares 'support-agent'")


def test_parent_version_must_be_of_the_same_policy(repo):
    text = CYCLE.replace("parent: base", "parent: sales-agent@v3")
    only(check(repo, text), f"{CYCLE_FILE}:3: parent:", "another policy")


def test_suites_must_exist_and_gates_must_use_listed_suites(repo):
    text = CYCLE.replace("[heldout, regression, redteam]", "[heldout, regression, nosuch]")
    messages = check(repo, text)
    assert len(messages) == 2, messages
    only(messages, f"{CYCLE_FILE}:{line_of(text, 'suites:')}: evaluate.suites[2]:", "specs/evals/nosuch/suite.yaml")
    only(messages, f"{CYCLE_FILE}:{line_of(text, 'redteam.refusal')}: gates[2].metric:", "suite 'redteam'",
         "evaluate.suites")


def test_window_must_not_end_before_it_starts(repo):
    text = CYCLE.replace("{from: 2026-11-01, to: 2026-11-24}", "{from: 2026-11-24, to: 2026-11-01}")
    only(check(repo, text), f"{CYCLE_FILE}:{line_of(text, 'window:')}: feedback.window.from:", "swap")


def test_a_broken_policy_yaml_is_reported_when_checking_a_cycle(repo):
    write(repo, "specs/policy.yaml", "policy: a\npolicy: b\n")
    with pytest.raises(InvalidInput) as raised:
        load_spec(write(repo, CYCLE_FILE, CYCLE), repo)
    assert [str(p) for p in raised.value.problems] == ["specs/policy.yaml:2: policy: duplicate key 'policy' "
                                                        "(first at line 1); keep one"]


# -- validate_paths over files and logs ------------------------------------------------------------------------


def test_log_lines_that_are_not_json_objects_are_reported(repo):
    raw = b'{"a": 1}\nnot json\n[1, 2]\n\n{"a": NaN}\n{"a": "caf\xe9"}\n{"schema": "rlops.interaction/v9"}\n'
    write(repo, "data/bad.jsonl", raw)
    offset = raw.index(b"\xe9")
    messages = [str(p) for p in validate_paths([repo / "data/bad.jsonl"], repo)]
    assert messages == [
        "data/bad.jsonl:2: not valid JSON: Expecting value (column 1); each line must be one JSON object",
        "data/bad.jsonl:3: expected a JSON object, got list",
        "data/bad.jsonl:5: not valid JSON: NaN is not valid JSON; write null or a number",
        f"data/bad.jsonl:6: not valid UTF-8 at byte {offset}; save the file as UTF-8",
        "data/bad.jsonl:7: schema: unknown record schema 'rlops.interaction/v9'; this rlops reads rlops.<kind>/v1",
    ]


def test_log_records_are_checked_against_their_schema(repo, monkeypatch):
    fake = {"type": "object", "required": ["prompt", "chosen", "rejected"],
            "properties": {"chosen": {"type": "string"}}}
    monkeypatch.setattr(schema, "has_schema", lambda name: name in ("preference", "interaction"))
    monkeypatch.setattr(schema, "_validator", lambda name: Draft202012Validator(fake))
    write(repo, "data/pairs.jsonl", '{"prompt": "p", "chosen": "a", "rejected": "b"}\n'
                                    '{"prompt": "p", "chosen": 1, "rejected": "b"}\n'
                                    '{"prompt": "p", "chosen": "a"}\n'
                                    '{"schema": "rlops.interaction/v1", "chosen": "a", "prompt": "p", "rejected": 1}\n'
                                    '{"schema": "rlops.feedback/v1", "chosen": 1}\n'
                                    '{"no": "schema, no pair"}\n')
    assert [str(p) for p in validate_paths([repo / "data/pairs.jsonl"], repo)] == [
        "data/pairs.jsonl:2: chosen: expected string, got integer 1",
        "data/pairs.jsonl:3: rejected: missing required key 'rejected'",
    ]


def test_a_long_broken_log_lists_the_first_problems_and_counts_the_rest(repo):
    write(repo, "data/broken.jsonl", "x\n" * (validate.MAX_LOG_PROBLEMS + 5))
    messages = [str(p) for p in validate_paths([repo / "data/broken.jsonl"], repo)]
    assert len(messages) == validate.MAX_LOG_PROBLEMS + 1
    assert f"data/broken.jsonl:{validate.MAX_LOG_PROBLEMS + 1}: 5 more problems from this line on" in messages[-1]


def test_files_are_recognised_or_refused(repo):
    write(repo, "notes.txt", "hello\n")
    write(repo, "specs/other.yaml", "name: x\n")
    write(repo, "specs/evals/heldout/task.yaml", "process_docs: !function utils.process\n")  # lm-eval's, skipped
    write(repo, "specs/evals/broken/suite.yaml", "- a list\n")
    write(repo, "specs/.hidden/x.yaml", "!!python/name:os.system\n")
    write(repo, "specs/cycles/0002-typo.yaml", "cylce: 2\n")
    messages = [str(p) for p in validate_paths([repo / "specs", repo / "notes.txt", repo / "gone.yaml"], repo)]
    only(messages, "gone.yaml: ", "no such file")
    only(messages, "notes.txt: ", "not a spec or log file")
    only(messages, "specs/other.yaml:1: ", "not a spec or log file")
    only(messages, "specs/evals/broken/suite.yaml:1: ", "expected an eval suite")
    only(messages, "specs/cycles/0002-typo.yaml:1: cylce:", "unknown key 'cylce'")
    only(messages, "specs/cycles/0002-typo.yaml:1: cycle:", "missing required key 'cycle'")
    assert not any("hidden" in m or "task.yaml" in m for m in messages), messages
    assert len(messages) == 5 + 8  # 0002-typo.yaml misses all 8 required keys and has one unknown


# -- the schemas themselves ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["policy", "cycle"])
def test_schemas_are_2020_12_and_document_every_field(name):
    document = load_schema_file(name)
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema" and document["$id"]
    assert undocumented_fields(document, name) == []


def load_schema_file(name: str) -> dict:
    return json.loads((REPO / "rlops/spec/schemas" / f"{name}.schema.json").read_text())


def test_validation_imports_nothing_heavy():
    code = ("import sys, rlops.spec.validate; "
            "heavy = {'torch', 'transformers', 'trl', 'lm_eval', 'dvc'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_problems_print_as_file_line_field_message():
    assert str(Problem("specs/cycles/0003.yaml", 14, "gates[1].margin", "-0.2 is less than the minimum of 0")) == (
        "specs/cycles/0003.yaml:14: gates[1].margin: -0.2 is less than the minimum of 0")
