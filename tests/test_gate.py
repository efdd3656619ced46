"""The gate's rules on hand-made per-item results (pure functions, no models)."""

from __future__ import annotations

from rlops.gate import bootstrap_interval, decide

BOOT = {"samples": 1000, "confidence": 0.95, "seed": 0}


def items(suite, metric, scores):
    return [{"suite": suite, "id": f"{suite}-{i:03d}", "scores": {metric: s}} for i, s in enumerate(scores)]


def test_non_inferior_passes_when_equal_and_fails_when_clearly_worse():
    inc = items("heldout", "rubric", [0.5, 1.0, 0.0, 0.5] * 10)
    swapped = items("heldout", "rubric", [1.0, 0.5, 0.0, 0.5] + [0.5, 1.0, 0.0, 0.5] * 9)  # 2 swapped
    same = decide([{"metric": "heldout.rubric", "rule": "non_inferior", "margin": 0.05}], swapped, inc, BOOT)
    assert same.passed and same.gates[0].diff == 0 and same.gates[0].informative
    worse = items("heldout", "rubric", [0.0, 0.5, 0.0, 0.0] * 10)
    v = decide([{"metric": "heldout.rubric", "rule": "non_inferior", "margin": 0.05}], worse, inc, BOOT)
    assert not v.passed
    assert v.gates[0].ci_low < -0.05 and "below" in v.gates[0].reason


def test_superior_needs_the_bound_above_the_margin():
    inc = items("heldout", "rubric", [0.0] * 30)
    better = items("heldout", "rubric", [1.0] * 30)
    assert decide([{"metric": "heldout.rubric", "rule": "superior", "margin": 0.1}], better, inc, BOOT).passed
    assert not decide([{"metric": "heldout.rubric", "rule": "superior", "margin": 0.1}], inc, inc, BOOT).passed


def test_no_item_regression_names_the_items_that_got_worse():
    inc = items("redteam", "refusal", [1, 1, 0, 1])
    cand = items("redteam", "refusal", [1, 0, 1, 1])
    v = decide([{"metric": "redteam.refusal", "rule": "no_item_regression", "max_regressions": 0}], cand, inc, BOOT)
    assert not v.passed and v.gates[0].regressions == ["redteam-001"]
    v = decide([{"metric": "redteam.refusal", "rule": "no_item_regression", "max_regressions": 1}], cand, inc, BOOT)
    assert v.passed


def test_at_least_and_missing_metric():
    cand = items("heldout", "rubric", [0.8] * 5)
    inc = items("heldout", "rubric", [0.6] * 5)
    assert decide([{"metric": "heldout.rubric", "rule": "at_least", "value": 0.7}], cand, inc, BOOT).passed
    assert not decide([{"metric": "heldout.rubric", "rule": "at_least", "value": 0.9}], cand, inc, BOOT).passed
    v = decide([{"metric": "regression.rubric", "rule": "at_least", "value": 0.1}], cand, cand, BOOT)
    assert not v.passed and "no evaluation items" in v.gates[0].reason


def test_items_are_paired_by_id_not_position():
    inc = items("heldout", "rubric", [0.0, 1.0, 0.0])
    cand = list(reversed(items("heldout", "rubric", [0.0, 1.0, 0.5])))
    v = decide([{"metric": "heldout.rubric", "rule": "no_item_regression", "max_regressions": 0}], cand, inc, BOOT)
    assert v.passed and v.gates[0].n == 3 and v.gates[0].regressions == []


GATES = [{"metric": "heldout.rubric", "rule": "non_inferior", "margin": 0.05},
         {"metric": "heldout.rubric", "rule": "superior", "margin": 0.0},
         {"metric": "heldout.rubric", "rule": "at_least", "value": 0.0},
         {"metric": "heldout.rubric", "rule": "no_item_regression", "max_regressions": 0}]


def test_an_evaluation_where_every_item_ties_is_uninformative_and_fails_every_rule():
    # the tiny random model: both models at the floor on every item; each rule alone would pass (but superior)
    floor = items("heldout", "rubric", [0.0] * 8)
    v = decide(GATES, floor, floor, BOOT)
    assert not v.passed and v.to_json()["decision"] == "fail"
    assert v.uninformative == ["heldout.rubric"] * 4 and v.to_json()["uninformative"] == v.uninformative
    for g in v.gates:
        assert not g.passed and not g.informative
        assert "uninformative" in g.reason and "tied on all 8 items (all at 0.000)" in g.reason
        assert "allow_uninformative: true" in g.reason
    ceiling = items("heldout", "rubric", [1.0] * 8)
    assert decide(GATES[:1], ceiling, ceiling, BOOT).uninformative == ["heldout.rubric"]
    varied = items("heldout", "rubric", [0.0, 0.5, 1.0, 0.5])  # the same answers: items differ, models do not
    v = decide(GATES[:1], varied, varied, BOOT)
    assert not v.passed and "3 distinct scores, identical for both" in v.gates[0].reason


def test_one_item_that_separates_the_models_makes_the_gate_informative():
    inc = items("heldout", "rubric", [0.0] * 8)
    cand = items("heldout", "rubric", [0.0] * 7 + [0.5])
    v = decide(GATES[:1] + GATES[2:], cand, inc, BOOT)
    assert v.passed and v.uninformative == [] and all(g.informative for g in v.gates)
    # a constant non-zero difference is the strongest signal, not the absence of one
    assert decide(GATES[1:2], items("heldout", "rubric", [1.0] * 8), inc, BOOT).passed


def test_the_spec_may_allow_an_uninformative_gate_and_it_stays_marked():
    floor = items("heldout", "rubric", [0.0] * 8)
    allowed = [{**GATES[0], "allow_uninformative": True}, {**GATES[3], "allow_uninformative": False}]
    v = decide(allowed, floor, floor, BOOT)
    assert [g.passed for g in v.gates] == [True, False] and not v.passed
    assert v.uninformative == ["heldout.rubric", "heldout.rubric"]
    assert "allowed by the spec" in v.gates[0].reason
    assert decide(allowed[:1], floor, floor, BOOT).passed


def test_the_report_says_when_the_evaluation_was_uninformative():
    from rlops.report import render

    floor = items("heldout", "rubric", [0.0] * 8)
    verdict = decide(GATES[:1], floor, floor, BOOT).to_json()
    params = {"cycle": {"number": 1, "policy": "p", "parent": "base", "promotion": {"mode": "replace"},
                        "rationale": "r"}, "gate": {"bootstrap": BOOT}, "plan": {"spec": "s.yaml"},
              "model": {"name": "tiny"}, "train": {"method": "dpo"}}
    results = {"metrics": {"heldout.rubric": {"mean": 0.0, "stderr": 0.0, "n": 8}}}
    report = render(params, verdict, results, results, {}, {})
    assert "❌ uninformative" in report and "**Uninformative evaluation:** on `heldout.rubric`" in report
    informative = decide(GATES[:1], items("heldout", "rubric", [0.0] * 7 + [1.0]), floor, BOOT).to_json()
    assert "Uninformative" not in render(params, informative, results, results, {}, {})


def test_bootstrap_is_deterministic_and_brackets_the_mean():
    diffs = [0.1, -0.2, 0.3, 0.0, 0.5, -0.1] * 5
    a = bootstrap_interval(diffs, 500, 0.9, seed=3)
    assert a == bootstrap_interval(diffs, 500, 0.9, seed=3)
    mean = sum(diffs) / len(diffs)
    assert a[0] < mean < a[1]
