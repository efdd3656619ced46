"""`rlops audit genesis`: record where a policy's history starts, as the first line of the ledger.

The genesis event holds the SHA-256 of every trust root (pinned signers, people, the approvals rule) and of the
deployment manifest, in the commit that appends it. `rlops audit verify` checks history from there: what came
before is the set-up. Before the first promotion, genesis may be written again (pinning the first signers); once a
promotion is recorded the roots change only through `rlops trust propose`. A genesis after one that pinned signers
must be a commit signed by one of them. The first genesis is trust on first use: check its signers out of band.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from rlops.audit import ledger, trust
from rlops.errors import EXIT_INVALID, InvalidInput, Refused, RlopsError
from rlops.gitio import BlobReader, git, rev
from rlops.registry import manifest


def roots_in_tree(root: Path) -> dict[str, str]:
    """roots_at for the working tree (what the genesis commit will hold)."""
    out = {}
    for path in trust.ROOT_FILES:
        f = root / path
        out[path] = trust.sha256(f.read_bytes()) if f.is_file() else "absent"
    text = (root / trust.POLICY).read_text(encoding="utf-8") if (root / trust.POLICY).is_file() else None
    import json

    part = json.dumps(trust.policy_part(text), sort_keys=True, separators=(",", ":"))
    out[f"{trust.POLICY}#{'+'.join(trust.POLICY_KEYS)}"] = trust.sha256(part.encode())
    return out


def genesis(root: Path, *, actor: str = "") -> tuple[ledger.Entry, str]:
    """Append a genesis event recording the trust roots and the manifest, and commit it with them; returns the
    event and the commit. Refused once a promotion is recorded."""
    policy_file = root / trust.POLICY
    if not policy_file.is_file():
        raise InvalidInput(f"{trust.POLICY} not found", hint="run rlops from the repository root")
    policy = (yaml.safe_load(policy_file.read_text(encoding="utf-8")) or {}).get("policy")
    if not isinstance(policy, str) or not policy:
        raise Refused([(EXIT_INVALID, f"{trust.POLICY}: policy: must name the policy")])
    entries, problems = ledger.read(root)
    if problems:
        raise Refused([(EXIT_INVALID, f"{ledger.LEDGER} is damaged: " + "; ".join(map(str, problems[:3])))],
                      hint="run `rlops audit verify`; restore the ledger from the default branch")
    later = [e for e in entries if e.event["event"] != "genesis"]
    if later:
        raise Refused([(EXIT_INVALID, f"{ledger.LEDGER} line {later[0].seq} records a {later[0].event['event']} "
                                      f"event: the history has begun, genesis cannot be written again")],
                      hint="change pinned signers, people or the approvals rule with `rlops trust propose`")
    mpath = manifest.manifest_path(policy)
    current = manifest.load(root, policy)
    if not (root / mpath).is_file():
        (root / manifest.DEPLOYMENTS).mkdir(exist_ok=True)
        (root / mpath).write_text(current.text(), encoding="utf-8")
    roots = roots_in_tree(root)
    event = ledger.make_event(entries, "genesis", policy=policy, actor=actor or "rlops audit genesis",
                              subjects=[{"name": path, "digest": digest} for path, digest in roots.items()],
                              evidence={mpath: trust.sha256((root / mpath).read_bytes())},
                              data={"production": current.production, "roots": roots})
    head = rev(root, "HEAD")
    paths = [p for p in (*trust.ROOT_PATHS, mpath) if (root / p).is_file()] + [ledger.LEDGER]
    ledger.append(root, [event])
    try:
        git(root, "add", "--", *paths)
        signing = ["-S"] if git(root, "config", "user.signingkey", check=False).strip() else []
        message = (f"rlops audit genesis: {policy}'s trust roots and manifest\n\n"
                   f"Rlops-Ledger: seq={event.seq} {event.hash}\n")
        git(root, "commit", "-q", *signing, "-F", "-", "--", *paths, input=message.encode())
    except RlopsError:
        text = "".join(e.line + "\n" for e in entries)
        (root / ledger.LEDGER).write_text(text, encoding="utf-8") if entries else (root / ledger.LEDGER).unlink()
        if head:
            git(root, "reset", "-q", "--", ledger.LEDGER, check=False)
        raise
    return event, git(root, "rev-parse", "HEAD").strip()


def check(blobs: BlobReader, commit: str, event: dict, policy: str) -> list[str]:
    """What differs between a genesis event and the commit that appended it."""
    problems = []
    roots = trust.roots_at(blobs, commit)
    recorded = (event.get("data") or {}).get("roots") or {}
    for path in sorted(set(roots) | set(recorded)):
        if roots.get(path) != recorded.get(path):
            problems.append(f"genesis (line {event['seq']}) records {path} as {recorded.get(path, 'nothing')}, the "
                            f"commit holds {roots.get(path, 'nothing')}")
    mpath = manifest.manifest_path(policy)
    data = blobs.read(commit, mpath)
    if (event.get("evidence") or {}).get(mpath) != (trust.sha256(data) if data is not None else None):
        problems.append(f"genesis (line {event['seq']}) records another {mpath} than the commit holds")
    return problems
