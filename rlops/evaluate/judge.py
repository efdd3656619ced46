"""DVC stage `judge`: a pairwise judge compares candidate and incumbent answers, item by item, for each win_rate gate.

Its own stage between evaluate and gate, not part of the gate: a local transformers judge takes minutes, and a
stage keeps its verdicts cached (`dvc repro` re-judges only when an answer or a gate's judge changed), while the
gate stays a pure function of recorded evidence that `rlops promote` and `audit verify` recompute in milliseconds.

Each suite named by a win_rate gate (`<suite>.win_rate`) is judged once per distinct judge, with the judges of
extraction's registry (rlops/extract/judges.py), in both orders (`judge_pair`): forward shows the candidate's answer
first, backward the incumbent's. One line per item in artifacts/judge/judgments.jsonl:

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
from rlops.errors import StageFailed


def judged_gates(params: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    """(index in gate.rules, suite, judge config) of every gate whose rule reads a judge's verdicts."""
    found = []
    for i, g in enumerate(params["gate"]["rules"]):
        if getattr(components.get("gate_rule", g["rule"]).settings, "judged", False):
            found.append((i, g["metric"].split(".", 1)[0], dict(g["judge"])))
    return found


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
    done = set()
    for i, suite, config in gates:
        key = (suite, json.dumps(config, sort_keys=True))
        if key in done:
            continue
        done.add(key)
        judge = build_judge(config, root, field=f"gate.rules[{i}].judge")
        judged = judge_items(judge, suite, candidate, incumbent)
        if not judged:
            raise StageFailed(f"no items of suite {suite} were answered by both models",
                              hint=f"list {suite} in evaluate.suites, or fix gate.rules[{i}].metric")
        record = {"name": judge.name, "config": config}
        rows += [{"suite": r["suite"], "id": r["id"], "judge": record, **{k: r[k] for k in r if k not in ("suite", "id")}}
                 for r in judged]
        counts = {o: sum(r["outcome"] == o for r in judged) for o in ("win", "tie", "loss")}
        print(f"judge: {suite} by {judge.name}: candidate won {counts['win']}, tied {counts['tie']}, lost "
              f"{counts['loss']} of {len(judged)}", flush=True)
    atomic_write_lines(root / layout.JUDGMENTS, (json.dumps(r, ensure_ascii=False, sort_keys=True) for r in rows))
    return rows
