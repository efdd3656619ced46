"""`rlops propose`: put a passing cycle's evidence on a branch and open (or describe) its pull request.

The branch's one commit registers the candidate as the next version, moves the deployment manifest per the spec's
promotion mode, appends the pending events to the ledger and carries the spec, params.yaml, dvc.lock and every
metric. Its message ends with trailers that anchor the proposal (`Rlops-Ledger:` names the last ledger line it
appended), so the signed merge of that commit fixes the evidence for good.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlops import layout
from rlops.audit import ledger
from rlops.errors import EXIT_GATE_FAILED, EXIT_INVALID, EXIT_STALE, EXIT_STALE_PARENT, Refused, RlopsError
from rlops.gitio import git, rev, status_paths
from rlops.registry import manifest, versions
from rlops.registry.evidence import MODEL_OUT, VERDICT, evidence_paths, lock_index, pairs_path


@dataclass(frozen=True)
class Proposal:
    version: str
    branch: str
    commit: str
    title: str
    body_file: Path
    next_steps: list[str]  # commands still to run (empty when it pushed and opened the PR itself)
    base: str = ""  # the branch checked out before; the command leaves the user on `branch`


def actor(root: Path) -> str:
    name = git(root, "config", "user.name", check=False).strip() or "unknown"
    email = git(root, "config", "user.email", check=False).strip()
    return f"{name} <{email}>" if email else name


def _read_json(root: Path, path: str) -> dict[str, Any]:
    return json.loads((root / path).read_text(encoding="utf-8"))


def _allowed_changes(root: Path, spec: str) -> set[str]:
    return {spec, *evidence_paths(root)}


# what DVC writes besides the outputs: its .gitignore and scratch space, `dvc plots show`'s page, DVCLive's folder
DVC_OWN = (".dvc/.gitignore", ".dvc/tmp/", ".dvc/cache/", ".dvc/config.local", "dvc_plots/", "dvclive/")


def _interpolate(text: str, params: dict[str, Any], item: dict[str, str]) -> str:
    """dvc.yaml's `${a.b}` from params.yaml (and `${key}`/`${item}` of a foreach), as DVC resolves them."""
    import re

    def value(m: re.Match) -> str:
        name = m.group(1).strip()
        if name in item:
            return item[name]
        node = _param(params, name)
        return str(node) if node is not None else m.group(0)

    return re.sub(r"\$\{([^}]+)\}", value, text)


def _param(params: dict[str, Any], name: str) -> Any:
    node: Any = params
    for part in name.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def dvc_outputs(root: Path, params: dict[str, Any]) -> list[str]:
    """Every output DVC manages here: dvc.yaml's outs, metrics and plots (resolved) and the outs of `*.dvc` files."""
    from rlops.gitio import parse_yaml_text

    dvc_yaml = root / "dvc.yaml"
    dvc = (parse_yaml_text(dvc_yaml.read_text(encoding="utf-8")) or {}) if dvc_yaml.is_file() else {}
    stages = dvc.get("stages") or {}
    paths: list[str] = []
    for stage in stages.values():
        bodies = [({}, stage)]
        if "foreach" in stage:
            each = stage["foreach"]
            if isinstance(each, str):  # `foreach: ${data.sources}`: the mapping (or list) params.yaml holds there
                each = _param(params, each.strip().removeprefix("${").removesuffix("}").strip()) or {}
            pairs = each.items() if isinstance(each, dict) else ((v, v) for v in each)
            bodies = [({"key": str(k), "item": str(v)}, stage.get("do") or {}) for k, v in pairs]
        for item, body in bodies:
            for section in ("outs", "metrics", "plots"):
                for out in body.get(section) or []:
                    path = next(iter(out)) if isinstance(out, dict) else out
                    paths.append(_interpolate(str(path), params, item).rstrip("/"))
    tracked = git(root, "ls-files", "-z", "--", "*.dvc", check=False).split("\0")
    for dvc_file in filter(None, tracked):
        outs = (parse_yaml_text((root / dvc_file).read_text(encoding="utf-8")) or {}).get("outs") or []
        folder = str(Path(dvc_file).parent)
        paths += [str(Path(folder) / o["path"]) if folder != "." else o["path"] for o in outs if "path" in o]
    return paths


def dvc_leftover(path: str, outputs: list[str]) -> bool:
    """Whether a changed path is DVC's own: inside an output, the .gitignore DVC keeps beside one, or DVC's scratch."""
    if path.startswith(DVC_OWN):
        return True
    if path.endswith(".gitignore"):
        folder = str(Path(path).parent)
        return any(str(Path(out).parent) == folder for out in outputs)
    return any(path == out or path.startswith(out + "/") for out in outputs)


def unrelated_changes(root: Path, params: dict[str, Any]) -> list[str]:
    """Changed or untracked paths that are neither the cycle's evidence nor what DVC itself left behind."""
    allowed = _allowed_changes(root, params["plan"]["spec"])
    outputs = [o for o in dvc_outputs(root, params) if o not in allowed]
    return [p for p in status_paths(root) if p not in allowed and not dvc_leftover(p, outputs)]


def _set_aside(paths: list[str]) -> str:
    import shlex

    shown = paths[:10]
    return ("the working tree holds changes unrelated to the cycle: " + ", ".join(shown)
            + (f" and {len(paths) - len(shown)} more" if len(paths) > len(shown) else "")
            + "; commit them, or set them aside with `" + shlex.join(["git", "stash", "push", "--include-untracked",
                                                                    "--", *paths]) + "` (`git stash pop` brings them back)")


def preflight(root: Path, params: dict[str, Any]) -> list[tuple[int, str]]:
    """Every reason not to propose now: a test model, a failed gate, stale outputs, unrelated changes (what DVC itself
    left behind is not one), a parent not in production."""
    from rlops.spec import compose

    reasons: list[tuple[int, str]] = []
    # first, so that its exit code is the command's: no verdict makes a test model's weights worth proposing
    model = params.get("model") or {}
    if model.get("source") == "random":
        reasons.append((EXIT_INVALID, f"the candidate was trained from a test model ({model.get('name')}, "
                        "model.source: random); a test model is never proposed: plan the cycle with a real model "
                        "(without `model=tiny`), then `dvc repro`"))
    verdict_path = root / VERDICT
    if not verdict_path.is_file():
        reasons.append((EXIT_STALE, f"{VERDICT} not found: run `dvc repro` first"))
    else:
        verdict = json.loads(verdict_path.read_text(encoding="utf-8"))
        if not verdict.get("passed"):
            failed = ", ".join(dict.fromkeys(g["metric"] for g in verdict["gates"] if not g["passed"]))
            blind = ", ".join(dict.fromkeys(g["metric"] for g in verdict["gates"]
                                            if not g["passed"] and g.get("informative") is False))
            reasons.append((EXIT_GATE_FAILED, f"the gate did not pass ({failed}); a failed candidate is never proposed"
                            + (f"; uninformative: candidate and incumbent tied on every item of {blind}, so the "
                               "evaluation cannot tell them apart" if blind else "")))
    try:
        compose.check(root, None, None)
    except RlopsError as e:
        reasons.append((EXIT_STALE, e.message.splitlines()[0] + " (run `rlops plan`, then `dvc repro`)"))
    dvc = shutil.which("dvc")
    if dvc is None:
        reasons.append((EXIT_INVALID, "the `dvc` command is not installed: install the `train` extra (make setup)"))
    else:
        p = subprocess.run([dvc, "status", "-q"], cwd=root, capture_output=True, text=True)
        if p.returncode != 0:
            detail = subprocess.run([dvc, "status"], cwd=root, capture_output=True, text=True).stdout.strip()
            reasons.append((EXIT_STALE, "`dvc status` shows stale outputs; run `dvc repro` first:\n    "
                            + detail.replace("\n", "\n    ")))
    unrelated = unrelated_changes(root, params)
    if unrelated:
        reasons.append((EXIT_INVALID, _set_aside(unrelated)))
    policy = params["cycle"]["policy"]
    production = manifest.load(root, policy).production
    if params["cycle"]["parent_version"] != production:
        reasons.append((EXIT_STALE_PARENT, f"the cycle trained from {policy}@{params['cycle']['parent_version']}, but "
                        f"{production} serves production now; set `parent: production`, re-plan and re-run the cycle"))
    return reasons


def registry_entry(root: Path, params: dict[str, Any], version: str, who: str, ts: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The registry record of the candidate, and the dvc.lock out of its weights."""
    lock_text = (root / "dvc.lock").read_text(encoding="utf-8")
    outs, deps = lock_index(lock_text)
    pairs_out = pairs_path(params)
    if MODEL_OUT not in outs or pairs_out not in outs:
        raise RlopsError(f"dvc.lock has no {MODEL_OUT} or {pairs_out}", hint="run `dvc repro` to completion first")
    spec = params["plan"]["spec"]
    verdict = _read_json(root, VERDICT)
    cycle, train = params["cycle"], params["train"]
    evidence = {p: ledger.sha256_bytes((root / p).read_bytes()) for p in (spec, *evidence_paths(root))
                if (root / p).is_file()}
    entry = {
        "policy": cycle["policy"], "version": version, "cycle": cycle["number"], "parent": cycle["parent_version"],
        "created": ts, "proposed_by": who, "rationale": cycle["rationale"],
        "spec": {"path": spec, "blob": git(root, "hash-object", spec).strip()},
        "model": {"md5": outs[MODEL_OUT]["md5"], "size": outs[MODEL_OUT].get("size"),
                  "nfiles": outs[MODEL_OUT].get("nfiles"), "base": params["model"]["name"]},
        "data": {"pairs": outs[pairs_out]["md5"], **trained_on(params, outs),
                 "interactions": deps.get(params["data"]["interactions"], {}).get("md5"),
                 "feedback": deps.get(params["data"]["feedback"], {}).get("md5")},
        "training": training_record(train),
        "evaluation": {g["metric"]: {k: g[k] for k in ("rule", "passed", "incumbent", "candidate", "diff", "ci_low", "ci_high", "n")}
                       for g in verdict["gates"]},
        "verdict": verdict["decision"],
        "promotion": cycle["promotion"],
        "evidence": evidence,
    }
    return entry, outs[MODEL_OUT]


def training_record(train: dict[str, Any]) -> dict[str, Any]:
    """The method (a recipe's chain) and its main settings; a recipe's per step."""
    from rlops.train import methods

    keys = ("beta", "learning_rate", "max_steps")
    steps = methods.steps(train)
    if len(steps) == 1:
        return {"method": train["method"], **{k: train[k] for k in keys if k in train}}
    return {"method": train["method"], "steps": [{"method": s["method"], **{k: s[k] for k in keys if k in s}}
                                                 for s in steps]}


def trained_on(params: dict[str, Any], outs: dict[str, Any]) -> dict[str, Any]:
    """{"sets": {set: md5}} of every extract set the method (or a recipe step) read, from dvc.lock."""
    from rlops.train import methods

    sets = {}
    for step in methods.steps(params["train"]):
        for name, path in methods.input_files(methods.get(step["method"]), params).items():
            if path in outs:
                sets[name] = outs[path]["md5"]
    return {"sets": dict(sorted(sets.items()))} if sets else {}


def moved(current: manifest.Manifest, version: str, promotion: dict[str, Any]) -> manifest.Manifest:
    mode = promotion["mode"]
    if mode == "replace":
        return manifest.Manifest(current.policy, version, current.shadow, current.canary, current.canary_fraction)
    if mode == "shadow":
        return manifest.Manifest(current.policy, current.production, version, current.canary, current.canary_fraction)
    return manifest.Manifest(current.policy, current.production, current.shadow, version, float(promotion["fraction"]))


def pending_events(entries: list[ledger.Entry], entry: dict[str, Any], who: str, ts: str) -> list[ledger.Entry]:
    policy, version = entry["policy"], entry["version"]
    subject = {"name": f"{policy}@{version}", "digest": "md5:" + entry["model"]["md5"]}
    ev = entry["evidence"]
    specs = [
        ("proposed", [subject, {"name": "dataset", "digest": "md5:" + entry["data"]["pairs"]},
                      {"name": f"{policy}@{entry['parent']}", "digest": "parent"}],
         {p: ev[p] for p in (entry["spec"]["path"], "params.yaml", "dvc.lock") if p in ev},
         {"cycle": entry["cycle"], "parent": entry["parent"], "rationale": entry["rationale"],
          "promotion": entry["promotion"]}),
        ("evaluated", [subject], {p: d for p, d in ev.items() if p.startswith(layout.EVALUATE + "/")},
         {"metrics": {m: {"incumbent": g["incumbent"], "candidate": g["candidate"]} for m, g in entry["evaluation"].items()}}),
        ("gate_decided", [subject], {p: ev[p] for p in (VERDICT, layout.REPORT) if p in ev},
         {"decision": entry["verdict"], "gates": {m: g["passed"] for m, g in entry["evaluation"].items()}}),
    ]
    out: list[ledger.Entry] = []
    for name, subjects, evidence, data in specs:
        out.append(ledger.make_event(entries + out, name, policy=policy, actor=who, subjects=subjects,
                                     evidence=evidence, data=data, ts=ts))
    return out


def write_proposal(root: Path, entry: dict[str, Any], model_out: dict[str, Any], events: list[ledger.Entry]) -> manifest.Manifest:
    """Write the registry entry, model.dvc, the moved manifest and the pending events; return the manifest before."""
    policy, version = entry["policy"], entry["version"]
    vdir = root / versions.version_dir(policy, version)
    vdir.mkdir(parents=True, exist_ok=True)
    (vdir / "version.yaml").write_text(f"# {policy}@{version}, registered by `rlops propose`; do not edit.\n"
                                       + yaml.safe_dump(entry, sort_keys=False, allow_unicode=True), encoding="utf-8")
    (vdir / "model.dvc").write_text(versions.dvc_file_text(model_out), encoding="utf-8")
    (vdir / ".gitignore").write_text("/model\n", encoding="utf-8")
    current = manifest.load(root, policy)
    (root / "deployments").mkdir(exist_ok=True)
    (root / manifest.manifest_path(policy)).write_text(moved(current, version, entry["promotion"]).text(), encoding="utf-8")
    ledger.append(root, events)
    return current


def commit_message(title: str, body: str, trailers: dict[str, str]) -> str:
    return f"{title}\n\n{body}\n\n" + "".join(f"{k}: {v}\n" for k, v in trailers.items())


def open_pr(root: Path, branch: str, base: str, title: str, body_file: Path, remote: str, push: bool) -> list[str]:
    """Push and open the PR with `gh` when it is there and logged in; otherwise return the commands to run."""
    has_remote = bool(git(root, "remote", "get-url", remote, check=False).strip())
    gh = shutil.which("gh")
    gh_ready = gh is not None and subprocess.run([gh, "auth", "status"], cwd=root, capture_output=True).returncode == 0
    push_cmd = ["git", "push", "-u", remote, branch]
    pr_cmd = ["gh", "pr", "create", "--base", base, "--head", branch, "--title", title, "--body-file", str(body_file)]
    if push and has_remote and gh_ready:
        git(root, *push_cmd[1:])
        subprocess.run(pr_cmd, cwd=root, check=True)
        return []
    import shlex

    return [shlex.join(push_cmd), shlex.join(pr_cmd)]


def propose(root: Path, *, remote: str = "origin", push: bool = True) -> Proposal:
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    reasons = preflight(root, params)
    if reasons:
        raise Refused(reasons, hint="fix the first reason; `rlops propose` changes nothing until all hold")
    cycle = params["cycle"]
    policy = cycle["policy"]
    spec = params["plan"]["spec"]
    branch = f"cycle/{Path(spec).stem}"
    if rev(root, f"refs/heads/{branch}"):
        raise RlopsError(f"the branch {branch} exists already", hint=f"delete it (`git branch -D {branch}`) to propose again")
    base = git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    who, ts = actor(root), ledger.now()
    version = versions.next_version(root, policy)
    taken = versions.taken_elsewhere(root, policy, version)
    if taken:  # write-once: a name registered anywhere (a tag, another branch's merge) is never proposed again
        raise Refused([(EXIT_STALE_PARENT, f"{policy}@{version} is registered already ({taken}): this checkout is "
                                           f"behind; rebase on the default branch and re-run the cycle")])
    entry, model_out = registry_entry(root, params, version, who, ts)
    entries, problems = ledger.read(root)
    if problems:
        raise RlopsError("audit/ledger.jsonl is damaged: " + "; ".join(map(str, problems[:3])),
                         hint="run `rlops audit verify`; restore the ledger from the default branch")
    events = pending_events(entries, entry, who, ts)

    git(root, "checkout", "-q", "-b", branch)
    current = write_proposal(root, entry, model_out, events)

    mode = cycle["promotion"]["mode"]
    where = {"replace": "production", "shadow": "shadow", "canary": f"canary ({cycle['promotion'].get('fraction')})"}[mode]
    title = f"{policy}@{version}: cycle {cycle['number']:04d} to {where}"
    report = (root / layout.REPORT).read_text(encoding="utf-8")
    body = (f"Registers `{policy}@{version}` (parent `{entry['parent']}`, model md5 `{entry['model']['md5']}`) and moves "
            f"`{manifest.manifest_path(policy)}` {where}: `{current.stages().get(where.split(' ')[0], 'none')}` -> "
            f"`{version}`.\nMerging this pull request with a signed merge commit promotes it; `rlops promote` checks "
            f"the signature, the evidence, the parent and the approvals first.\n\n{report}")
    files = [spec, *[p for p in evidence_paths(root) if (root / p).exists()], versions.version_dir(policy, version),
             manifest.manifest_path(policy), ledger.LEDGER]
    trailers = {"Rlops-Policy": policy, "Rlops-Version": version, "Rlops-Cycle": str(cycle["number"]),
                "Rlops-Ledger": f"seq={events[-1].seq} {events[-1].hash}"}
    return commit_proposal(root, files, version, branch, base, title, "Proposed by `rlops propose`; the pull request "
                           "carries the gate report.", trailers, body, Path(spec).stem, remote, push)


def commit_proposal(root: Path, files: list[str], version: str, branch: str, base: str, title: str, message: str,
                    trailers: dict[str, str], body: str, body_name: str, remote: str, push: bool) -> Proposal:
    """Commit exactly `files` on the proposal branch (nothing else that is staged), write the pull request's body
    under .git/rlops/ and open it (or say how): shared by propose, rollback and trust propose."""
    git(root, "add", "--", *files)
    git(root, "commit", "-q", "-F", "-", "--", *files, input=commit_message(title, message, trailers).encode())
    commit = git(root, "rev-parse", "HEAD").strip()
    body_file = Path(git(root, "rev-parse", "--absolute-git-dir").strip()) / "rlops" / f"{body_name}.pr.md"
    body_file.parent.mkdir(parents=True, exist_ok=True)
    body_file.write_text(body, encoding="utf-8")
    steps = open_pr(root, branch, base, title, body_file, remote, push)
    return Proposal(version, branch, commit, title, body_file, steps, base)
