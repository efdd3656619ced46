"""What a proposal carries as evidence, and how its digests are computed and compared.

Digests of the data and the model are DVC's (the md5 in `dvc.lock`); digests of evidence files are SHA-256 of the
bytes git stores. `check` compares all of them in one commit and returns every mismatch.
"""

from __future__ import annotations

import hashlib
from typing import Any

from rlops import layout
from rlops.gitio import BlobReader, parse_yaml_text
from rlops.io import sha256_bytes
from rlops.registry import versions

# besides the spec: what reproduces the run, and every output DVC does not cache (metrics, plots, reports), which
# dvc.yaml marks `cache: false` and which therefore travel in git, in the pull request
ALWAYS = ("params.yaml", "dvc.lock")
MODEL_OUT = layout.MERGED
VERDICT = layout.VERDICT


def uncached_outputs(dvc_yaml_text: str) -> list[str]:
    """The paths dvc.yaml declares with `cache: false` (foreach stages expanded), in file order."""
    stages = (parse_yaml_text(dvc_yaml_text) or {}).get("stages") or {}
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


def pairs_path(params: Any) -> str:
    """The dataset a promotion registers: the pairs in params.yaml's extract.format (jsonl when it names none)."""
    fmt = ((params.get("extract") if isinstance(params, dict) else None) or {}).get("format")
    return layout.pairs(fmt if fmt in layout.FORMATS else None)


def evidence_paths(root) -> list[str]:
    return [*ALWAYS, *uncached_outputs((root / "dvc.yaml").read_text(encoding="utf-8"))]


def lock_index(lock_text: str | None) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """path -> entry (md5, size, nfiles) of every stage's outputs and of every stage's dependencies in dvc.lock."""
    lock = parse_yaml_text(lock_text or "") or {}
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
    model_dvc = versions.model_dvc(policy, version)
    blobs.prefetch(commit, ["dvc.lock", "params.yaml", model_dvc, str(entry["spec"]["path"]),
                            *entry["evidence"], VERDICT, layout.samples("candidate"), layout.samples("incumbent"),
                            layout.JUDGMENTS])
    lock_text = blobs.text(commit, "dvc.lock")
    if lock_text is None:
        return ["dvc.lock is not in the merge: the pull request must carry the lock of the run that produced it"]
    outs, _ = lock_index(lock_text)
    model = outs.get(MODEL_OUT, {})
    if entry["model"]["md5"] != model.get("md5"):
        problems.append(f"registry {policy}@{version}: model digest {entry['model']['md5']} differs from dvc.lock's "
                        f"{MODEL_OUT} ({model.get('md5')})")
    dvc_file = parse_yaml_text(blobs.text(commit, model_dvc) or "") or {}
    dvc_md5 = ((dvc_file.get("outs") or [{}])[0]).get("md5")
    if dvc_md5 != entry["model"]["md5"]:
        problems.append(f"{model_dvc}: digest {dvc_md5} differs from the registry entry's "
                        f"{entry['model']['md5']}")
    pairs_out = pairs_path(parse_yaml_text(blobs.text(commit, "params.yaml") or "") or {})
    pairs = outs.get(pairs_out, {})
    if entry["data"]["pairs"] != pairs.get("md5"):
        problems.append(f"registry {policy}@{version}: dataset digest {entry['data']['pairs']} differs from dvc.lock's "
                        f"{pairs_out} ({pairs.get('md5')})")
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
    problems += check_verdict(blobs, commit, entry, pending)
    return problems


GATE_FIELDS = ("metric", "rule", "passed", "candidate", "incumbent", "diff", "ci_low", "ci_high", "n")


def recompute_verdict(params: dict[str, Any], candidate: list[dict], incumbent: list[dict],
                      judgments: list[dict] | None = None) -> dict[str, Any]:
    """The gate's verdict from the per-item samples, the judge's recorded per-item verdicts (win_rate gates) and
    params.yaml's `gate` section: the gate stage's own function; the judge is never asked again."""
    from rlops import gate

    return gate.decide(params["gate"]["rules"], candidate, incumbent, params["gate"]["bootstrap"],
                       judgments=judgments or []).to_json()


def _items(data: bytes) -> list[dict]:
    import json

    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def check_verdict(blobs: BlobReader, commit: str, entry: dict[str, Any], pending: list[dict[str, Any]]) -> list[str]:
    """Recompute the gate from the evidence in `commit` and compare it with verdict.json, the registry entry and the
    ledger's gate_decided event; verdict.json is required evidence."""
    import json

    verdict_bytes = blobs.read(commit, VERDICT)
    if verdict_bytes is None:
        return [f"{VERDICT} is not in the merge: the verdict is required evidence of a promotion"]
    try:
        verdict = json.loads(verdict_bytes)
        params = parse_yaml_text(blobs.text(commit, "params.yaml")) or {}
        samples = {w: blobs.read(commit, layout.samples(w)) for w in ("candidate", "incumbent")}
        missing = [w for w, data in samples.items() if data is None]
        if missing:
            return [f"{layout.samples(w)} is not in the merge: the verdict cannot be recomputed"
                    for w in missing]
        # read only when a win_rate gate needs them (params' judge.suites): a cycle without one, or from before the
        # judge stage, has none to read
        wanted = ((params.get("judge") or {}).get("suites") if isinstance(params, dict) else None)
        judged = blobs.read(commit, layout.JUDGMENTS) if wanted else None
        if wanted and judged is None:
            return [f"{layout.JUDGMENTS} is not in the merge: the win_rate verdict cannot be recomputed"]
        again = recompute_verdict(params, _items(samples["candidate"]), _items(samples["incumbent"]),
                                  _items(judged) if judged is not None else [])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        return [f"{VERDICT}: the verdict cannot be recomputed from params.yaml's gate section and the evaluation "
                f"samples ({type(e).__name__}: {e})"]
    problems = []
    if not again["passed"]:
        failed = ", ".join(g["metric"] for g in again["gates"] if not g["passed"])
        problems.append(f"the gate recomputed from the evaluation samples fails ({failed}): a candidate that failed "
                        f"its gates is never promoted")
    stored = verdict.get("gates") if isinstance(verdict, dict) else None
    shown = [{k: g.get(k) for k in GATE_FIELDS} for g in stored] if isinstance(stored, list) and all(
        isinstance(g, dict) for g in stored) else None
    if (not isinstance(verdict, dict) or verdict.get("passed") is not again["passed"]
            or verdict.get("decision") != again["decision"] or shown != [{k: g.get(k) for k in GATE_FIELDS}
                                                                        for g in again["gates"]]):
        problems.append(f"{VERDICT} differs from the verdict recomputed from the evaluation samples and params.yaml "
                        f"(recomputed: {again['decision']}, "
                        + ", ".join(f"{g['metric']} {'pass' if g['passed'] else 'FAIL'}" for g in again["gates"]) + ")")
    evaluation = entry.get("evaluation") or {}
    for g in again["gates"]:
        recorded = evaluation.get(g["metric"]) or {}
        if any(recorded.get(k) != g[k] for k in ("rule", "passed", "candidate", "incumbent", "diff", "ci_low", "ci_high", "n")):
            problems.append(f"registry {entry['policy']}@{entry['version']}: evaluation.{g['metric']} differs from "
                            f"the recomputed gate")
    if entry.get("verdict") != again["decision"]:
        problems.append(f"registry {entry['policy']}@{entry['version']}: verdict {entry.get('verdict')!r} differs "
                        f"from the recomputed {again['decision']!r}")
    for event in pending:
        if event["event"] == "gate_decided":
            data = event.get("data") or {}
            if data.get("decision") != again["decision"] or data.get("gates") != {g["metric"]: g["passed"]
                                                                                  for g in again["gates"]}:
                problems.append(f"audit/ledger.jsonl line {event['seq']}: the gate decision differs from the "
                                f"recomputed one")
    return problems
