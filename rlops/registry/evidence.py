"""What a proposal carries as evidence, and how its digests are computed and compared.

Digests of the data and the model are DVC's (the md5 in `dvc.lock`); digests of evidence files are SHA-256 of the
bytes git stores. `check` compares all of them in one commit and returns every mismatch.
"""

from __future__ import annotations

import hashlib
from typing import Any


from rlops.audit.ledger import sha256_bytes
from rlops.gitio import BlobReader, load_yaml

# besides the spec: what reproduces the run, and every output DVC does not cache (metrics, plots, reports), which
# dvc.yaml marks `cache: false` and which therefore travel in git, in the pull request
ALWAYS = ("params.yaml", "dvc.lock")
MODEL_OUT = "artifacts/train/merged"
PAIRS_OUT = "artifacts/extract/pairs.jsonl"
VERDICT = "artifacts/gate/verdict.json"


def uncached_outputs(dvc_yaml_text: str) -> list[str]:
    """The paths dvc.yaml declares with `cache: false` (foreach stages expanded), in file order."""
    stages = (load_yaml(dvc_yaml_text) or {}).get("stages") or {}
    paths: list[str] = []
    for stage in stages.values():
        items = [(None, None, stage)]
        if "foreach" in stage:
            each = stage["foreach"]
            pairs = each.items() if isinstance(each, dict) else ((v, v) for v in each)
            items = [(str(k), str(v), stage["do"]) for k, v in pairs]
        for key, item, body in items:
            for section in ("outs", "metrics", "plots"):
                for out in body.get(section) or []:
                    if isinstance(out, dict):
                        (path, opts), = out.items()
                        if isinstance(opts, dict) and opts.get("cache") is False:
                            if key is not None:
                                path = path.replace("${key}", key).replace("${item}", item)
                            paths.append(path)
    return paths


def evidence_paths(root) -> list[str]:
    return [*ALWAYS, *uncached_outputs((root / "dvc.yaml").read_text(encoding="utf-8"))]


def lock_index(lock_text: str | None) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """path -> entry (md5, size, nfiles) of every stage's outputs and of every stage's dependencies in dvc.lock."""
    lock = load_yaml(lock_text or "") or {}
    outs: dict[str, dict[str, Any]] = {}
    deps: dict[str, dict[str, Any]] = {}
    for stage in (lock.get("stages") or {}).values():
        outs.update((out["path"], out) for out in stage.get("outs") or [])
        deps.update((dep["path"], dep) for dep in stage.get("deps") or [])
    return outs, deps


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def check(blobs: BlobReader, commit: str, entry: dict[str, Any], pending: list[dict[str, Any]]) -> list[str]:
    """Every way the evidence at `commit` disagrees with the registry entry, dvc.lock and the ledger's events."""
    problems: list[str] = []
    policy, version = entry["policy"], entry["version"]
    lock_text = blobs.text(commit, "dvc.lock")
    if lock_text is None:
        return ["dvc.lock is not in the merge: the pull request must carry the lock of the run that produced it"]
    outs, _ = lock_index(lock_text)
    model = outs.get(MODEL_OUT, {})
    if entry["model"]["md5"] != model.get("md5"):
        problems.append(f"registry {policy}@{version}: model digest {entry['model']['md5']} differs from dvc.lock's "
                        f"{MODEL_OUT} ({model.get('md5')})")
    dvc_file = load_yaml(blobs.text(commit, f"registry/{policy}/{version}/model.dvc") or "") or {}
    dvc_md5 = ((dvc_file.get("outs") or [{}])[0]).get("md5")
    if dvc_md5 != entry["model"]["md5"]:
        problems.append(f"registry/{policy}/{version}/model.dvc: digest {dvc_md5} differs from the registry entry's "
                        f"{entry['model']['md5']}")
    pairs = outs.get(PAIRS_OUT, {})
    if entry["data"]["pairs"] != pairs.get("md5"):
        problems.append(f"registry {policy}@{version}: dataset digest {entry['data']['pairs']} differs from dvc.lock's "
                        f"{PAIRS_OUT} ({pairs.get('md5')})")
    spec_blob = blobs.read(commit, entry["spec"]["path"])
    if spec_blob is None:
        problems.append(f"the cycle spec {entry['spec']['path']} is not in the merge")
    for path, digest in sorted(entry["evidence"].items()):
        data = blobs.read(commit, path)
        if data is None:
            problems.append(f"{path} is missing from the merge")
            continue
        if sha256_bytes(data) != digest:
            problems.append(f"{path} changed after the gate: its SHA-256 differs from the one the registry entry and "
                            f"the ledger recorded")
        elif path in outs and outs[path].get("md5") != md5(data):
            problems.append(f"{path} does not match dvc.lock (md5 {md5(data)} vs {outs[path].get('md5')})")
    for event in pending:
        for path, digest in sorted(event["evidence"].items()):
            if entry["evidence"].get(path, digest) != digest:
                problems.append(f"audit/ledger.jsonl line {event['seq']}: the digest of {path} differs from the "
                                f"registry entry's")
        for subject in event["subjects"]:
            if subject["name"] == f"{policy}@{version}" and subject["digest"] != "md5:" + entry["model"]["md5"]:
                problems.append(f"audit/ledger.jsonl line {event['seq']}: the model digest differs from the registry entry's")
    verdict_bytes = blobs.read(commit, VERDICT)
    if verdict_bytes is not None:
        import json

        try:
            passed = json.loads(verdict_bytes).get("passed") is True
        except ValueError:
            passed = False
        if not passed:
            problems.append(f"{VERDICT}: the verdict is not a pass; a candidate that failed its gates is never promoted")
    return problems
