"""`rlops audit verify`: re-check a policy's whole history offline, from a clone.

It checks the ledger's hash chain; for every recorded promotion, the merge's signature against the signers pinned
on its first parent, the evidence against the git objects and dvc.lock of that merge, the parent, the approvals,
and that the proposal commit and the promotion tags anchor the ledger lines they confirm; that no commit on the
first-parent history moved a deployment without a recorded promotion; the lineage from the base model to
production; and that the manifest names the last promoted version. Linear in history length: one `git log`, one
`git cat-file --batch` and one `git for-each-ref` process, and a constant amount of reading per promotion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlops.audit import ledger, signatures
from rlops.gitio import BlobReader, git, rev
from rlops.registry import manifest
from rlops.registry.promote import check_proposal, policy_at, proposal_of, trailers


@dataclass(frozen=True)
class Break:
    commit: str
    where: str  # file[:line], or "" for the commit itself
    message: str

    def __str__(self) -> str:
        place = f"{self.commit[:12]} {self.where}".strip()
        return f"{place}: {self.message}"


@dataclass
class Result:
    policy: str
    head: str
    breaks: list[Break] = field(default_factory=list)
    promotions: int = 0
    production: str = "base"
    events: list[dict[str, Any]] = field(default_factory=list)


def first_parent_log(root: Path, head: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """sha -> parents and sha -> changed paths (against the first parent) along the first-parent history."""
    out = git(root, "log", "--first-parent", "--diff-merges=first-parent", "--name-only", "--no-renames",
              "--format=%x01%H %P", head)
    parents: dict[str, list[str]] = {}
    changed: dict[str, list[str]] = {}
    for chunk in out.split("\x01")[1:]:
        head_line, _, rest = chunk.partition("\n")
        shas = head_line.split()
        parents[shas[0]] = shas[1:]
        changed[shas[0]] = [p for p in rest.splitlines() if p]
    return parents, changed


def tag_messages(root: Path, policy: str) -> dict[str, str]:
    """This policy's GTO tags (their names hold '@' and '#', so list them all and filter) -> their messages."""
    out = git(root, "for-each-ref", "refs/tags", "--format=%(refname:short)%00%(contents)%01")
    tags = {}
    for chunk in out.split("\x01"):
        name, _, body = chunk.strip("\n").partition("\0")
        if name.startswith((f"{policy}@", f"{policy}#")):
            tags[name] = body
    return tags


def verify(root: Path, ref: str = "HEAD") -> Result:
    head = rev(root, ref)
    if head is None:
        raise ValueError(f"{ref} is not a commit")
    with BlobReader(root) as blobs:
        policy = policy_at(blobs, head)["policy"]
        result = Result(policy, head)
        brk = result.breaks.append
        text = blobs.text(head, ledger.LEDGER) or ""
        entries, problems = ledger.parse(text)
        for p in problems:
            brk(Break(head, f"{ledger.LEDGER}:{p.line}", (f"{p.field}: " if p.field else "") + p.message))
        events = [e.event for e in entries]
        result.events = events
        lines = [e.line for e in entries]
        parents, changed = first_parent_log(root, head)
        anchors = {line.strip() for body in tag_messages(root, policy).values() for line in body.splitlines()
                   if line.startswith("Rlops-Ledger:")}
        promoted_merges: set[str] = set()
        for i, ev in enumerate(events):
            if ev.get("event") != "approved":
                continue
            seq, merge = ev["seq"], ev["data"].get("merge", "")
            promoted_merges.add(merge)
            ps = parents.get(merge)
            if ps is None:
                brk(Break(head, f"{ledger.LEDGER}:{seq}", f"names merge {merge[:12]}, which is not on the first-parent "
                                                          f"history of {ref}"))
                continue
            if len(ps) < 2:
                brk(Break(merge, "", f"promoted by {ledger.LEDGER} line {seq} but not a merge commit"))
                continue
            lo, hi = ev["data"]["proposal_lines"]
            prop = proposal_of(events[lo - 1:hi], policy)
            if prop is None:
                brk(Break(merge, f"{ledger.LEDGER}:{seq}", f"lines {lo}-{hi} hold no proposal"))
                continue
            result.promotions += 1
            pinned = signatures.pinned_at(blobs, ps[0])
            sig = signatures.signature(root, merge, pinned, blobs=blobs)
            for _, msg in check_proposal(blobs, merge, ps[0], prop, pinned, sig):
                brk(Break(merge, "", msg))
            anchor = trailers(blobs.message(ps[1])).get("rlops-ledger", [""])[-1]
            if hi > len(lines) or anchor != f"seq={hi} {ledger.line_hash(lines[hi - 1])}":
                brk(Break(ps[1], f"{ledger.LEDGER}:{hi}", "differs from the line the proposal commit anchored "
                                                          f"(Rlops-Ledger: {anchor or 'missing'})"))
            required = int((policy_at(blobs, ps[0]).get("approvals") or {}).get("required", 1))
            if len(ev["data"].get("approvers", [])) < required:
                brk(Break(merge, f"{ledger.LEDGER}:{seq}", f"{len(ev['data'].get('approvers', []))} approval(s) "
                                                           f"recorded, {required} required"))
            # the last event of this promotion's batch is anchored in its tags
            j = i
            while j + 1 < len(events) and events[j + 1].get("data", {}).get("merge") == merge:
                j += 1
            last = f"Rlops-Ledger: seq={events[j]['seq']} {ledger.line_hash(lines[j])}"
            if last not in anchors:
                brk(Break(merge, f"{ledger.LEDGER}:{events[j]['seq']}", "no promotion tag anchors this line: the line "
                                                                        "was changed, or the tags are missing (git fetch --tags)"))
        # a deployment moved on the first-parent history without a recorded promotion
        mpath = manifest.manifest_path(policy)
        for sha, paths in changed.items():
            if mpath in paths and sha not in promoted_merges and parents[sha]:
                brk(Break(sha, mpath, "the deployment changed here, but no promotion of this commit is recorded: "
                                      "run `rlops promote` on it, or revert it"))
        # lineage: every production change starts from what production was
        production = "base"
        for ev in events:
            if ev.get("event") == "promoted":
                if ev["data"].get("from") != production:
                    brk(Break(ev["data"].get("merge", head), f"{ledger.LEDGER}:{ev['seq']}",
                              f"promotes {ev['data'].get('version')} from {ev['data'].get('from')}, but {production} "
                              f"was in production"))
                production = ev["data"].get("version", production)
        result.production = production
        current = manifest.Manifest.parse(blobs.text(head, mpath), policy, mpath)
        if current.production != production:
            brk(Break(head, mpath, f"names {current.production} in production, but the last promotion recorded is "
                                   f"{production}"))
    return result
