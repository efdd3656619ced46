"""The gate's rules on hand-made per-item results (pure functions, no models)."""

from __future__ import annotations

from rlops.gate import bootstrap_interval, decide

BOOT = {"samples": 1000, "confidence": 0.95, "seed": 0}


def items(suite, metric, scores):
    return [{"suite": suite, "id": f"{suite}-{i:03d}", "scores": {metric: s}} for i, s in enumerate(scores)]


def test_non_inferior_passes_when_equal_and_fails_when_clearly_worse():
    inc = items("heldout", "rubric", [0.5, 1.0, 0.0, 0.5] * 10)
    same = decide([{"metric": "heldout.rubric", "rule": "non_inferior", "margin": 0.05}], inc, inc, BOOT)
    assert same.passed and same.gates[0].diff == 0
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
    assert decide([{"metric": "heldout.rubric", "rule": "at_least", "value": 0.7}], cand, cand, BOOT).passed
    assert not decide([{"metric": "heldout.rubric", "rule": "at_least", "value": 0.9}], cand, cand, BOOT).passed
    v = decide([{"metric": "regression.rubric", "rule": "at_least", "value": 0.1}], cand, cand, BOOT)
    assert not v.passed and "no evaluation items" in v.gates[0].reason


def test_items_are_paired_by_id_not_position():
    inc = items("heldout", "rubric", [0.0, 1.0])
    cand = list(reversed(items("heldout", "rubric", [0.0, 1.0])))
    v = decide([{"metric": "heldout.rubric", "rule": "no_item_regression", "max_regressions": 0}], cand, inc, BOOT)
    assert v.passed and v.gates[0].n == 2


def test_bootstrap_is_deterministic_and_brackets_the_mean():
    diffs = [0.1, -0.2, 0.3, 0.0, 0.5, -0.1] * 5
    a = bootstrap_interval(diffs, 500, 0.9, seed=3)
    assert a == bootstrap_interval(diffs, 500, 0.9, seed=3)
    mean = sum(diffs) / len(diffs)
    assert a[0] < mean < a[1]
