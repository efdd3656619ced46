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

from rlops.audit import ledger, signatures, trust
from rlops.audit.merges import (
    PendingProposal,
    check_proposal,
    inspect_merge,
    merge_approvals,
    roots_problem,
    trailers,
)
from rlops.errors import (
    EXIT_APPROVALS,
    EXIT_EVIDENCE,
    EXIT_INVALID,
    EXIT_STALE_PARENT,
    EXIT_UNSIGNED,
    InvalidInput,
    Refused,
    RlopsError,
)
from rlops.gitio import BlobReader, git, parents, rev
from rlops.promotion.propose import actor
from rlops.registry import manifest, tags


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
class Promotion:
    version: str
    stage: str
    merge: str
    record_commit: str
    tags: list[str]


def read_approvals_file(approvals_file: Path | None) -> Any:
    """The forge's reviews as the CI job saved them (parsed JSON), or None when no file was given."""
    if approvals_file is None:
        return None
    try:
        return json.loads(approvals_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InvalidInput(f"{approvals_file}: cannot read the approvals file ({e})",
                         hint='expected {"merge_commit_sha": "...", "approvals": [{"login": "...", "state": "APPROVED"}]} '
                              "or GitHub's review list") from None


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
    """Promote every unrecorded merge on HEAD's first-parent history, in order; refuse at the first that fails.
    The approvals file counts only for the merge it is about."""
    done: list[Promotion] = []
    for sha in unrecorded(root):
        try:
            result = promote(root, sha, approvals_file, bound_only=True)
        except RlopsError as e:
            if done:
                e.hint = (f"{len(done)} earlier merge(s) were recorded ("
                          + ", ".join(f"{d.version} from {d.merge[:12]}" for d in done)
                          + f"); {sha[:12]} was not: fix it (revert it and merge a corrected proposal)")
            raise
        if result is not None:
            done.append(result)
    return done


def _undo(root: Path, head: str, made: list[str]) -> None:
    """Take back a half-recorded promotion: the tags it made, the ledger commit, the ledger file."""
    for tag in made:
        git(root, "tag", "-d", tag, check=False)
    git(root, "reset", "-q", "--soft", head, check=False)
    git(root, "checkout", head, "--", ledger.LEDGER, check=False)


def promote(root: Path, commit: str = "HEAD", approvals_file: Path | None = None, *,
            bound_only: bool = False) -> Promotion | None:
    """Check the merge `commit` (HEAD, or a commit on HEAD's first-parent history) and record its promotion on
    top of HEAD; None when it lands no proposal. With `bound_only`, an approvals file about another merge is
    ignored instead of reported."""
    sha = merge_commit(root, commit)
    data = read_approvals_file(approvals_file)
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
        if not git(root, "config", "user.signingkey", check=False).strip():
            raise Refused([(EXIT_UNSIGNED, "rlops promote signs the tags it writes, and no signing key is configured: "
                                           "set user.signingkey (and gpg.format) to a key pinned in "
                                           f"{signatures.ALLOWED_SIGNERS}")], hint="nothing was recorded")
        pinned = signatures.pinned_at(blobs, first)
        signer = signatures.signature(root, sha, pinned, blobs=blobs)
        problem = roots_problem(blobs, first)
        changed = [p for p in git(root, "diff", "--name-only", "--no-renames", first, sha).splitlines() if p]
        reasons = check_proposal(blobs, sha, first, prop, pinned, signer, changed)
        reasons += [(EXIT_EVIDENCE, b) for b in broken]
        if problem:
            reasons.append((EXIT_UNSIGNED, problem))
        anchor = trailers(blobs.message(ps[1])).get("rlops-ledger", [""])[-1]
        last = prop.pending[-1]
        if anchor != f"seq={last['seq']} {ledger.line_hash(lines[last['seq'] - 1])}":
            reasons.append((EXIT_EVIDENCE, f"audit/ledger.jsonl line {last['seq']} differs from what the proposal commit "
                                           f"{ps[1][:12]} recorded (Rlops-Ledger: {anchor or 'missing'})"))
        reviews, unbound = ([], None) if data is None else trust.bind_reviews(data, sha, ps[1], str(approvals_file))
        approved, required = merge_approvals(blobs, sha, ps, signer, reviews, prop)
        if len(approved.counted) < required:
            why = approved.ignored + ([unbound] if unbound and not bound_only else [])
            reasons.append((EXIT_APPROVALS, f"{len(approved.counted)} approval(s) count "
                                            f"({', '.join(approved.names) or 'none'}), specs/policy.yaml requires "
                                            f"{required}" + (f"; not counted: {'; '.join(why)}" if why else "")
                            + f"; approvals are `Approved-by:` trailers of the merge commit or the forge's reviews of "
                              f"it (--approvals), by people in {trust.PEOPLE} other than the proposer and the signer"))
        if reasons:
            # trust first, then the root cause (a stale parent also garbles the evidence), then the rest
            order = [EXIT_UNSIGNED, EXIT_STALE_PARENT, EXIT_EVIDENCE, EXIT_APPROVALS]
            reasons.sort(key=lambda r: order.index(r[0]) if r[0] in order else len(order))
            raise Refused(reasons, hint="nothing was recorded for this merge; fix it (revert it and merge a corrected "
                                        "proposal)")
        path = manifest.manifest_path(prop.policy)
        old = manifest.Manifest.parse(blobs.text(first, path), prop.policy, path)
        new = manifest.Manifest.parse(blobs.text(sha, path), prop.policy, path)
    entries, _ = ledger.read(root)
    if any(e.event["event"] == "approved" and e.event["data"].get("merge") == sha for e in entries):
        raise InvalidInput(f"{sha[:12]} is promoted already (audit/ledger.jsonl records it)", hint="nothing to do")
    who, ts = actor(root), ledger.now()
    first_seq = prop.pending[0]["seq"]
    subject = f"{prop.policy}@{prop.version}" if prop.kind != "trust" else f"{prop.policy}#trust"
    events = [ledger.make_event(entries, "approved", policy=prop.policy, actor=who, ts=ts,
                                subjects=[{"name": subject, "digest": f"git:{sha}"}],
                                data={"merge": sha, "kind": prop.kind, "approvers": approved.names,
                                      "approvals": approved.counted, "required": required,
                                      "signer": signer.signer, "fingerprint": signer.fingerprint,
                                      "proposal_lines": [first_seq, prop.pending[-1]["seq"]]})]
    changed_stages = stage_changes(old, new)
    for stage, before, after in changed_stages:
        if stage != "production" and before:
            events.append(ledger.make_event(entries + events, f"{stage}_ended", policy=prop.policy, actor=who, ts=ts,
                                            subjects=[{"name": f"{prop.policy}@{before}", "digest": "-"}],
                                            data={"merge": sha, "version": before}))
        if after:
            name = "promoted" if stage == "production" else f"{stage}_started"
            event_data = {"merge": sha, "stage": stage, "version": after, "from": before, "via": prop.kind}
            if stage == "canary":
                event_data["fraction"] = new.canary_fraction
            events.append(ledger.make_event(entries + events, name, policy=prop.policy, actor=who, ts=ts,
                                            subjects=[{"name": f"{prop.policy}@{after}", "digest": f"git:{sha}"}],
                                            data=event_data))
    names = planned_tags(root, prop, changed_stages)
    taken = sorted(set(names) & set(tags.list_tags(root, prop.policy)))
    if taken:
        raise Refused([(EXIT_EVIDENCE, f"the tag(s) {', '.join(taken)} exist already: the tags do not match the "
                                       f"ledger (`rlops audit verify` lists why)")], hint="nothing was recorded")
    head = git(root, "rev-parse", "HEAD").strip()
    last = events[-1]
    title = f"rlops promote: {subject} ({prop.kind}, merge {sha[:12]})"
    anchor = f"Rlops-Ledger: seq={last.seq} {last.hash}\nRlops-Merge: {sha}\nSigner: {signer.who}\n" \
             f"Approved-by: {', '.join(approved.names)}\n"
    made: list[str] = []
    try:  # one transaction: the ledger commit (its own path only) and the tags, or nothing
        ledger.append(root, events)
        git(root, "add", ledger.LEDGER)
        git(root, "commit", "-q", "-F", "-", "--", ledger.LEDGER,
            input=(f"{title}\n\nRlops-Promotes: {sha}\nRlops-Ledger: seq={last.seq} {last.hash}\n").encode())
        record = git(root, "rev-parse", "HEAD").strip()
        if prop.kind == "promotion":
            made.append(tags.register(root, prop.policy, prop.version, sha, f"{title}\n\n{anchor}"))
        for stage, _, after in changed_stages:
            if after:
                # GTO finds an assignment's version by the commit its tag points at: a rollback points at the old version's
                target = sha if prop.kind == "promotion" else (tags.registration_commit(root, prop.policy, after) or sha)
                made.append(tags.assign(root, prop.policy, stage, target, f"{title}\n\n{anchor}"))
    except BaseException:
        _undo(root, head, made)
        raise
    stage = next((s for s, _, a in changed_stages if a == prop.version), "production" if prop.kind != "trust" else "trust")
    return Promotion(prop.version if prop.kind != "trust" else "trust roots", stage, sha, record, made)


def planned_tags(root: Path, prop: PendingProposal, changed_stages) -> list[str]:
    """The names of the tags this promotion will write, as tags.register and tags.assign name them."""
    names = [f"{prop.policy}@{tags.semver(prop.version)}"] if prop.kind == "promotion" else []
    counters = [int(m.group(1)) for t in tags.list_tags(root, prop.policy) if (m := re.search(r"#(\d+)$", t))]
    n = max(counters, default=0)
    for stage, _, after in changed_stages:
        if after:
            n += 1
            names.append(f"{prop.policy}#{tags.STAGE_TAG[stage]}#{n}")
    return names


def stage_changes(old: manifest.Manifest, new: manifest.Manifest) -> list[tuple[str, str | None, str | None]]:
    """(stage, before, after) for every stage the merge changed, in the order the ledger records them."""
    changed = [(stage, old.stages().get(stage), v) for stage, v in new.stages().items() if old.stages().get(stage) != v]
    changed += [(stage, v, None) for stage, v in old.stages().items() if stage not in new.stages()]
    return changed
