"""The extract stage's DVC metric stays small: `dvc metrics show` prints signals.json as one readable row, and the
whole report lives beside it in signals_detail.json (evidence, not a metric). Real DVC reads the stage's outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from test_extract import mixed_world, params

from rlops.extract import run as extract_run

ROOT = Path(__file__).resolve().parent.parent
DVC = str(Path(sys.executable).parent / "dvc")


def leaves(node) -> list:
    return [x for v in node.values() for x in leaves(v)] if isinstance(node, dict) else [node]


def test_signals_json_is_a_handful_of_counts_and_the_detail_is_whole(tmp_path):
    root = mixed_world(tmp_path)
    out = root / "artifacts/extract"
    report = extract_run.run(params(), root, out)
    metric = json.loads((out / "signals.json").read_text())
    detail = json.loads((out / "signals_detail.json").read_text())
    assert detail == report and len(leaves(report)) > 50  # the whole report, per rule, reason, kind, version ...
    assert len(leaves(metric)) <= 12 and all(isinstance(x, int) for x in leaves(metric)), metric
    inv = report["invariant"]
    assert metric == {"records_read": report["records_read"], "quarantined": report["quarantined"],
                      "feedback": {"used": inv["feedback"]["used"], "dropped": inv["feedback"]["dropped"]},
                      "rows": report["rows"]}
    assert metric["rows"]["pairs"] == report["pairs"]["total"] > 0
    assert extract_run.OUTPUTS[-2:] == ("signals_detail.json", "signals.json")  # the metric, the marker, is last

    # what DVC itself makes of it: the project's dvc.yaml declares signals.json as the metric and the detail as an out
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    metrics = [next(iter(m)) for m in dvc_yaml["extract"]["metrics"]]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in dvc_yaml["extract"]["outs"]]
    assert metrics == ["artifacts/extract/signals.json"] and "artifacts/extract/signals_detail.json" in outs
    assert "artifacts/extract/signals_detail.json" in dvc_yaml["gate"]["deps"]
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "init", "-q"], cwd=root, check=True)
    shown = subprocess.run([DVC, "metrics", "show", "--json"], cwd=root, capture_output=True, text=True, check=True)
    data = json.loads(shown.stdout)
    files = {path: v["data"] for path, v in next(iter(data.values()))["data"].items() if "data" in v}
    assert files == {"artifacts/extract/signals.json": metric}  # the other stages' metrics are not there yet
