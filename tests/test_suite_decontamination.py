"""The evaluation suites stay out of the example training data: the extract stage's own decontamination (13-word
windows, rlops/extract/filters.py) run over data/example and every suite under specs/evals finds only the three
held-out items that data/example/make_example.py plants on purpose, and nothing at all once those are set aside."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from rlops.extract import run as extract_run

ROOT = Path(__file__).resolve().parent.parent
PLANTED = {"heldout-001", "heldout-020", "heldout-034"}  # make_example.py puts these in the logs, for the filter


def _extract(root: Path, suites_dir: str, out: Path) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["extract"] = {**params["extract"], "suites_dir": suites_dir, "decontaminate": True, "threads": 1}
    return extract_run.run(params, root, out)


def test_the_suites_share_no_13_word_window_with_the_example_data_beyond_the_planted_items(tmp_path):
    suites = sorted(p.name for p in (ROOT / "specs/evals").iterdir() if (p / "prompts.jsonl").is_file())
    assert {"heldout", "regression", "redteam", "overrefusal"} <= set(suites)
    report = _extract(ROOT, "specs/evals", tmp_path / "out")["decontamination"]
    assert report["heldout"]["items_found"] == len(PLANTED)
    assert {s: report[s]["items_found"] for s in suites if s != "heldout"} == {s: 0 for s in suites if s != "heldout"}

    # the same run with the planted items set aside: nothing is found anywhere
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "data/example", root / "data/example")
    for suite in suites:
        rows = [json.loads(line) for line in (ROOT / "specs/evals" / suite / "prompts.jsonl").read_text().splitlines()]
        kept = [r for r in rows if r["id"] not in PLANTED]
        (root / "evals" / suite).mkdir(parents=True)
        (root / "evals" / suite / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    clean = _extract(root, "evals", tmp_path / "out2")
    assert clean["decontamination"]["rows_removed"] == 0
    assert all(clean["decontamination"][s]["items_found"] == 0 for s in suites)
    assert clean["dropped"].get("contaminated", 0) == 0
