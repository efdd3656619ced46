"""rlops/layout.py is the one list of artifact paths: dvc.yaml agrees with it, and the readers follow its
format-dependent names (a parquet cycle can be proposed and its promotion checked)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from rlops import layout

REPO = Path(__file__).resolve().parents[1]
_VAR = re.compile(r"\$\{([^}]+)\}")


def _lookup(scope: dict, dotted: str):
    value = scope
    for part in dotted.split("."):
        value = value[part]
    return value


def _resolve(node, scope: dict):
    """dvc.yaml's `${...}` interpolation, for the strings it appears in here."""
    if isinstance(node, str):
        whole = _VAR.fullmatch(node)
        if whole:
            return _lookup(scope, whole.group(1))
        return _VAR.sub(lambda m: str(_lookup(scope, m.group(1))), node)
    if isinstance(node, list):
        return [_resolve(v, scope) for v in node]
    if isinstance(node, dict):
        return {_resolve(k, scope): _resolve(v, scope) for k, v in node.items()}
    return node


def _path(entry) -> str:
    if isinstance(entry, dict):
        (path, _opts), = entry.items()
        return path
    return entry


def resolved_stages(params: dict) -> dict[str, dict]:
    """dvc.yaml's stages with `${...}` resolved against params and each foreach stage expanded to `name@key`."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    out = {}
    for name, stage in dvc["stages"].items():
        if "foreach" not in stage:
            out[name] = _resolve(stage, params)
            continue
        each = _resolve(stage["foreach"], params)
        pairs = each.items() if isinstance(each, dict) else ((v, v) for v in each)
        for key, item in pairs:
            out[f"{name}@{key}"] = _resolve(stage["do"], {**params, "key": key, "item": item})
    return out


def declared(stages: dict[str, dict]) -> dict[str, dict[str, list[str]]]:
    return {name: {section: [_path(e) for e in body.get(section) or []] for section in ("outs", "metrics", "plots")}
            for name, body in stages.items()}


def _params(fmt: str) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params = copy.deepcopy(params)
    params["extract"]["format"] = fmt
    return params


@pytest.mark.parametrize("fmt", layout.FORMATS)
def test_dvc_yaml_declares_exactly_the_layout(fmt):
    params = _params(fmt)
    assert declared(resolved_stages(params)) == layout.stage_outputs(params)


@pytest.mark.parametrize("fmt", layout.FORMATS)
def test_every_artifact_a_stage_reads_is_one_a_stage_writes(fmt):
    params = _params(fmt)
    stages = resolved_stages(params)
    written = {p for body in layout.stage_outputs(params).values() for paths in body.values() for p in paths}
    for name, body in stages.items():
        for dep in body.get("deps") or []:
            if dep.startswith(layout.ARTIFACTS + "/") and dep != layout.INPUTS:
                assert dep in written, f"dvc.yaml: stage {name} depends on {dep}, which rlops/layout.py does not name"
    assert stages["train"]["deps"].count(layout.pairs(params)) == 1
    assert {k: v for k, v in stages.items() if k.startswith("evaluate@")}.keys() == {f"evaluate@{w}" for w in layout.MODELS}
    for which, model in layout.MODELS.items():
        assert model in stages[f"evaluate@{which}"]["deps"]


def test_format_dependent_names_follow_params():
    assert layout.pairs({"extract": {"format": "parquet"}}) == "artifacts/extract/pairs.parquet"
    assert layout.pairs({"extract": {"format": "jsonl"}}) == "artifacts/extract/pairs.jsonl"
    assert layout.pairs({}) == "artifacts/extract/pairs.jsonl"  # params.yaml written before extract.format
    with pytest.raises(ValueError, match="extract.format 'csv'"):
        layout.pairs({"extract": {"format": "csv"}})


def test_extract_stage_writes_the_layouts_files():
    from rlops.extract.run import outputs

    for fmt in layout.FORMATS:
        files = layout.stage_outputs(_params(fmt))["extract"]
        assert sorted(f"{layout.EXTRACT}/{name}" for name in outputs(fmt)) == sorted(files["outs"] + files["metrics"])


def _parquet_run(repo, env) -> dict:
    """What a finished parquet cycle leaves for `rlops propose`: params.yaml, dvc.lock, the verdict, committed."""
    from conftest import run

    from rlops.registry.evidence import md5

    params = _params("parquet")
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    lock = {"schema": "2.0", "stages": {
        "extract": {"cmd": "python pipelines/extract.py",
                    "outs": [{"path": layout.pairs(params), "md5": md5(b"parquet pairs"), "size": 4}]},
        "train": {"cmd": "python pipelines/train.py",
                  "outs": [{"path": layout.MERGED, "md5": md5(b"model") + ".dir", "size": 8, "nfiles": 2}]}}}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    (repo / layout.GATE).mkdir(parents=True)
    (repo / layout.VERDICT).write_text('{"passed": true, "decision": "promote", "gates": []}\n')
    run(["git", "add", "-f", "params.yaml", "dvc.lock", layout.VERDICT], repo, env)
    run(["git", "commit", "-q", "-m", "a parquet cycle"], repo, env)
    return params


def test_a_parquet_cycle_registers_its_pairs_and_its_promotion_checks_them(project):
    """extract.format: parquet writes pairs.parquet: the proposal's dataset digest is that file's, and the promotion's
    evidence check compares against the same file (it once looked for pairs.jsonl and refused)."""
    from rlops.gitio import BlobReader, rev
    from rlops.promotion.propose import registry_entry
    from rlops.registry import evidence

    repo, env = project
    params = _parquet_run(repo, env)
    entry, model_out = registry_entry(repo, params, "v2", "tester", "2026-01-01T00:00:00Z")
    assert entry["data"]["pairs"] == evidence.md5(b"parquet pairs")
    assert model_out["path"] == layout.MERGED

    blobs = BlobReader(repo)
    try:
        head = rev(repo, "HEAD")
        problems = evidence.check(blobs, head, entry, [])
        assert not [p for p in problems if "dataset digest" in p], problems
        entry["data"]["pairs"] = evidence.md5(b"other pairs")
        assert [p for p in evidence.check(blobs, head, entry, []) if "dataset digest" in p and "pairs.parquet" in p]
    finally:
        blobs.close()
