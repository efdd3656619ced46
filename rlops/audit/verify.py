"""`rlops audit verify`: re-check a policy's whole history offline, from a clone.

From the genesis event on (`rlops audit genesis`: the trust roots and manifest the history starts from), it checks
the ledger's hash chain and that every commit that changed it only appended; for every recorded merge (promotion,
rollback, trust change) the signature against the signers pinned on its first parent, what it changes, the evidence
against the git objects and dvc.lock of that merge, the verdict recomputed from the samples, the parent, the
approvals (real trailers, people, never the proposer or the signer), and that the proposal commit and the tags
anchor the ledger lines they confirm; that no first-parent commit moved a deployment, registered or changed a
registered version, or changed a trust root without a recorded merge of that kind; that the policy's tags are
exactly the expected ones, annotated and signed by a pinned key; the lineage from the base model to production; and
that the manifest names the last promoted version. Every break is listed with its commit, never a crash. Linear in
history length: two `git log` processes (no diffs), two `git cat-file` and one `git for-each-ref`, and a constant
amount of reading per promotion (signature checks: see rlops/audit/signatures.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlops.audit import genesis as genesis_mod
from rlops.audit import ledger, signatures, trust
from rlops.audit.merges import check_proposal, merge_approvals, policy_at, proposal_of, trailers
from rlops.errors import InvalidInput, RlopsError
from rlops.gitio import BlobReader, git, rev
from rlops.gitio import versions as file_versions
from rlops.registry import manifest, versions
from rlops.registry import tags as tagnames


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


@dataclass(frozen=True)
class Tag:
    name: str
    object: str  # the tag object (annotated) or the commit (lightweight)
    type: str
    commit: str
    message: str


def policy_tags(root: Path, policy: str) -> dict[str, Tag]:
    """This policy's GTO tags (their names hold '@' and '#', so list them all and filter), in one process."""
    out = git(root, "for-each-ref", "refs/tags",
              "--format=%(refname:short)%00%(objectname)%00%(objecttype)%00%(*objectname)%00%(contents)%01")
    found = {}
    for chunk in out.split("\x01"):
        fields = chunk.strip("\n").split("\0")
        if len(fields) < 5:
            continue
        name, obj, kind, peeled, body = fields[0], fields[1], fields[2], fields[3], "\0".join(fields[4:])
        if name.startswith((f"{policy}@", f"{policy}#")):
            found[name] = Tag(name, obj, kind, peeled or obj, body)
    return found


def verify(root: Path, ref: str = "HEAD") -> Result:
    head = rev(root, ref)
    if head is None:
        raise InvalidInput(f"{ref} is not a commit", hint="name a branch, tag or commit of this repository")
    with BlobReader(root) as blobs:
        try:
            policy = policy_at(blobs, head)["policy"]
        except (RlopsError, TypeError, KeyError) as e:
            result = Result("?", head)
            result.breaks.append(Break(head, trust.POLICY, f"no policy to verify ({getattr(e, 'message', e)})"))
            return result
        result = Result(policy, head)
        try:
            _verify(root, ref, head, policy, blobs, result)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, StopIteration, RlopsError) as e:
            # a history so malformed that a check cannot even read it is one more break, never a crash
            result.breaks.append(Break(head, "", f"the history cannot be read past this point "
                                                 f"({type(e).__name__}: {getattr(e, 'message', e)})"))
    return result


def _verify(root: Path, ref: str, head: str, policy: str, blobs: BlobReader, result: Result) -> None:
    brk = result.breaks.append
    text = blobs.text(head, ledger.LEDGER) or ""
    entries, problems = ledger.parse(text)
    for p in problems:
        brk(Break(head, f"{ledger.LEDGER}:{p.line}", (f"{p.field}: " if p.field else "") + p.message))
    events = [e.event for e in entries]
    result.events = events
    lines = [e.line for e in entries]
    parents, changed = first_parent_log(root, head)
    order = list(parents)[::-1]  # oldest first
    position = {sha: i for i, sha in enumerate(order)}

    # the ledger only grew, by whole lines of the ledger at HEAD, across every commit that changed it (sizes, so it
    # stays linear); and so which commit appended which line
    added_by: dict[int, str] = {}
    ends, total = {}, 0
    for k, line in enumerate(lines, 1):
        total += len(line.encode("utf-8")) + 1
        ends[total] = k
    seen, before = 0, 0
    for sha, size in file_versions(root, head, ledger.LEDGER):
        if size is None:
            brk(Break(sha, ledger.LEDGER, f"deletes {ledger.LEDGER}: the file is append-only"))
            continue
        if size < before:
            brk(Break(sha, ledger.LEDGER, f"shrinks {ledger.LEDGER} from {before} to {size} bytes: lines were removed "
                                          f"or rewritten; the file is append-only"))
        elif size not in ends and size != 0 and not problems:
            brk(Break(sha, ledger.LEDGER, f"{ledger.LEDGER} here is not whole lines of the ledger at {ref}: lines were "
                                          f"inserted, removed or rewritten; the file is append-only"))
        k = ends.get(size, seen)
        for n in range(seen + 1, k + 1):
            added_by[n] = sha
        seen, before = max(seen, k), size
    # genesis: where the checked history starts
    geneses = [e for e in events if e.get("event") == "genesis"]
    start = 0
    if not geneses or events[0].get("event") != "genesis":
        brk(Break(head, f"{ledger.LEDGER}:1", "the ledger does not start with a genesis event: run `rlops audit "
                                              "genesis` to record the trust roots the history starts from"))
    else:
        start = position.get(added_by.get(1, ""), 0)
    promoted_seen = False
    for ev in events:
        if ev.get("event") == "approved":
            promoted_seen = True
        if ev.get("event") != "genesis":
            continue
        c = added_by.get(ev["seq"])
        if c is None:
            continue
        for msg in genesis_mod.check(blobs, c, ev, policy):
            brk(Break(c, ledger.LEDGER, msg))
        if promoted_seen:
            brk(Break(c, f"{ledger.LEDGER}:{ev['seq']}", "a genesis after a recorded promotion: trust roots change "
                                                          "only through `rlops trust propose` once the history began"))
        elif ev["seq"] > 1 and parents[c]:
            before = signatures.pinned_at(blobs, parents[c][0])
            if before.fingerprints:
                problem = signatures.problem_with(signatures.signature(root, c, before, blobs=blobs), before)
                if problem:
                    brk(Break(c, f"{ledger.LEDGER}:{ev['seq']}", f"a new genesis must be a commit signed by a signer "
                                                                  f"pinned before it; this one {problem}"))
    genesis_commits = {added_by.get(ev["seq"]) for ev in geneses}
    checked = set(order[start + 1:])  # commits after the first genesis

    anchors = {}
    all_tags = policy_tags(root, policy)
    for t in all_tags.values():
        for line in t.message.splitlines():
            if line.startswith("Rlops-Ledger:"):
                anchors.setdefault(line.strip(), t.name)
    promoted_merges: dict[str, str] = {}  # merge -> kind
    trust_merges: set[str] = set()
    for i, ev in enumerate(events):
        if ev.get("event") != "approved":
            continue
        seq, merge = ev["seq"], ev["data"].get("merge", "")
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
        promoted_merges[merge] = prop.kind
        if prop.kind == "trust":
            trust_merges.add(merge)
        else:
            result.promotions += 1
        pinned = signatures.pinned_at(blobs, ps[0])
        sig = signatures.signature(root, merge, pinned, blobs=blobs)
        for _, msg in check_proposal(blobs, merge, ps[0], prop, pinned, sig, changed.get(merge, [])):
            brk(Break(merge, "", msg))
        anchor = trailers(blobs.message(ps[1])).get("rlops-ledger", [""])[-1]
        if hi > len(lines) or anchor != f"seq={hi} {ledger.line_hash(lines[hi - 1])}":
            brk(Break(ps[1], f"{ledger.LEDGER}:{hi}", "differs from the line the proposal commit anchored "
                                                      f"(Rlops-Ledger: {anchor or 'missing'})"))
        # approvals, recomputed: the merge's real trailers, and the forge reviews the ledger recorded, re-resolved
        recorded = ev["data"].get("approvals") or []
        reviews = [(a.get("as", ""), "APPROVED") for a in recorded if isinstance(a, dict) and a.get("via") == "review"]
        again, required = merge_approvals(blobs, merge, ps, sig, reviews, prop)
        if sorted(ev["data"].get("approvers", [])) != again.names:
            brk(Break(merge, f"{ledger.LEDGER}:{seq}", f"records approvers {ev['data'].get('approvers', [])}, but the "
                                                       f"merge's trailers and people file give {again.names}"))
        if len(again.counted) < required:
            brk(Break(merge, f"{ledger.LEDGER}:{seq}", f"{len(again.counted)} approval(s) count "
                                                       f"({', '.join(again.names) or 'none'}), {required} required"
                                                       + (f"; not counted: {'; '.join(again.ignored)}" if again.ignored else "")))
        # the last event of this promotion's batch is anchored in its tags (a trust change: in its record commit)
        j = i
        while j + 1 < len(events) and (events[j + 1].get("data") or {}).get("merge") == merge:
            j += 1
        last = f"Rlops-Ledger: seq={events[j]['seq']} {ledger.line_hash(lines[j])}"
        record = added_by.get(events[j]["seq"])
        # a merge that starts no stage (a trust change; a rollback that only ends a canary) writes no tag: its
        # record commit carries the anchor
        tagless = prop.kind == "trust" or not any(e.get("event") in ("promoted", "shadow_started", "canary_started")
                                                  for e in events[i:j + 1])
        if last not in anchors and not (tagless and record and
                                        trailers(blobs.message(record)).get("rlops-ledger", [""])[-1] == last.split(": ", 1)[1]):
            brk(Break(merge, f"{ledger.LEDGER}:{events[j]['seq']}", "no promotion tag anchors this line: the line "
                                                                    "was changed, or the tags are missing (git fetch --tags)"))
    # after genesis, every first-parent commit that moves a deployment, touches the registry or a trust root must be
    # a recorded merge of the matching kind
    mpath = manifest.manifest_path(policy)
    prefix = f"{versions.REGISTRY}/{policy}/"
    registered: set[str] = set()
    for sha in order:
        paths = changed[sha]
        ours = [p for p in paths if p.startswith(prefix)]
        if sha not in checked:
            registered |= {p.split("/")[2] for p in ours if p.endswith("/version.yaml")}
            continue
        kind = promoted_merges.get(sha)
        if mpath in paths and kind not in ("promotion", "rollback") and sha not in genesis_commits:
            brk(Break(sha, mpath, "the deployment changed here, but no promotion of this commit is recorded: "
                                  "run `rlops promote` on it, or revert it"))
        rewritten = sorted({p.split("/")[2] for p in ours if p.split("/")[2] in registered})
        for v in rewritten:
            brk(Break(sha, f"{prefix}{v}", f"changes the files of {policy}@{v}, registered earlier: a registered version "
                                           f"is write-once"))
        fresh = {p.split("/")[2] for p in ours} - registered
        if fresh and kind != "promotion":
            brk(Break(sha, prefix, f"registers {', '.join(sorted(fresh))} without a recorded promotion of this commit"))
        registered |= fresh
        if any(p in trust.ROOT_PATHS for p in paths) and sha not in trust_merges and sha not in genesis_commits:
            before, after = trust.roots_at(blobs, parents[sha][0]), trust.roots_at(blobs, sha)
            if before != after:
                differ = ", ".join(sorted(p for p in after if before.get(p) != after[p]))
                brk(Break(sha, differ, "changes a trust root outside a recorded trust change: pinned signers, people "
                                       "and the approvals rule change only through `rlops trust propose`, a signed and "
                                       "approved merge recorded by `rlops promote`"))
    reconcile_tags(root, blobs, policy, events, lines, parents, all_tags, brk)
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


def expected_tags(policy: str, events: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """tag name -> (commit it must point at, merge it records), from the ledger, as `rlops promote` writes them."""
    out: dict[str, tuple[str, str]] = {}
    registered_at: dict[str, str] = {}
    counter = 0
    kinds: dict[str, str] = {}
    for ev in events:
        data = ev.get("data") or {}
        merge = data.get("merge", "")
        if ev.get("event") == "approved":
            kinds[merge] = data.get("kind") or "promotion"
        elif ev.get("event") in ("promoted", "shadow_started", "canary_started"):
            version, via = str(data.get("version")), data.get("via")
            if via == "promotion" and version not in registered_at:
                registered_at[version] = merge
                out[f"{policy}@{tagnames.semver(version)}"] = (merge, merge)
            counter += 1
            target = merge if via == "promotion" else registered_at.get(version, merge)
            out[f"{policy}#{tagnames.STAGE_TAG.get(data.get('stage'), data.get('stage'))}#{counter}"] = (target, merge)
    return out


def reconcile_tags(root: Path, blobs: BlobReader, policy: str, events: list[dict[str, Any]], lines: list[str],
                   parents: dict[str, list[str]], found: dict[str, Tag], brk) -> None:
    """Only the expected tags, at the expected commits, annotated and signed by a pinned key; anchors that name
    ledger lines this history no longer has mean it lost a recorded promotion."""
    expected = expected_tags(policy, events)
    for name, (target, merge) in sorted(expected.items()):
        tag = found.get(name)
        if tag is None:
            brk(Break(merge, f"refs/tags/{name}", "the tag is missing (deleted, or not fetched: git fetch --tags)"))
            continue
        if tag.commit != target:
            brk(Break(tag.commit, f"refs/tags/{name}", f"the tag was moved: it points at {tag.commit[:12]}, the ledger "
                                                       f"puts it at {target[:12]}"))
        if tag.type != "tag":
            brk(Break(tag.commit, f"refs/tags/{name}", "a lightweight tag: promotion tags are annotated and signed"))
            continue
        pinned = signatures.pinned_at(blobs, merge if merge in parents else tag.commit)
        problem = signatures.problem_with(signatures.tag_signature(root, tag.object, pinned, blobs=blobs), pinned)
        if problem:
            brk(Break(tag.commit, f"refs/tags/{name}", f"the tag {problem}"))
    for name, tag in sorted(found.items()):
        if name in expected:
            continue
        lost = ""
        for line in tag.message.splitlines():
            if line.startswith("Rlops-Merge:") and line.split(":", 1)[1].strip() not in parents:
                lost = f"; it records merge {line.split(':', 1)[1].strip()[:12]}, which this history does not hold"
            if line.startswith("Rlops-Ledger:"):
                seq, _, digest = line.split(":", 1)[1].strip().partition(" ")
                k = int(seq.removeprefix("seq=")) if seq.removeprefix("seq=").isdigit() else 0
                if not (0 < k <= len(lines) and ledger.line_hash(lines[k - 1]) == digest):
                    lost += f"; it anchors ledger line {k}, which this ledger does not hold"
        what = "the history lost a recorded promotion (main was reset or rewritten?)" if lost else \
            "a tag the ledger does not explain (forged, or left from a promotion never recorded)"
        brk(Break(tag.commit, f"refs/tags/{name}", what + lost))
