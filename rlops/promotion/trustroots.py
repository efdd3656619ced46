"""`rlops trust propose`: change pinned signers, people or the approvals rule through a merge of its own.

Edit the trust roots in the working tree (audit/allowed_signers, audit/trusted_gpg_keys, audit/people.yaml, the
`approvals` of specs/policy.yaml), then run this: a branch whose one commit carries exactly those edits and a
`trust_changed` ledger event naming the new roots' digests. Its merge must be signed by a signer pinned *before* the
change and approved as the policy *before* the change requires; `rlops promote` checks both and records it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from rlops.audit import ledger, trust
from rlops.audit.genesis import roots_in_tree
from rlops.errors import EXIT_AUDIT, EXIT_INVALID, InvalidInput, Refused
from rlops.gitio import BlobReader, git, rev, status_paths
from rlops.promotion.propose import Proposal, actor, commit_proposal


def propose_trust(root: Path, reason: str, *, remote: str = "origin", push: bool = True) -> Proposal:
    policy = (yaml.safe_load((root / trust.POLICY).read_text(encoding="utf-8")) or {}).get("policy")
    dirty = status_paths(root)
    others = [p for p in dirty if p not in trust.ROOT_PATHS]
    if others or not dirty:
        raise Refused([(EXIT_INVALID, ("the working tree holds changes that are not trust roots: " + ", ".join(others[:10]))
                        if others else "no trust root is changed in the working tree")],
                      hint=f"edit only {', '.join(trust.ROOT_PATHS)}; commit or stash anything else first")
    if not reason.strip():
        raise Refused([(EXIT_INVALID, "--reason: say why the trust roots change (it goes into the ledger)")])
    people = trust.parse_people((root / trust.PEOPLE).read_text(encoding="utf-8") if (root / trust.PEOPLE).is_file() else None)
    if people.problems:
        raise Refused([(EXIT_INVALID, p) for p in people.problems], hint="fix audit/people.yaml")
    entries, problems = ledger.read(root)
    if problems:
        raise Refused([(EXIT_AUDIT, "audit/ledger.jsonl is damaged: " + "; ".join(map(str, problems[:3])))],
                         hint="run `rlops audit verify`; restore the ledger from the default branch")
    with BlobReader(root) as blobs:
        before = trust.roots_at(blobs, "HEAD")
    after = roots_in_tree(root)
    branch = f"trust/{policy}-{len(entries) + 1}"
    if rev(root, f"refs/heads/{branch}"):
        raise InvalidInput(f"the branch {branch} exists already", hint=f"delete it (`git branch -D {branch}`) first")
    base = git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    changed = sorted(p for p in after if after[p] != before.get(p))
    event = ledger.make_event(entries, "trust_changed", policy=policy, actor=actor(root),
                              subjects=[{"name": p, "digest": after[p]} for p in changed],
                              data={"reason": reason, "before": before, "after": after})
    git(root, "checkout", "-q", "-b", branch)
    ledger.append(root, [event])
    title = f"{policy}: change trust roots ({', '.join(changed) or 'none'})"
    trailers = {"Rlops-Policy": policy, "Rlops-Ledger": f"seq={event.seq} {event.hash}"}
    body = (f"Changes the trust roots of `{policy}`: {', '.join(changed)}.\n\nReason: {reason}\n\nMerge with a merge "
            f"commit signed by a signer pinned before this change, approved as specs/policy.yaml requires today; "
            f"`rlops promote` records it.\n")
    return commit_proposal(root, [*dirty, ledger.LEDGER], "-", branch, base, title, reason, trailers, body,
                           branch.replace("/", "-"), remote, push)
