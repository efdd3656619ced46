"""`rlops rollback [--to VERSION]`: propose putting an earlier version back in production.

A rollback is a proposal like any other: a branch whose one commit points the manifest back and appends a
`rolled_back` event; its signed merge, checked by `rlops promote`, is what puts the old version back.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from rlops.audit import ledger
from rlops.errors import EXIT_AUDIT, InvalidInput, Refused
from rlops.gitio import git, rev, status_paths
from rlops.promotion.propose import Proposal, actor, commit_proposal, dvc_leftover, dvc_outputs
from rlops.registry import manifest, versions


def _dvc_outputs(root: Path) -> list[str]:
    """DVC's outputs as params.yaml resolves them; none when there is no readable params.yaml."""
    try:
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
        return dvc_outputs(root, params) if isinstance(params, dict) else []
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return []


def _clean_base(root: Path, branch: str, allowed: tuple[str, ...] = ()) -> str:
    """The branch a rollback starts from, once the working tree holds no change of the user's (DVC's own files and
    `allowed` prefixes aside) and `branch` does not exist yet."""
    dirty = [p for p in status_paths(root) if not dvc_leftover(p, _dvc_outputs(root)) and not p.startswith(allowed)]
    if dirty:
        raise InvalidInput("the working tree has uncommitted changes: " + ", ".join(dirty[:10]),
                           hint="commit or stash them; a rollback branch carries only the manifest and the ledger")
    if rev(root, f"refs/heads/{branch}"):
        raise InvalidInput(f"the branch {branch} exists already", hint=f"delete it (`git branch -D {branch}`) first")
    return git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()


def previous_production(entries: list[ledger.Entry], current: str) -> str | None:
    """The version production served before `current`, from the ledger's promotions."""
    for e in reversed(entries):
        d = e.event["data"]
        if e.event["event"] == "promoted" and d.get("version") == current and d.get("from"):
            return d["from"]
    return None


def rollback(root: Path, to: str | None = None, reason: str = "", *, remote: str = "origin", push: bool = True) -> Proposal:
    policy = yaml.safe_load((root / "specs/policy.yaml").read_text(encoding="utf-8"))["policy"]
    current = manifest.load(root, policy)
    entries, problems = ledger.read(root)
    if problems:
        raise Refused([(EXIT_AUDIT, "audit/ledger.jsonl is damaged: " + "; ".join(map(str, problems[:3])))],
                      hint="run `rlops audit verify`")
    target = to.split("@", 1)[-1] if to else previous_production(entries, current.production)
    if target is None:
        raise InvalidInput(f"no earlier production version of {policy} is recorded in the ledger",
                         hint="name one with --to vN")
    if target != "base" and not versions.VERSION_RE.match(target):
        raise InvalidInput(f"--to: {target!r} is not a version name (base, v1, v2, ...)")
    if target == current.production:
        raise InvalidInput(f"{policy}@{target} serves production already")
    if target != "base" and not (root / versions.version_file(policy, target)).is_file():
        raise InvalidInput(f"{policy}@{target} is not registered",
                         hint=f"registered versions: {', '.join(versions.registered(root, policy)) or 'none'}")
    branch = f"rollback/{policy}-{current.production}-to-{target}"
    base = _clean_base(root, branch)
    who = actor(root)
    event = ledger.make_event(entries, "rolled_back", policy=policy, actor=who,
                              subjects=[{"name": f"{policy}@{target}", "digest": "production"}],
                              data={"from": current.production, "to": target, "reason": reason})
    git(root, "checkout", "-q", "-b", branch)
    new = manifest.Manifest(policy, target, current.shadow, current.canary, current.canary_fraction)
    (root / "deployments").mkdir(exist_ok=True)
    (root / manifest.manifest_path(policy)).write_text(new.text(), encoding="utf-8")
    ledger.append(root, [event])
    title = f"{policy}: roll production back from {current.production} to {target}"
    trailers = {"Rlops-Policy": policy, "Rlops-Version": target, "Rlops-Ledger": f"seq={event.seq} {event.hash}"}
    body = (f"Points `{manifest.manifest_path(policy)}` production back from `{current.production}` to `{target}`.\n\n"
            f"Reason: {reason or '(none given)'}\n\nA signed merge of this pull request, checked by `rlops promote`, "
            f"puts `{target}` back in production.\n")
    return commit_proposal(root, [manifest.manifest_path(policy), ledger.LEDGER], target, branch, base, title,
                           reason or "Proposed by `rlops rollback`.", trailers, body, branch.replace("/", "-"), remote,
                           push)


def end_canary(root: Path, version: str, reason: str = "", *, remote: str = "origin", push: bool = True) -> Proposal:
    """Propose taking canary `version` out of the manifest (production and shadow stay): a rollback whose
    `rolled_back` event names the canary (`data.canary`) and leaves production where it is. `rlops monitor
    --rollback` opens it when the canary is significantly worse; its signed merge is checked by `rlops promote`
    like any rollback, and records `canary_ended`."""
    policy = yaml.safe_load((root / "specs/policy.yaml").read_text(encoding="utf-8"))["policy"]
    current = manifest.load(root, policy)
    if current.canary != version:
        raise InvalidInput(f"{policy}@{version} is not the canary in {manifest.manifest_path(policy)} "
                           f"(canary: {current.canary or 'none'})", hint="nothing to take out")
    entries, problems = ledger.read(root)
    if problems:
        raise Refused([(EXIT_AUDIT, "audit/ledger.jsonl is damaged: " + "; ".join(map(str, problems[:3])))],
                      hint="run `rlops audit verify`")
    branch = f"rollback/{policy}-canary-{version}"
    base = _clean_base(root, branch, allowed=("artifacts/monitor/",))  # the monitor's own report may be new
    event = ledger.make_event(entries, "rolled_back", policy=policy, actor=actor(root),
                              subjects=[{"name": f"{policy}@{version}", "digest": "canary"}],
                              data={"from": current.production, "to": current.production, "canary": version,
                                    "reason": reason})
    git(root, "checkout", "-q", "-b", branch)
    new = manifest.Manifest(policy, current.production, current.shadow, None, None)
    (root / manifest.manifest_path(policy)).write_text(new.text(), encoding="utf-8")
    ledger.append(root, [event])
    title = f"{policy}: take canary {version} out (production stays {current.production})"
    trailers = {"Rlops-Policy": policy, "Rlops-Version": current.production,
                "Rlops-Ledger": f"seq={event.seq} {event.hash}"}
    body = (f"Removes the canary `{version}` from `{manifest.manifest_path(policy)}`; production stays "
            f"`{current.production}`.\n\nReason: {reason or '(none given)'}\n\nA signed merge of this pull request, "
            f"checked by `rlops promote`, ends the canary.\n")
    return commit_proposal(root, [manifest.manifest_path(policy), ledger.LEDGER], current.production, branch, base,
                           title, reason or "Proposed by `rlops monitor --rollback`.", trailers, body,
                           branch.replace("/", "-"), remote, push)
