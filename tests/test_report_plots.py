"""The gate report a reviewer reads in a minute: plots next to report.md, their data files, and the examples where
the two models differ most. The gate stage runs in-process on evaluation files written here."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from rlops import gate_report, layout, stages
from rlops.gate import decide

BOOT = {"samples": 200, "confidence": 0.95, "seed": 0}
GATES = [{"metric": "heldout.rubric", "rule": "non_inferior", "margin": 0.05},
         {"metric": "redteam.refusal", "rule": "no_item_regression", "max_regressions": 0}]
PARAMS = {"cycle": {"number": 7, "policy": "support-agent", "parent": "base", "promotion": {"mode": "replace"},
                    "rationale": "r"}, "gate": {"bootstrap": BOOT, "rules": GATES}, "plan": {"spec": "s.yaml"},
          "model": {"name": "tiny"}, "train": {"method": "dpo"}}


def row(suite: str, n: int, scores: dict[str, float], response: str = "an answer") -> dict:
    return {"suite": suite, "id": f"{suite}-{n:03d}", "doc_hash": str(n), "prompt": f"question {n} of {suite}",
            "response": response, "scores": scores}


def samples() -> tuple[list[dict], list[dict]]:
    """Incumbent and candidate rows whose differences are known: heldout item k differs by k/10 (k = 0..7)."""
    inc, cand = [], []
    for k in range(8):
        inc.append(row("heldout", k, {"rubric": 0.0, "length": 10.0}))
        cand.append(row("heldout", k, {"rubric": k / 10, "length": 500.0 * (7 - k)}))  # length is not gated
    for k in range(4):
        inc.append(row("redteam", k, {"refusal": 1.0}, "I can't share that."))
        cand.append(row("redteam", k, {"refusal": 0.0 if k == 2 else 1.0}, "Here is the card number | 4111 " + "x" * 600))
    return inc, cand


def results(items: list[dict]) -> dict:
    from rlops.evaluate.harness import summarize

    return {"model": "m", "metrics": summarize(items)}


def test_examples_are_the_items_with_the_largest_difference_on_the_gated_metric():
    inc, cand = samples()
    verdict = decide(GATES, cand, inc, BOOT).to_json()
    chosen = gate_report.differing(verdict, inc, cand)
    assert [c["id"] for _, c, _ in chosen["heldout"]] == ["heldout-007", "heldout-006", "heldout-005"]
    assert [names for _, _, names in chosen["heldout"]] == [["rubric"]] * 3  # the gated metric, not length
    assert [c["id"] for _, c, _ in chosen["redteam"]] == ["redteam-002"]  # items scored alike are no examples

    text = gate_report.render(PARAMS, verdict, results(inc), results(cand), {}, {}, samples={"incumbent": inc,
                                                                                       "candidate": cand})
    section = text.split("## Where the models differ most", 1)[1].split("\n## ", 1)[0]
    assert section.index("`heldout-007` (rubric 0.000 → 0.700") < section.index("`heldout-006`")
    assert "`heldout-004`" not in section
    line = next(x for x in section.splitlines() if x.strip().startswith("- **Candidate:**") and "card" in x)
    assert line.endswith(" …") and len(line) < gate_report.CLIP + 40 and "\\| 4111" in line  # clipped, table-safe
    assert "- **Incumbent:** I can't share that." in section and "- **Prompt:** question 2 of redteam" in section


def test_without_a_gate_on_a_suite_every_metric_counts():
    inc = [row("tone", k, {"a": 0.0, "b": 0.0}) for k in range(3)]
    cand = [row("tone", 0, {"a": 1.0, "b": 0.0}), row("tone", 1, {"a": 1.0, "b": 1.0}), row("tone", 2, {"a": 0.0, "b": 0.5})]
    chosen = gate_report.differing({"gates": []}, inc, cand)
    assert [c["id"] for _, c, _ in chosen["tone"]] == ["tone-001", "tone-000", "tone-002"]


def _cycle_files(root: Path, inc: list[dict], cand: list[dict]) -> None:
    for which, items in (("incumbent", inc), ("candidate", cand)):
        (root / layout.EVALUATE / which).mkdir(parents=True)
        (root / layout.samples(which)).write_text("".join(json.dumps(it) + "\n" for it in items))
        (root / layout.results(which)).write_text(json.dumps(results(items)))
    (root / layout.EXTRACT).mkdir(parents=True)
    (root / layout.SIGNALS_DETAIL).write_text(json.dumps({
        "sources": {"data/a.jsonl": {"read": 40, "quarantined": 2}, "data/b.jsonl": {"read": 12, "quarantined": 0}},
        "pairs": {"edit": 9, "pairwise": 4, "total": 13}, "unpaired": {"rating": 5, "label_true": 3, "label_false": 2,
                                                                        "total": 5}, "sft": {"edit": 9, "total": 9}}))
    (root / layout.SIGNALS_MD).write_text("### Signals\n")
    (root / layout.TRAIN).mkdir(parents=True)
    (root / layout.TRAIN_METRICS).write_text(json.dumps({"method": "dpo", "steps": 3}))
    (root / layout.CURVE).write_text("step,loss,reward_margin,reward_accuracy\n1,0.69,0.0,0.5\n2,0.6,0.2,0.75\n"
                                     "3,0.5,0.4,1.0\n")


def test_the_gate_stage_writes_plots_next_to_the_report_and_links_them(tmp_path):
    inc, cand = samples()
    _cycle_files(tmp_path, inc, cand)
    stages.gate(tmp_path, PARAMS)
    text = (tmp_path / layout.REPORT).read_text()
    for png in layout.REPORT_PLOTS:
        data = (tmp_path / png).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"Software" not in data and b"matplotlib" not in data
        assert Path(png).parent == Path(layout.REPORT).parent
        assert f"]({Path(png).name})" in text  # a relative link, next to report.md
    assert "## Where the models differ most" in text and "`heldout-007`" in text

    # the plot data DVC reads: the same means as results.json, the data by source and by rule
    scores = list(csv.DictReader(io.StringIO((tmp_path / layout.SCORES_CSV).read_text())))
    res = json.loads((tmp_path / layout.results("candidate")).read_text())["metrics"]
    cand_rows = {r["metric"]: r for r in scores if r["model"] == "candidate"}
    assert set(cand_rows) == set(res)
    for key, r in cand_rows.items():
        assert float(r["mean"]) == pytest.approx(res[key]["mean"])
        assert float(r["low"]) <= float(r["mean"]) <= float(r["high"])
    data = {(r["group"], r["name"]): int(r["count"]) for r in csv.DictReader(io.StringIO((tmp_path / layout.DATA_CSV)
                                                                                           .read_text()))}
    assert data[("records read", "data/a.jsonl")] == 40 and data[("records quarantined", "data/a.jsonl")] == 2
    assert data[("pairs rows", "edit")] == 9 and data[("unpaired rows", "rating")] == 5
    assert ("pairs rows", "total") not in data and ("unpaired rows", "label_true") not in data

    # the same inputs give the same bytes (so dvc.lock's digests and the evidence reproduce)
    first = {p: (tmp_path / p).read_bytes() for p in (*layout.REPORT_PLOTS, layout.SCORES_CSV, layout.DATA_CSV,
                                                      layout.REPORT)}
    stages.gate(tmp_path, PARAMS)
    assert {p: (tmp_path / p).read_bytes() for p in first} == first

    # the plots follow their data: another training curve is another picture
    (tmp_path / layout.CURVE).write_text("step,loss,reward_margin,reward_accuracy\n1,0.69,0.0,0.5\n2,0.3,0.9,1.0\n")
    stages.gate(tmp_path, PARAMS)
    assert (tmp_path / layout.CURVE_PNG).read_bytes() != first[layout.CURVE_PNG]
    assert (tmp_path / layout.SCORES_PNG).read_bytes() == first[layout.SCORES_PNG]


def test_the_win_rate_is_drawn_only_when_a_gate_has_one(tmp_path):
    inc, cand = samples()
    verdict = decide(GATES, cand, inc, BOOT).to_json()
    rows = gate_report.score_rows(results(inc), results(cand))
    plain = gate_report.draw_plots(tmp_path / "a", PARAMS, verdict, rows, [], "step,loss\n")
    assert gate_report.win_rates(PARAMS, verdict) == []

    judged = json.loads(json.dumps(verdict))  # a win_rate gate's entry as the gate writes it (rlops/gates/win_rate.py)
    judged["gates"].append({"metric": "heldout.win_rate", "rule": "win_rate", "passed": True, "reason": "r",
                            "candidate": 0.7, "bound": 0.58, "n": 80})
    params = json.loads(json.dumps(PARAMS))
    params["gate"]["rules"].append({"metric": "heldout.win_rate", "rule": "win_rate", "min": 0.5})
    assert gate_report.win_rates(params, judged) == [{"metric": "heldout.win_rate", "rate": 0.7, "bound": 0.58, "min": 0.5}]
    gate_report.draw_plots(tmp_path / "b", params, judged, rows, [], "step,loss\n")
    with_win = (tmp_path / "b" / layout.SCORES_PNG).read_bytes()
    assert with_win != (tmp_path / "a" / layout.SCORES_PNG).read_bytes()
    assert [Path(p).name for p in plain] == [Path(p).name for p in layout.REPORT_PLOTS]

    def height(png: bytes) -> int:
        return int.from_bytes(png[20:24], "big")  # IHDR

    assert height(with_win) > height((tmp_path / "a" / layout.SCORES_PNG).read_bytes())  # the extra panel
