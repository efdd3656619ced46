"""The checks of one merge that lands a proposal: shared by `rlops promote` (before it records the merge) and
`rlops audit verify` (over the whole history), so the two can never disagree.

A merge lands a promotion (a new version), a rollback or a trust change; `inspect_merge` reads which from the
ledger lines it appends, `check_proposal` checks its signature, scope, evidence, verdict and parent, and
`merge_approvals` says who approved it under the first parent's people and policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlops.audit import ledger, signatures, trust
from rlops.errors import EXIT_EVIDENCE, EXIT_STALE_PARENT, EXIT_UNSIGNED, InvalidInput
from rlops.gitio import BlobReader, parents, parse_yaml_text
from rlops.registry import evidence, manifest, versions

PROPOSAL_EVENTS = {"proposed", "evaluated", "gate_decided", "rolled_back", "trust_changed"}
trailers = trust.trailers  # only the message's real trailer block counts


@dataclass(frozen=True)
class PendingProposal:
    """What a merge brings in: a new version (promotion) or a return to an older one (rollback)."""

    kind: str  # promotion | rollback
    policy: str
    version: str
    pending: list[dict[str, Any]]  # the ledger events the pull request appended


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
        if new != manifest.moved(old, prop.version, entry["promotion"]):
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
