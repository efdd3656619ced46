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
    from rlops.gate_report import render

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


# ---- the bound each rule compares: the lower bound, at the gate's confidence -----------------------------------

def scored(suite, metric, pairs):
    """(candidate items, incumbent items) from (candidate score, incumbent score) pairs."""
    return (items(suite, metric, [c for c, _ in pairs]), items(suite, metric, [i for _, i in pairs]))


# 40 items: the candidate is slightly worse on average (-0.0125), with enough spread that the lower bound lies
# well below the mean and the upper bound above zero
NEAR = [(0.5, 0.5)] * 20 + [(1.0, 0.5)] * 4 + [(0.0, 0.5)] * 5 + [(0.5, 0.0)] * 5 + [(0.0, 0.5)] * 6


def test_non_inferior_passes_or_fails_exactly_as_the_lower_bound_says():
    cand, inc = scored("heldout", "rubric", NEAR)
    diffs = [c - i for c, i in NEAR]
    mean = sum(diffs) / len(diffs)
    lo, hi = bootstrap_interval(diffs, BOOT["samples"], BOOT["confidence"], BOOT["seed"])
    assert lo < mean - 0.05 and hi > 0  # the three candidate statistics are far apart here
    for margin, expected in ((-lo + 0.002, True), (-lo - 0.002, False), (-mean + 0.01, False)):
        g = decide([{"metric": "heldout.rubric", "rule": "non_inferior", "margin": margin}], cand, inc, BOOT).gates[0]
        assert g.passed is expected, (margin, g.reason)
        assert g.ci_low == round(lo, 6) and g.bound == round(lo, 6)


def test_superior_compares_the_lower_bound_not_the_mean_or_the_upper_bound():
    pairs = [(1.0, 0.5)] * 16 + [(0.5, 0.5)] * 20 + [(0.0, 0.5)] * 6  # better on average, with some spread
    cand, inc = scored("heldout", "rubric", pairs)
    diffs = [c - i for c, i in pairs]
    lo, hi = bootstrap_interval(diffs, BOOT["samples"], BOOT["confidence"], BOOT["seed"])
    mean = sum(diffs) / len(diffs)
    assert 0.01 < lo < mean - 0.05 and mean < hi
    for margin, expected in ((lo - 0.005, True), (lo + 0.005, False), ((lo + mean) / 2, False)):
        g = decide([{"metric": "heldout.rubric", "rule": "superior", "margin": margin}], cand, inc, BOOT).gates[0]
        assert g.passed is expected, (margin, g.reason)


def test_a_gate_s_own_confidence_is_honoured():
    cand, inc = scored("heldout", "rubric", NEAR)
    diffs = [c - i for c, i in NEAR]
    loose = {**BOOT, "confidence": 0.6}
    lo_60, _ = bootstrap_interval(diffs, BOOT["samples"], 0.6, BOOT["seed"])
    lo_99, _ = bootstrap_interval(diffs, BOOT["samples"], 0.99, BOOT["seed"])
    margin = -(lo_60 + lo_99) / 2  # between the two bounds
    gate = {"metric": "heldout.rubric", "rule": "non_inferior", "margin": margin}
    assert decide([gate], cand, inc, loose).passed  # the bootstrap's 60%
    strict = decide([{**gate, "confidence": 0.99}], cand, inc, loose).gates[0]
    assert not strict.passed and strict.ci_low == round(lo_99, 6) and "99% paired bootstrap" in strict.reason


# ---- the metric's direction: every rule reads a lower-is-better metric the right way round ----------------------

LONG, SHORT = [120.0, 140.0, 100.0, 160.0] * 5, [80.0, 90.0, 70.0, 100.0] * 5  # `length`: lower is better


def test_non_inferior_on_a_lower_is_better_metric():
    gate = [{"metric": "heldout.length", "rule": "non_inferior", "margin": 5.0}]
    worse = decide(gate, items("heldout", "length", LONG), items("heldout", "length", SHORT), BOOT).gates[0]
    assert not worse.passed and worse.higher_is_better is False
    assert worse.diff < 0 and worse.ci_low < -5 and "lower is better" in worse.reason
    better = decide(gate, items("heldout", "length", SHORT), items("heldout", "length", LONG), BOOT).gates[0]
    assert better.passed and better.diff > 0 and better.candidate < better.incumbent


def test_superior_on_a_lower_is_better_metric():
    gate = [{"metric": "heldout.length", "rule": "superior", "margin": 10.0}]
    assert decide(gate, items("heldout", "length", SHORT), items("heldout", "length", LONG), BOOT).passed
    assert not decide(gate, items("heldout", "length", LONG), items("heldout", "length", SHORT), BOOT).passed


def test_no_item_regression_on_a_lower_is_better_metric():
    gate = [{"metric": "heldout.length", "rule": "no_item_regression", "max_regressions": 0}]
    one_longer = SHORT[:3] + [LONG[3]] + SHORT[4:]
    v = decide(gate, items("heldout", "length", one_longer), items("heldout", "length", SHORT), BOOT)
    assert not v.passed and v.gates[0].regressions == ["heldout-003"]
    assert decide(gate, items("heldout", "length", SHORT), items("heldout", "length", LONG), BOOT).passed


def test_at_least_on_a_lower_is_better_metric_means_at_most():
    inc = items("heldout", "length", LONG)
    gate = [{"metric": "heldout.length", "rule": "at_least", "value": 100.0}]
    assert decide(gate, items("heldout", "length", SHORT), inc, BOOT).passed  # mean 85: good enough
    assert not decide(gate, items("heldout", "length", LONG), inc, BOOT).passed  # mean 130: too long


def test_the_caller_s_directions_win_and_an_unknown_metric_fails_with_the_fix():
    cand, inc = items("heldout", "latency", SHORT), items("heldout", "latency", LONG)
    gate = [{"metric": "heldout.latency", "rule": "non_inferior", "margin": 0.0}]
    unknown = decide(gate, cand, inc, BOOT).gates[0]
    assert not unknown.passed and "direction of metric heldout.latency is unknown" in unknown.reason
    assert decide(gate, cand, inc, BOOT, directions={"heldout.latency": False}).passed
    assert not decide(gate, cand, inc, BOOT, directions={"heldout.latency": True}).passed
    # a suite's own direction beats the registry's
    assert not decide([{**gate[0], "metric": "heldout.length"}], items("heldout", "length", SHORT),
                      items("heldout", "length", LONG), BOOT, directions={"heldout.length": True}).passed


def test_the_report_shows_the_rule_s_bound_and_the_direction():
    from rlops.gate_report import render

    params = {"cycle": {"number": 1, "policy": "p", "parent": "base", "promotion": {"mode": "replace"},
                        "rationale": "r"}, "gate": {"bootstrap": BOOT}, "plan": {"spec": "s.yaml"},
              "model": {"name": "tiny"}, "train": {"method": "dpo"}}
    gates = [{"metric": "heldout.length", "rule": "non_inferior", "margin": 5.0},
             {"metric": "heldout.length", "rule": "at_least", "value": 100.0}]
    verdict = decide(gates, items("heldout", "length", SHORT), items("heldout", "length", LONG), BOOT).to_json()
    results = {"metrics": {}}
    rows = [line for line in render(params, verdict, results, results, {}, {}).splitlines()
            if line.startswith("| `heldout.length`")]
    bound = verdict["gates"][0]["ci_low"]
    assert f"| {bound:+.3f} | ✅ pass |" in rows[0] and "| – | ✅ pass |" in rows[1]
    assert "Lower is better on `heldout.length`" in render(params, verdict, results, results, {}, {})


def test_a_gate_with_bad_settings_fails_naming_the_field():
    cand, inc = items("heldout", "rubric", [1.0, 0.5]), items("heldout", "rubric", [0.5, 0.5])
    v = decide([GATES[0], {"metric": "heldout.rubric", "rule": "non_inferior", "margin": -0.1}], cand, inc, BOOT)
    assert v.gates[0].passed and not v.passed
    assert v.gates[1].reason == "params.yaml: gate.rules[1].margin: must be at least 0, not -0.1"
