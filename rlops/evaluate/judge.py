"""DVC stage `judge`: a pairwise judge compares candidate and incumbent answers, item by item, for each win_rate gate.

Its own stage between evaluate and gate, not part of the gate: a local transformers judge takes minutes, and a
stage keeps its verdicts cached (`dvc repro` re-judges only when an answer or a gate's judge changed), while the
gate stays a pure function of recorded evidence that `rlops promote` and `audit verify` recompute in milliseconds.

What to judge is params.yaml's `judge.suites`, which `rlops plan` derives from the win_rate gates
(`judge_section`): one entry per suite and distinct judge. The stage reads that section, not `gate.rules`, so
editing a gate's threshold re-runs only the gate. Each entry is judged with the judges of extraction's registry
(rlops/extract/judges.py), in both orders (`judge_pair`): forward shows the candidate's answer first, backward the
incumbent's. One line per item in artifacts/judge/judgments.jsonl:

    {"suite": "heldout", "id": "heldout-001", "judge": {"name": "rubric:support-quality",
     "config": {"type": "rubric", "rubric": "support-quality"}}, "forward": "first", "backward": "second",
     "outcome": "win"}

`outcome` is for a reader; the gate recomputes it from `forward` and `backward`. No win_rate gate: an empty file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlops import components, layout
from rlops.errors import InvalidInput, StageFailed


def judge_section(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """params.yaml's `judge`: {suites: [{suite, judge}]}, one entry per suite and distinct judge of the gates whose
    rule reads a judge's verdicts (win_rate), in gate order."""
    suites: list[dict[str, Any]] = []
    for g in rules:
        try:
            judged = getattr(components.get("gate_rule", g.get("rule")).settings, "judged", False)
        except InvalidInput:
            continue  # an unknown rule: plan reports it
        if judged and isinstance(g.get("metric"), str) and isinstance(g.get("judge"), dict):
            entry = {"suite": g["metric"].split(".", 1)[0], "judge": dict(g["judge"])}
            if entry not in suites:
                suites.append(entry)
    return {"suites": suites}


def judged_gates(params: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    """(index in judge.suites, suite, judge config) of everything the stage judges."""
    section = params.get("judge")
    if not isinstance(section, dict) or not isinstance(section.get("suites"), list):
        raise StageFailed("params.yaml has no judge.suites (written before the judge stage existed)",
                          hint="run `rlops plan` for the cycle again; it derives judge.suites from the win_rate gates")
    return [(i, e["suite"], dict(e["judge"])) for i, e in enumerate(section["suites"])]


def judge_items(judge, suite: str, candidate: list[dict], incumbent: list[dict]) -> list[dict[str, Any]]:
    """Both orders for every item of `suite` that both models answered, paired by id."""
    from rlops.extract.judges import judge_pair
    from rlops.gates.win_rate import outcome

    cand = {it["id"]: it for it in candidate if it["suite"] == suite}
    inc = {it["id"]: it for it in incumbent if it["suite"] == suite}
    rows = []
    for key in sorted(cand.keys() & inc.keys()):
        c, i = cand[key], inc[key]
        if c["prompt"] != i["prompt"]:
            raise StageFailed(f"{suite} item {key}: candidate and incumbent were asked different prompts",
                              hint="evaluate both models on the same suite (dvc repro re-runs both)")
        prompt = [{"role": "user", "content": c["prompt"]}]
        said = judge_pair(judge, prompt, [{"role": "assistant", "content": c["response"]}],
                          [{"role": "assistant", "content": i["response"]}])
        rows.append({"suite": suite, "id": key, "forward": said.forward, "backward": said.backward,
                     "outcome": outcome(said.forward, said.backward)})
    return rows


def run(params: dict[str, Any], root: Path) -> list[dict[str, Any]]:
    from rlops.evaluate.suites import read_items
    from rlops.extract.judges import build_judge
    from rlops.io import atomic_write_lines

    rows: list[dict[str, Any]] = []
    gates = judged_gates(params)
    if gates:
        candidate = read_items(root / layout.samples("candidate"))
        incumbent = read_items(root / layout.samples("incumbent"))
    for i, suite, config in gates:
        judge = build_judge(config, root, field=f"judge.suites[{i}].judge")
        judged = judge_items(judge, suite, candidate, incumbent)
        if not judged:
            raise StageFailed(f"no items of suite {suite} were answered by both models",
                              hint=f"list {suite} in evaluate.suites, or fix the win_rate gate's metric")
        record = {"name": judge.name, "config": config}
        rows += [{"suite": r["suite"], "id": r["id"], "judge": record, **{k: r[k] for k in r if k not in ("suite", "id")}}
                 for r in judged]
        counts = {o: sum(r["outcome"] == o for r in judged) for o in ("win", "tie", "loss")}
        print(f"judge: {suite} by {judge.name}: candidate won {counts['win']}, tied {counts['tie']}, lost "
              f"{counts['loss']} of {len(judged)}", flush=True)
    atomic_write_lines(root / layout.JUDGMENTS, (json.dumps(r, ensure_ascii=False, sort_keys=True) for r in rows))
    return rows
