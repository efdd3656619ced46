"""The committed example data is what make_example.py makes, and the eval suites stay out of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from rlops.extract.filters import normalise
from rlops.extract.validators import schema_problems

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "data/example"
EVALS = ROOT / "specs/evals"
SUITES = {"heldout": 85, "regression": 30, "redteam": 61, "overrefusal": 40}
METRICS = {"heldout": ["rubric"], "regression": ["rubric"], "redteam": ["safe", "refusal"], "overrefusal": ["refused"]}
MINIMUM = {"heldout": 80, "redteam": 60, "overrefusal": 40}  # issue 13: enough items to decide
REDTEAM_CLASSES = {"other_customer_data", "payment_data", "out_of_policy_refund", "others_order_change",
                   "prompt_injection_direct", "prompt_injection_indirect", "jailbreak_roleplay",
                   "jailbreak_developer_mode"}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_committed_data_matches_the_generator():
    p = subprocess.run([sys.executable, str(EXAMPLE / "make_example.py"), "--check"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_example_data_is_small_and_mostly_valid():
    for name in ("interactions.jsonl", "feedback.jsonl"):
        assert (EXAMPLE / name).stat().st_size < 1_000_000
    lines = (EXAMPLE / "interactions.jsonl").read_text(encoding="utf-8").splitlines()
    valid = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not schema_problems("interaction", record):
            valid.append(record)
    assert 300 <= len(valid) <= 400 and len(lines) - len(valid) >= 3  # a few malformed on purpose
    days = {r["timestamp"][:10] for r in valid}
    assert min(days) < "2026-11-01" and max(days) > "2026-11-24"  # some outside the window, to show the filter
    assert all(r["agent"] == {"name": "support-agent", "version": "base"} for r in valid)


def test_eval_suites_are_well_formed():
    for suite, size in SUITES.items():
        spec = yaml.safe_load((EVALS / suite / "suite.yaml").read_text())
        assert spec["name"] == suite and spec["data"] == "prompts.jsonl" and spec["task"] == "generate"
        assert spec["metrics"] == METRICS[suite]
        assert spec["generation"]["max_new_tokens"] > 0
        items = rows(EVALS / suite / spec["data"])
        assert len(items) == size >= MINIMUM.get(suite, 0)
        assert [r["id"] for r in items] == [f"{suite}-{n:03d}" for n in range(1, size + 1)]
        assert len({normalise(r["prompt"]) for r in items}) == size
        for r in items:
            if suite == "redteam":
                assert r["expect"] == "refusal" and r["class"] in REDTEAM_CLASSES
            elif suite == "overrefusal":
                assert r["expect"] == "answer" and r["class"]
            else:
                groups = r["rubric"]["include_any"] + r["rubric"].get("courtesy", [])
                assert groups and all(g and all(p == p.lower() and p.strip() for p in g) for g in groups)
                assert "as an ai" in r["rubric"]["exclude"]


def test_every_red_team_class_has_several_items():
    classes = [r["class"] for r in rows(EVALS / "redteam/prompts.jsonl")]
    assert set(classes) == REDTEAM_CLASSES
    assert min(classes.count(c) for c in REDTEAM_CLASSES) >= 6


def test_eval_prompts_are_not_in_the_training_logs_except_the_planted_ones():
    evals = {normalise(r["prompt"]): r["id"] for suite in SUITES for r in rows(EVALS / suite / "prompts.jsonl")}
    leaked = set()
    for line in (EXAMPLE / "interactions.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        for m in record.get("input_messages", []):
            if m.get("role") == "user" and normalise(m.get("content", "")) in evals:
                leaked.add(evals[normalise(m["content"])])
    # make_example.py plants these three so that decontamination has something to drop
    assert leaked == {"heldout-001", "heldout-020", "heldout-034"}
