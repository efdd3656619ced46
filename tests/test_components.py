"""The component registry: lookup by name, derived schema/defaults/README, and a gate rule added from outside.

A rule defined and registered in this test module is accepted by `rlops validate` and `rlops plan`, its settings
are validated with their line, and `gate.decide` and the report use it: no other file is touched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from pydantic import Field

from rlops import components
from rlops.cli import main
from rlops.components import SCHEMA_FILE, Component, Metric, schema_text
from rlops.errors import InvalidInput
from rlops.gate import decide
from rlops.gates import Evidence, GateSettings, Outcome, rule_defaults, rule_lines

ROOT = Path(__file__).resolve().parent.parent
SPEC = "specs/cycles/0001-damaged-orders.yaml"
BOOT = {"samples": 1000, "confidence": 0.95, "seed": 0}


class WinRate(GateSettings):
    min_share: float = Field(0.5, title="Minimum share", ge=0, le=1,
                             description="share_won: the share of separating items the candidate must win.")


def win_rate(settings: WinRate, evidence: Evidence) -> Outcome:
    """Passes when the candidate wins at least min_share of the items where the two models differ."""
    moved = [d for d in evidence.diffs if d != 0]
    share = sum(d > 0 for d in moved) / len(moved) if moved else 0.0
    ok = share >= settings.min_share
    return Outcome(ok, f"candidate won {share:.0%} of {len(moved)} separating items (needed {settings.min_share:.0%})")


WIN_RATE = Component("gate_rule", "share_won", "the candidate wins at least min_share of the items that separate the "
                     "models", reads="paired per-item scores", writes="pass/fail and the share won",
                     function=win_rate, settings=WinRate)


@pytest.fixture
def registered(monkeypatch):
    """WIN_RATE registered for one test; the registry as it was afterwards."""
    monkeypatch.setitem(components._REGISTERED, "gate_rule", dict(components._REGISTERED["gate_rule"]))
    return components.register(WIN_RATE)


def items(suite, metric, scores):
    return [{"suite": suite, "id": f"{suite}-{i:03d}", "scores": {metric: s}} for i, s in enumerate(scores)]


# ---- lookup -------------------------------------------------------------------------------------------------------

def test_lookup_by_name_and_a_clear_error_listing_the_known_names():
    assert components.get("gate_rule", "non_inferior").settings.__name__ == "NonInferior"
    assert components.get("metric", "length").higher_is_better is False
    assert components.get("metric", "rubric").range == (0.0, 1.0)
    with pytest.raises(InvalidInput) as e:
        components.get("gate_rule", "non_inferiour")
    message = str(e.value.problems[0])
    assert "unknown gate rule 'non_inferiour'" in message
    assert "known: non_inferior, superior, no_item_regression, at_least" in message


def test_every_builtin_component_is_registered_by_its_module_with_a_description():
    for kind, table in components.BUILTIN.items():
        for name in table:
            c = components.get(kind, name)
            assert (c.kind, c.name) == (kind, name)
            assert c.description and c.reads and c.writes and callable(c.function)
            assert "\n" not in c.description
        assert all(isinstance(m, Metric) for m in components.all_of("metric"))


def test_a_taken_name_cannot_be_registered_twice(registered):
    assert components.register(WIN_RATE) is WIN_RATE  # the same one again is harmless
    with pytest.raises(ValueError, match="already registered"):
        components.register(Component("gate_rule", "share_won", "another", "x", "y", function=win_rate))


def test_settings_problems_name_the_field_and_the_fix():
    rule = components.get("gate_rule", "non_inferior")
    settings, problems = components.validate(rule, {"metric": "heldout.rubric", "rule": "non_inferior",
                                                    "margin": -1, "marginn": 1, "confidence": True}, "params.yaml",
                                             "gate.rules[0]")
    assert settings is None
    found = {p.field: p.message for p in problems}
    assert found["gate.rules[0].margin"] == "must be at least 0, not -1"
    assert found["gate.rules[0].marginn"].startswith("unknown key for a non_inferior gate rule; its keys are")
    assert found["gate.rules[0].confidence"] == "must be a number, not True"


# ---- what the registry generates ----------------------------------------------------------------------------------

def test_the_committed_cycle_schema_has_the_registry_s_gate_and_judge_definitions():
    text = (ROOT / SCHEMA_FILE).read_text(encoding="utf-8")
    assert schema_text("cycle", text) == text, "run `python -m rlops.regenerate` to regenerate the derived parts"
    schema = json.loads(text)
    assert schema["$defs"]["gate"]["properties"]["rule"]["enum"] == components.names("gate_rule")
    judge = schema["properties"]["extract"]["properties"]["judge"]
    assert judge["properties"]["type"]["enum"] == ["none", *components.names("judge")]


def test_conf_rule_defaults_match_the_rules_settings():
    conf = yaml.safe_load((ROOT / "pipelines/conf/config.yaml").read_text(encoding="utf-8"))
    assert conf["gate"]["rule_defaults"] == {name: rule_defaults(name) for name in components.BUILTIN["gate_rule"]}


def test_the_readme_lists_the_registered_gate_rules():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- gate-rules:begin -->\n(.*?)<!-- gate-rules:end -->", readme, re.S)
    assert block, "README.md lacks the gate-rules block"
    assert block.group(1).strip().splitlines() == rule_lines()


# ---- a new gate rule, registered here, end to end ----------------------------------------------------------------

def test_a_gate_rule_registered_in_a_test_module_works_end_to_end(project, registered, capsys):
    repo, _ = project
    spec = repo / SPEC
    text = spec.read_text(encoding="utf-8").replace(
        "{metric: heldout.rubric, rule: non_inferior, margin: 0.05}", "{metric: heldout.rubric, rule: share_won}")
    spec.write_text(text, encoding="utf-8")
    assert main(["validate", "--root", str(repo), str(spec)]) == 0
    assert main(["plan", "--root", str(repo), SPEC]) == 0
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    # pipelines/conf has no defaults for it: they come from its settings model
    assert params["gate"]["rules"][0] == {"metric": "heldout.rubric", "rule": "share_won", "allow_uninformative": False,
                                          "min_share": 0.5}

    inc = items("heldout", "rubric", [0.5] * 10)
    cand = items("heldout", "rubric", [1.0] * 6 + [0.0] * 3 + [0.5])
    verdict = decide(params["gate"]["rules"][:1], cand, inc, params["gate"]["bootstrap"])
    assert verdict.passed and "won 67% of 9 separating items" in verdict.gates[0].reason
    strict = decide([{**params["gate"]["rules"][0], "min_share": 0.7}], cand, inc, params["gate"]["bootstrap"])
    assert not strict.passed

    from rlops.gate_report import render

    results = {"metrics": {}}
    report = render(params, verdict.to_json(), results, results, {}, {})
    assert "| `heldout.rubric` | share_won |" in report and "won 67% of 9 separating items" in report

    # its settings are validated like a built-in rule's, with the line
    spec.write_text(text.replace("rule: share_won}", "rule: share_won, min_share: 2, margin: 0.1}"), encoding="utf-8")
    capsys.readouterr()
    assert main(["validate", "--root", str(repo), str(spec)]) == 2
    out = capsys.readouterr().out
    assert f"{SPEC}:22: gates[0].min_share: 2 is greater than the maximum of 1" in out
    assert (f"{SPEC}:22: gates[0].margin: key 'margin' is not allowed here: a share_won gate rule's keys are metric, rule, "
            "confidence, allow_uninformative, min_share") in out


def test_without_the_registration_the_rule_is_refused_with_the_known_names(project, capsys):
    repo, _ = project
    spec = repo / SPEC
    spec.write_text(spec.read_text(encoding="utf-8").replace("rule: non_inferior, margin: 0.05", "rule: share_won"),
                    encoding="utf-8")
    assert main(["validate", "--root", str(repo), str(spec)]) == 2
    assert "gates[0].rule: 'share_won' is not allowed; use one of: non_inferior, superior" in capsys.readouterr().out
    v = decide([{"metric": "heldout.rubric", "rule": "share_won"}], items("heldout", "rubric", [1.0]),
               items("heldout", "rubric", [0.0]), BOOT)
    assert not v.passed and "unknown rule 'share_won'; known: non_inferior" in v.gates[0].reason


# ---- a metric registered here: suites accept it, lm-eval gets its direction, and the gate honours it -------------

def test_a_metric_registered_here_is_used_by_suites_and_judged_in_its_direction(tmp_path, monkeypatch):
    from rlops.evaluate.suites import load_suite, task_config

    def words(doc, text):
        return float(len(text.split()))

    monkeypatch.setitem(components._REGISTERED, "metric", dict(components._REGISTERED["metric"]))
    components.register(Metric("metric", "words", "answer length in words", reads="the answer",
                               writes="a count of words", function=words, higher_is_better=False, range=(0.0, None)))
    folder = tmp_path / "evals" / "brief"
    folder.mkdir(parents=True)
    (folder / "suite.yaml").write_text("name: brief\ndescription: short answers\ndata: prompts.jsonl\n"
                                       "task: generate\nmetrics: [words, rubric]\n", encoding="utf-8")
    (folder / "prompts.jsonl").write_text('{"id": "b-1", "prompt": "hi"}\n', encoding="utf-8")
    suite = load_suite(tmp_path, "evals", "brief")
    config = task_config(suite, 16)
    assert config["metric_list"][0] == {"metric": "words", "aggregation": "mean", "higher_is_better": False}
    assert config["process_results"]({"rubric": {}}, ["three short words"]) == {"words": 3.0, "rubric": 0.0}

    gate = [{"metric": "brief.words", "rule": "non_inferior", "margin": 1.0}]
    chatty = items("brief", "words", [40.0, 55.0, 60.0, 48.0] * 5)
    terse = items("brief", "words", [12.0, 9.0, 15.0, 10.0] * 5)
    assert not decide(gate, chatty, terse, BOOT).passed
    assert decide(gate, terse, chatty, BOOT).passed

    (folder / "suite.yaml").write_text("name: brief\ndata: prompts.jsonl\nmetrics: [wordz]\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as e:
        load_suite(tmp_path, "evals", "brief")
    assert "unknown metric 'wordz'; known: length, refusal, refused, rubric, safe, words" in str(e.value.problems[0])


def test_the_report_shows_the_bound_a_registered_rule_compared(monkeypatch):
    from rlops.gate_report import render

    def loose(settings: GateSettings, evidence: Evidence) -> Outcome:
        lo, _ = evidence.bounds
        return Outcome(lo >= -0.5, f"lower bound {lo:+.3f} against -0.5", bound=lo)

    monkeypatch.setitem(components._REGISTERED, "gate_rule", dict(components._REGISTERED["gate_rule"]))
    components.register(Component("gate_rule", "loose", "lower bound at least -0.5", "paired scores", "pass/fail",
                                  function=loose, settings=GateSettings))
    verdict = decide([{"metric": "heldout.rubric", "rule": "loose"}], items("heldout", "rubric", [1.0, 0.0, 0.5, 1.0]),
                     items("heldout", "rubric", [0.5, 0.5, 0.5, 0.0]), BOOT).to_json()
    params = {"cycle": {"number": 1, "policy": "p", "parent": "base", "promotion": {"mode": "replace"},
                        "rationale": "r"}, "gate": {"bootstrap": BOOT}, "plan": {"spec": "s.yaml"},
              "model": {"name": "tiny"}, "train": {"method": "dpo"}}
    row = next(line for line in render(params, verdict, {"metrics": {}}, {"metrics": {}}, {}, {}).splitlines()
               if line.startswith("| `heldout.rubric` | loose |"))
    assert f"| {verdict['gates'][0]['bound']:+.3f} | ✅ pass |" in row
