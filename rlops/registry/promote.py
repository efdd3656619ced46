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
from rlops.gitio import BlobReader, git, parents, parse_yaml_text, rev
from rlops.registry import evidence, manifest, tags, versions
from rlops.registry.propose import actor, moved

PROPOSAL_EVENTS = {"proposed", "evaluated", "gate_decided", "rolled_back", "trust_changed"}
trailers = trust.trailers  # only the message's real trailer block counts


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
class PendingProposal:
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


def policy_at(blobs: BlobReader, commit: str) -> dict[str, Any]:
    text = blobs.text(commit, "specs/policy.yaml")
    if text is None:
        raise InvalidInput(f"specs/policy.yaml is missing at {commit[:12]}: no policy to promote")
    return parse_yaml_text(text)


def proposal_of(pending: list[dict[str, Any]], policy: str) -> PendingProposal | None:
    """The proposal a run of pending ledger events describes, or None when they hold none (or name no version)."""
    names = [e["event"] for e in pending]
    if "gate_decided" in names:
        e = pending[names.index("gate_decided")]
        found = [s["name"].split("@", 1)[1] for s in e.get("subjects") or [] if str(s.get("name", "")).startswith(policy + "@")]
        return PendingProposal("promotion", policy, found[0], pending) if found else None
    if "rolled_back" in names:
        return PendingProposal("rollback", policy, str(pending[names.index("rolled_back")]["data"].get("to")), pending)
    if "trust_changed" in names:
        return PendingProposal("trust", policy, "-", pending)
    return None


def scope_problems(prop: PendingProposal, changed: list[str], entry: dict[str, Any] | None) -> list[tuple[int, str]]:
    """What a merge changes beyond its kind: a promotion carries its cycle's evidence, its new version, the manifest
    and the ledger; a rollback the manifest and the ledger; a trust change the trust roots and the ledger."""
    mpath = manifest.manifest_path(prop.policy)
    if prop.kind == "trust":
        allowed = {*trust.ROOT_PATHS, ledger.LEDGER}
    elif prop.kind == "rollback":
        allowed = {mpath, ledger.LEDGER}
    else:
        allowed = {mpath, ledger.LEDGER, *((entry or {}).get("evidence") or {}), ((entry or {}).get("spec") or {}).get("path")}
    vdir = versions.version_dir(prop.policy, prop.version) + "/"
    out = []
    for path in changed:
        if path in allowed or (prop.kind == "promotion" and path.startswith(vdir)):
            continue
        if prop.kind == "promotion" and path.rpartition("/")[2] == ".gitignore" and not path.startswith(
                (f"{versions.REGISTRY}/", "audit/")):
            continue  # DVC stages the .gitignore files of its outputs (core.autostage); they carry no evidence
        if path in trust.ROOT_PATHS:
            out.append((EXIT_UNSIGNED, f"the {prop.kind} also changes {path}, a trust root: pinned signers, people and "
                                       f"the approvals rule change only in a merge of their own (`rlops trust propose`)"))
        elif path.startswith(f"{versions.REGISTRY}/"):
            out.append((EXIT_EVIDENCE, f"the {prop.kind} also changes {path}: a registered version is write-once"))
        else:
            out.append((EXIT_EVIDENCE, f"the {prop.kind} also changes {path}, which is not part of it; a "
                                       f"{'rollback changes only the manifest' if prop.kind == 'rollback' else prop.kind + ' carries only its own files'} "
                                       f"and the ledger"))
    return out


def check_proposal(blobs: BlobReader, merge: str, first: str, prop: PendingProposal, pinned: signatures.Pinned,
                   sig: signatures.Signature, changed: list[str]) -> list[tuple[int, str]]:
    """Signature, scope, evidence, verdict and parent checks of one merge (shared with `rlops audit verify`);
    `changed` is what the merge changes against its first parent."""
    reasons: list[tuple[int, str]] = []
    if prop.kind == "promotion" and not versions.VERSION_RE.match(prop.version):
        return [(EXIT_EVIDENCE, f"the proposal names version {prop.version!r}, which is not a version name (v1, v2, "
                                f"...): nothing of it can be registered")]
    problem = signatures.problem_with(sig, pinned)
    if problem:
        reasons.append((EXIT_UNSIGNED, f"the merge commit {merge[:12]} {problem}; a promotion needs a signed merge "
                                       f"commit (`git merge --no-ff -S`, or GitHub's merge button), not a rebase or squash"))
    path = manifest.manifest_path(prop.policy)
    old = manifest.Manifest.parse(blobs.text(first, path), prop.policy, path)
    new = manifest.Manifest.parse(blobs.text(merge, path), prop.policy, path)
    if prop.kind == "trust":
        return reasons + scope_problems(prop, changed, None) + trust_change_problems(blobs, merge, first, prop)
    if prop.kind == "promotion":
        entry_text = blobs.text(merge, versions.version_file(prop.policy, prop.version))
        if entry_text is None:
            return reasons + [(EXIT_EVIDENCE, f"{versions.version_file(prop.policy, prop.version)} is not in the merge")]
        entry = parse_yaml_text(entry_text)
        reasons += scope_problems(prop, changed, entry)
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
        reasons += scope_problems(prop, changed, None)
        data = next(e["data"] for e in prop.pending if e["event"] == "rolled_back")
        if data["to"] != "base" and not versions.VERSION_RE.match(str(data["to"])):
            return reasons + [(EXIT_EVIDENCE, f"rollback target {data['to']!r} is not a version name (base, v1, v2, ...)")]
        if data.get("canary") is not None:  # `rlops monitor --rollback`: the canary goes, production stays
            if data["canary"] != old.canary or new != manifest.Manifest(prop.policy, old.production, old.shadow):
                reasons.append((EXIT_EVIDENCE, f"{path}: a canary rollback only takes canary {data['canary']} out "
                                               f"(the manifest's canary was {old.canary or 'none'})"))
        elif new != manifest.Manifest(prop.policy, new.production, old.shadow, old.canary, old.canary_fraction):
            reasons.append((EXIT_EVIDENCE, f"{path}: the rollback changes more than the production line (shadow or "
                                           f"canary); a rollback only points production back"))
        if data["from"] != old.production:
            reasons.append((EXIT_STALE_PARENT, f"the rollback was proposed from {data['from']}, but {old.production} "
                                               f"served production when it was merged; propose it again"))
        if data["to"] != "base" and blobs.read(first, versions.version_file(prop.policy, data["to"])) is None:
            reasons.append((EXIT_EVIDENCE, f"rollback target {prop.policy}@{data['to']} is not a registered version"))
        if new.production != data["to"]:
            reasons.append((EXIT_EVIDENCE, f"{path} names {new.production} in production, the rollback says {data['to']}"))
    return reasons


def trust_change_problems(blobs: BlobReader, merge: str, first: str, prop: PendingProposal) -> list[tuple[int, str]]:
    """A trust change's ledger event names the roots the merge holds, and something changes."""
    event = next(e for e in prop.pending if e["event"] == "trust_changed")
    after = trust.roots_at(blobs, merge)
    recorded = (event.get("data") or {}).get("after") or {}
    out = []
    if recorded != after:
        differ = sorted(p for p in set(after) | set(recorded) if after.get(p) != recorded.get(p))
        out.append((EXIT_EVIDENCE, f"audit/ledger.jsonl line {event['seq']}: the trust change records other roots than "
                                   f"the merge holds ({', '.join(differ)})"))
    if after == trust.roots_at(blobs, first):
        out.append((EXIT_EVIDENCE, "the trust change changes no trust root"))
    problems = trust.people_at(blobs, merge).problems
    out += [(EXIT_EVIDENCE, p) for p in problems]
    return out


def recorded_roots(blobs: BlobReader, commit: str) -> dict[str, str] | None:
    """The trust roots the ledger at `commit` last recorded (its genesis, or the last trust change), or None."""
    entries, _ = ledger.parse(blobs.text(commit, ledger.LEDGER) or "")
    for e in reversed(entries):
        data = e.event.get("data") or {}
        if e.event.get("event") == "genesis":
            return data.get("roots")
        if e.event.get("event") == "trust_changed":
            return data.get("after")
    return None


def roots_problem(blobs: BlobReader, first: str) -> str | None:
    """Why the trust roots on a merge's first parent cannot be trusted: they differ from what the ledger recorded."""
    recorded = recorded_roots(blobs, first)
    if recorded is None:
        return (f"{ledger.LEDGER} on the first parent {first[:12]} records no genesis: run `rlops audit genesis` (and "
                f"commit it) before the first promotion")
    now = trust.roots_at(blobs, first)
    differ = sorted(p for p in set(now) | set(recorded) if now.get(p) != recorded.get(p))
    if differ:
        return (f"the trust roots on the first parent {first[:12]} differ from the ones the ledger recorded "
                f"({', '.join(differ)}): they were changed outside `rlops trust propose`; revert that change")
    return None


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


def merge_approvals(blobs: BlobReader, merge: str, ps: list[str], sig: signatures.Signature, reviews: list[tuple[str, str]],
                    prop: PendingProposal) -> tuple[trust.Approvals, int]:
    """Who approved this merge (people from audit/people.yaml on its first parent; never the proposer or the
    signer), and how many approvals the first parent's policy requires."""
    people = trust.people_at(blobs, ps[0])
    excluded = trust.excluded_people(people, trust.author_of(blobs, ps[1]), sig)
    if prop.kind == "promotion":
        entry = parse_yaml_text(blobs.text(merge, versions.version_file(prop.policy, prop.version)) or "") or {}
        proposer = people.resolve(str(entry.get("proposed_by", "")))
        if proposer:
            excluded.setdefault(proposer.name, "proposer")
    for e in prop.pending:
        person = people.resolve(str(e.get("actor", "")))
        if person:
            excluded.setdefault(person.name, "proposer")
    return trust.approvals(blobs.message(merge), reviews, people, excluded), trust.required_approvals(blobs, ps[0])


def inspect_merge(root: Path, blobs: BlobReader,
                  commit: str) -> tuple[str | None, PendingProposal | None, list[str], list[str]]:
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
