"""`rlops promote`: after a merge on the default branch, verify it and record the promotion.

The merge is the promotion event; this command refuses to record it unless the merge commit is signed by a pinned
signer, its evidence matches dvc.lock, the registry entry and the ledger, the version's parent is what served
production on the merge's first parent, and the approvals that specs/policy.yaml requires are recorded. Then it
appends `approved` and `promoted` to the ledger in a commit and writes GTO tags (`support-agent@v2.0.0`,
`support-agent#prod#N`). `rlops audit verify` re-runs the same checks over the whole history.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from rlops.audit import ledger, signatures
from rlops.errors import (EXIT_APPROVALS, EXIT_EVIDENCE, EXIT_INVALID, EXIT_STALE_PARENT, EXIT_UNSIGNED, Refused,
                          RlopsError)
from rlops.gitio import BlobReader, git, load_yaml, parents, rev
from rlops.registry import evidence, manifest, tags, versions
from rlops.registry.propose import actor, moved

PROPOSAL_EVENTS = {"proposed", "evaluated", "gate_decided", "rolled_back"}
TRAILER = re.compile(r"^(?P<key>[A-Za-z-]+):[ \t]*(?P<value>.+)$", re.M)


class BadCommit(RlopsError):
    """The COMMIT argument names nothing `rlops promote` can take: a usage error (exit 2), not a failure."""

    exit_code = EXIT_INVALID


MERGES_HINT = ("pass the merge commit that landed the pull request (`git log --first-parent --merges --oneline`), "
               "or no argument to promote every merge not recorded yet")


def merge_commit(root: Path, commit: str) -> str:
    """The full id of `commit`, which must be on the checked-out branch's first-parent history."""
    sha = rev(root, commit)
    if sha is None:
        raise BadCommit(f"'{commit}' names no commit in this repository", hint=MERGES_HINT)
    if sha not in git(root, "rev-list", "--first-parent", "HEAD").split():
        here = git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
        what = "the branch" if rev(root, f"refs/heads/{commit}") else "the commit"
        raise BadCommit(f"{what} '{commit}' is not on the first-parent history of {here}: `rlops promote` takes a "
                        f"merge commit on the branch it runs on, after the pull request is merged",
                        hint="merge the pull request first, then " + MERGES_HINT)
    return sha


@dataclass(frozen=True)
class Proposal:
    """What a merge brings in: a new version (promotion) or a return to an older one (rollback)."""

    kind: str  # promotion | rollback
    policy: str
    version: str
    pending: list[dict[str, Any]]  # the ledger events the pull request appended


@dataclass(frozen=True)
class Promotion:
    version: str
    stage: str
    merge: str
    record_commit: str
    tags: list[str]


def trailers(message: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in TRAILER.finditer(message):
        out.setdefault(m["key"].lower(), []).append(m["value"].strip())
    return out


def policy_at(blobs: BlobReader, commit: str) -> dict[str, Any]:
    text = blobs.text(commit, "specs/policy.yaml")
    if text is None:
        raise RlopsError(f"specs/policy.yaml is missing at {commit[:12]}")
    return load_yaml(text)


def proposal_of(pending: list[dict[str, Any]], policy: str) -> Proposal | None:
    """The proposal a run of pending ledger events describes, or None when they hold none."""
    names = [e["event"] for e in pending]
    if "gate_decided" in names:
        e = pending[names.index("gate_decided")]
        version = next(s["name"].split("@", 1)[1] for s in e["subjects"] if s["name"].startswith(policy + "@"))
        return Proposal("promotion", policy, version, pending)
    if "rolled_back" in names:
        return Proposal("rollback", policy, pending[names.index("rolled_back")]["data"]["to"], pending)
    return None


def check_proposal(blobs: BlobReader, merge: str, first: str, prop: Proposal, pinned: signatures.Pinned,
                   sig: signatures.Signature) -> list[tuple[int, str]]:
    """Signature, evidence and parent checks of one merge (shared with `rlops audit verify`)."""
    reasons: list[tuple[int, str]] = []
    problem = signatures.problem_with(sig, pinned)
    if problem:
        reasons.append((EXIT_UNSIGNED, f"the merge commit {merge[:12]} {problem}; a promotion needs a signed merge "
                                       f"commit (`git merge --no-ff -S`, or GitHub's merge button), not a rebase or squash"))
    path = manifest.manifest_path(prop.policy)
    old = manifest.Manifest.parse(blobs.text(first, path), prop.policy, path)
    new = manifest.Manifest.parse(blobs.text(merge, path), prop.policy, path)
    if prop.kind == "promotion":
        entry_text = blobs.text(merge, versions.version_file(prop.policy, prop.version))
        if entry_text is None:
            return reasons + [(EXIT_EVIDENCE, f"{versions.version_file(prop.policy, prop.version)} is not in the merge")]
        entry = load_yaml(entry_text)
        if blobs.read(first, versions.version_file(prop.policy, prop.version)) is not None:
            reasons.append((EXIT_STALE_PARENT, f"{prop.policy}@{prop.version} was already registered by an earlier "
                                               f"promotion: this proposal is stale; rebase on the default branch and "
                                               f"re-run the cycle (`rlops plan`, `dvc repro`, `rlops propose`)"))
        elif entry["parent"] != old.production:
            reasons.append((EXIT_STALE_PARENT, f"{prop.policy}@{prop.version} was trained from {entry['parent']}, but "
                                               f"{old.production} served production when it was merged: a stale "
                                               f"proposal; rebase and re-run the cycle from `parent: production`"))
        reasons += [(EXIT_EVIDENCE, p) for p in evidence.check(blobs, merge, entry, prop.pending)]
        if new != moved(old, prop.version, entry["promotion"]):
            reasons.append((EXIT_EVIDENCE, f"{path} does not move as the proposal says ({entry['promotion']['mode']} "
                                           f"{prop.version}); only `rlops propose` and `rlops rollback` change it"))
    else:
        data = next(e["data"] for e in prop.pending if e["event"] == "rolled_back")
        if data["from"] != old.production:
            reasons.append((EXIT_STALE_PARENT, f"the rollback was proposed from {data['from']}, but {old.production} "
                                               f"served production when it was merged; propose it again"))
        if data["to"] != "base" and blobs.read(first, versions.version_file(prop.policy, data["to"])) is None:
            reasons.append((EXIT_EVIDENCE, f"rollback target {prop.policy}@{data['to']} is not a registered version"))
        if new.production != data["to"]:
            reasons.append((EXIT_EVIDENCE, f"{path} names {new.production} in production, the rollback says {data['to']}"))
    return reasons


def count_approvals(message: str, approvals_file: Path | None) -> list[str]:
    """Distinct approvers: `Approved-by:` trailers of the merge commit, plus APPROVED reviews in the CI's file."""
    who = set(trailers(message).get("approved-by", []))
    if approvals_file is not None:
        try:
            data = json.loads(approvals_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RlopsError(f"{approvals_file}: cannot read the approvals file ({e})",
                             hint='expected {"approvals": [{"login": "...", "state": "APPROVED"}]} or GitHub\'s review list')
        reviews = data.get("approvals", []) if isinstance(data, dict) else data
        latest: dict[str, str] = {}
        for r in reviews:  # a later review by the same person (changes requested, dismissed) replaces an approval
            login = r.get("login") or (r.get("user") or {}).get("login")
            state = str(r.get("state", "")).upper()
            if login and state not in ("COMMENTED", "PENDING"):  # as on GitHub, a comment leaves an approval standing
                latest[login] = state
        who |= {login for login, state in latest.items() if state == "APPROVED"}
    return sorted(who)


def inspect_merge(root: Path, blobs: BlobReader, commit: str) -> tuple[str | None, Proposal | None, list[str], list[str]]:
    """(first parent, the proposal the commit lands, the ledger lines at the commit, ledger problems)."""
    ps = parents(root, commit)
    if not ps:
        return None, None, [], []
    first = ps[0]
    policy = policy_at(blobs, first)["policy"]
    old_text = blobs.text(first, ledger.LEDGER) or ""
    new_text = blobs.text(commit, ledger.LEDGER) or ""
    entries, problems = ledger.parse(new_text)
    broken = [str(p) for p in problems]
    if not new_text.startswith(old_text):
        broken.insert(0, f"{ledger.LEDGER}: this commit changes past lines; the ledger is append-only")
    old_lines = set(old_text.splitlines())
    pending = [e.event for e in entries if e.line not in old_lines and e.event.get("event") in PROPOSAL_EVENTS]
    return first, proposal_of(pending, policy), [e.line for e in entries], broken


def unrecorded(root: Path) -> list[str]:
    """Commits on HEAD's first-parent history, after the last recorded promotion, that change the ledger, oldest
    first: the merges still to promote (two merges can land before CI promotes the first)."""
    entries, _ = ledger.read(root)
    recorded = {e.event["data"].get("merge") for e in entries if e.event["event"] == "approved"}
    out = []
    log = git(root, "log", "--first-parent", "--diff-merges=first-parent", "--name-only", "--format=%x01%H", "HEAD")
    for chunk in log.split("\x01")[1:]:
        sha, _, names = chunk.partition("\n")
        if sha in recorded:
            break
        if ledger.LEDGER in names.split():
            out.append(sha)
    return out[::-1]


def promote_pending(root: Path, approvals_file: Path | None = None) -> list[Promotion]:
    """Promote every unrecorded merge on HEAD's first-parent history, in order; refuse at the first that fails."""
    done = []
    for sha in unrecorded(root):
        result = promote(root, sha, approvals_file)
        if result is not None:
            done.append(result)
    return done


def promote(root: Path, commit: str = "HEAD", approvals_file: Path | None = None) -> Promotion | None:
    """Check the merge `commit` (HEAD, or a commit on HEAD's first-parent history) and record its promotion on
    top of HEAD; None when it lands no proposal."""
    sha = merge_commit(root, commit)
    with BlobReader(root) as blobs:
        first, prop, lines, broken = inspect_merge(root, blobs, sha)
        if prop is None:
            if broken:
                raise Refused([(EXIT_EVIDENCE, "; ".join(broken))], hint="restore the ledger's past lines from the first parent")
            return None
        ps = parents(root, sha)
        if len(ps) < 2:
            raise Refused([(EXIT_UNSIGNED, f"{sha[:12]} lands a proposal without a merge commit (a rebase, squash or "
                                           f"direct push): the signed merge commit is the promotion event")],
                          hint="revert it and merge the pull request with a merge commit")
        policy = policy_at(blobs, first)
        pinned = signatures.pinned_at(blobs, first)
        signer = signatures.signature(root, sha, pinned, blobs=blobs)
        reasons = check_proposal(blobs, sha, first, prop, pinned, signer)
        reasons += [(EXIT_EVIDENCE, b) for b in broken]
        anchor = trailers(blobs.message(ps[1])).get("rlops-ledger", [""])[-1]
        last = prop.pending[-1]
        if anchor != f"seq={last['seq']} {ledger.line_hash(lines[last['seq'] - 1])}":
            reasons.append((EXIT_EVIDENCE, f"audit/ledger.jsonl line {last['seq']} differs from what the proposal commit "
                                           f"{ps[1][:12]} recorded (Rlops-Ledger: {anchor or 'missing'})"))
        approvers = count_approvals(blobs.message(sha), approvals_file)
        required = int((policy.get("approvals") or {}).get("required", 1))
        if len(approvers) < required:
            reasons.append((EXIT_APPROVALS, f"{len(approvers)} approval(s) recorded ({', '.join(approvers) or 'none'}), "
                                            f"specs/policy.yaml requires {required}; add `Approved-by:` trailers to "
                                            f"the merge commit or pass the forge's reviews with --approvals"))
        if reasons:
            # trust first, then the root cause (a stale parent also garbles the evidence), then the rest
            order = [EXIT_UNSIGNED, EXIT_STALE_PARENT, EXIT_EVIDENCE, EXIT_APPROVALS]
            reasons.sort(key=lambda r: order.index(r[0]) if r[0] in order else len(order))
            raise Refused(reasons, hint="nothing was recorded; fix the merge (revert it and merge a corrected proposal)")
        path = manifest.manifest_path(prop.policy)
        old = manifest.Manifest.parse(blobs.text(first, path), prop.policy, path)
        new = manifest.Manifest.parse(blobs.text(sha, path), prop.policy, path)
    entries, _ = ledger.read(root)
    if any(e.event["event"] == "approved" and e.event["data"].get("merge") == sha for e in entries):
        raise RlopsError(f"{sha[:12]} is promoted already (audit/ledger.jsonl records it)", hint="nothing to do")
    who, ts = actor(root), ledger.now()
    first_seq = prop.pending[0]["seq"]
    events = [ledger.make_event(entries, "approved", policy=prop.policy, actor=who, ts=ts,
                                subjects=[{"name": f"{prop.policy}@{prop.version}", "digest": f"git:{sha}"}],
                                data={"merge": sha, "approvers": approvers, "required": required,
                                      "signer": signer.signer, "fingerprint": signer.fingerprint,
                                      "proposal_lines": [first_seq, prop.pending[-1]["seq"]]})]
    changed = [(stage, old.stages().get(stage), v) for stage, v in new.stages().items() if old.stages().get(stage) != v]
    changed += [(stage, v, None) for stage, v in old.stages().items() if stage not in new.stages()]
    for stage, before, after in changed:
        if stage != "production" and before:
            events.append(ledger.make_event(entries + events, f"{stage}_ended", policy=prop.policy, actor=who, ts=ts,
                                            subjects=[{"name": f"{prop.policy}@{before}", "digest": "-"}],
                                            data={"merge": sha, "version": before}))
        if after:
            name = "promoted" if stage == "production" else f"{stage}_started"
            data = {"merge": sha, "stage": stage, "version": after, "from": before, "via": prop.kind}
            if stage == "canary":
                data["fraction"] = new.canary_fraction
            events.append(ledger.make_event(entries + events, name, policy=prop.policy, actor=who, ts=ts,
                                            subjects=[{"name": f"{prop.policy}@{after}", "digest": f"git:{sha}"}], data=data))
    ledger.append(root, events)
    last = events[-1]
    git(root, "add", ledger.LEDGER)
    title = f"rlops promote: {prop.policy}@{prop.version} ({prop.kind}, merge {sha[:12]})"
    git(root, "commit", "-q", "-F", "-", input=(f"{title}\n\nRlops-Promotes: {sha}\n"
                                                  f"Rlops-Ledger: seq={last.seq} {last.hash}\n").encode())
    record = git(root, "rev-parse", "HEAD").strip()
    anchor = f"Rlops-Ledger: seq={last.seq} {last.hash}\nRlops-Merge: {sha}\nSigner: {signer.who}\n" \
             f"Approved-by: {', '.join(approvers)}\n"
    made = []
    if prop.kind == "promotion":
        made.append(tags.register(root, prop.policy, prop.version, sha, f"{title}\n\n{anchor}"))
    for stage, _, after in changed:
        if after:
            # GTO finds an assignment's version by the commit its tag points at: a rollback points at the old version's
            target = sha if prop.kind == "promotion" else (tags.registration_commit(root, prop.policy, after) or sha)
            made.append(tags.assign(root, prop.policy, stage, target, f"{title}\n\n{anchor}"))
    stage = next((s for s, _, a in changed if a == prop.version), "production")
    return Promotion(prop.version, stage, sha, record, made)
