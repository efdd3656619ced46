"""The trust roots and the people behind them: who may sign, who may approve, how many approvals it takes.

Trust roots are `audit/allowed_signers`, `audit/trusted_gpg_keys`, `audit/people.yaml` and the `policy` and
`approvals` keys of `specs/policy.yaml`. They are read from a merge's *first parent* (the state before it), and they
change only through a merge of their own (`rlops trust propose`), signed and approved under the roots before it, or
in a genesis commit (`rlops audit genesis`) before the first promotion. `roots_at` is what the ledger records.

`audit/people.yaml` maps identities to people, so "bob", "Bob" and "Bob <bob@corp.example>" are one approver:

    people:
      - name: Bob Reviewer
        emails: [bob@corp.example]
        logins: [bob]                    # forge logins (GitHub reviews)
        keys: ["SHA256:...", "4AEE..."]  # signing-key fingerprints (SSH SHA256:..., OpenPGP hex)
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from rlops.audit import signatures
from rlops.gitio import BlobReader, parse_yaml_text

PEOPLE = "audit/people.yaml"
POLICY = "specs/policy.yaml"
ROOT_FILES = (signatures.ALLOWED_SIGNERS, signatures.TRUSTED_GPG, PEOPLE)
ROOT_PATHS = (*ROOT_FILES, POLICY)
POLICY_KEYS = ("policy", "approvals")  # the part of specs/policy.yaml that is a trust root

TRAILER_LINE = re.compile(r"^(?P<key>[A-Za-z0-9][A-Za-z0-9-]*)[ \t]*:[ \t]*(?P<value>.*)$")
IDENTITY = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>@\s]+@[^<>\s]+)>\s*$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def policy_part(text: str | None) -> dict[str, Any]:
    """The trust-root keys of specs/policy.yaml (the policy's name and its approvals rule)."""
    try:
        data = parse_yaml_text(text) or {}
    except Exception:  # a broken policy file is a changed root, named by the caller
        return {"unreadable": sha256((text or "").encode())}
    return {k: data.get(k) for k in POLICY_KEYS} if isinstance(data, dict) else {"unreadable": True}


def roots_at(blobs: BlobReader, commit: str) -> dict[str, str]:
    """path -> SHA-256 of each trust root at `commit` ("absent" when the file is not there)."""
    out = {}
    for path in ROOT_FILES:
        data = blobs.read(commit, path)
        out[path] = "absent" if data is None else sha256(data)
    part = json.dumps(policy_part(blobs.text(commit, POLICY)), sort_keys=True, separators=(",", ":"))
    out[f"{POLICY}#{'+'.join(POLICY_KEYS)}"] = sha256(part.encode())
    return out


def required_approvals(blobs: BlobReader, commit: str) -> int:
    approvals = policy_part(blobs.text(commit, POLICY)).get("approvals") or {}
    try:
        return int(approvals.get("required", 1)) if isinstance(approvals, dict) else 1
    except (TypeError, ValueError):
        return 1


# trailers --------------------------------------------------------------------------------------------------------

def trailer_block(message: str) -> list[tuple[str, str]]:
    """(key, value) of the trailers in a commit message's last paragraph, as `git interpret-trailers --parse` reads
    them: the paragraph counts only when every line is a trailer (or a continuation), or when a quarter of its lines
    are and one is git's own (`Signed-off-by:`, `(cherry picked from commit`). Elsewhere `Key: value` is prose."""
    lines = [line for line in message.rstrip().split("\n") if not line.startswith("#")]
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    start = end
    while start and lines[start - 1].strip():
        start -= 1
    if start == 0:  # the subject line and its paragraph are never trailers
        return []
    block = lines[start:end]
    found: list[tuple[str, str]] = []
    prose, gits = 0, False
    for line in block:
        m = TRAILER_LINE.match(line)
        if line[:1] in (" ", "\t") and found:
            found[-1] = (found[-1][0], f"{found[-1][1]} {line.strip()}".strip())
        elif m:
            found.append((m["key"], m["value"].strip()))
            gits = gits or m["key"].lower() == "signed-off-by"
        elif line.startswith("(cherry picked from commit "):
            gits = True
        else:
            prose += 1
    if prose and not (gits and len(found) * 4 >= len(found) + prose):
        return []
    return found


def trailers(message: str) -> dict[str, list[str]]:
    """lower-cased key -> values of the message's real trailers."""
    out: dict[str, list[str]] = {}
    for key, value in trailer_block(message):
        out.setdefault(key.lower(), []).append(value)
    return out


# people ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    name: str
    emails: frozenset[str]
    logins: frozenset[str]
    keys: frozenset[str]


@dataclass(frozen=True)
class People:
    people: tuple[Person, ...] = ()
    problems: tuple[str, ...] = field(default=())

    def resolve(self, who: str) -> Person | None:
        """The person an identity names: `Name <email>` by e-mail, a bare word by login or name (case-insensitive)."""
        who = (who or "").strip()
        m = IDENTITY.match(who)
        for p in self.people:
            if m and m["email"].lower() in p.emails:
                return p
            if not m and (who.lower() in p.logins or who.lower() == p.name.lower() or who.lower() in p.emails):
                return p
        return None

    def by_key(self, *fingerprints: str) -> Person | None:
        prints = {f.replace(" ", "") for f in fingerprints if f}
        prints |= {f.upper() for f in prints if not f.startswith("SHA256:")}
        return next((p for p in self.people if p.keys & prints), None)


def parse_people(text: str | None, file: str = PEOPLE) -> People:
    if text is None:
        return People()
    try:
        data = parse_yaml_text(text) or {}
    except Exception as e:
        return People((), (f"{file}: not YAML ({e})",))
    rows = data.get("people") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        return People((), (f"{file}: people: must be a list of {{name, emails, logins, keys}}",))
    people, problems = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("name"), str) or not row["name"].strip():
            problems.append(f"{file}: people[{i}].name: every person needs a name")
            continue

        def words(key: str, row: dict = row) -> frozenset[str]:
            value = row.get(key) or []
            return frozenset(str(v).strip() for v in (value if isinstance(value, list) else [value]))
        keys = frozenset(k.replace(" ", "") if k.startswith("SHA256:") else k.replace(" ", "").upper() for k in words("keys"))
        people.append(Person(row["name"].strip(), frozenset(e.lower() for e in words("emails")),
                             frozenset(login.lower() for login in words("logins")), keys))
    return People(tuple(people), tuple(problems))


def people_at(blobs: BlobReader, commit: str) -> People:
    return parse_people(blobs.text(commit, PEOPLE))


def author_of(blobs: BlobReader, commit: str) -> str:
    """`Name <email>` of a commit's author, from its header."""
    header = (blobs.text(commit) or "").partition("\n\n")[0]
    line = next((x for x in header.splitlines() if x.startswith("author ")), "author ")
    return line[len("author "):].rsplit(" ", 2)[0]


# approvals -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Approvals:
    counted: list[dict[str, str]]  # {"person", "via", "as"}, one per person
    ignored: list[str]  # why each other approval did not count

    @property
    def names(self) -> list[str]:
        return [a["person"] for a in self.counted]


def bind_reviews(data: Any, merge: str, head: str, file: str) -> tuple[list[tuple[str, str]], str | None]:
    """(login, state) of the reviews of *this* merge in a forge's approvals file, or why the file is not about it.

    rlops's format names its merge: `{"merge_commit_sha": SHA, "approvals": [{"login", "state"}]}`. GitHub's review
    list (`GET /pulls/N/reviews`) names the commit each review saw (`commit_id`): only reviews of the head the merge
    brought in count."""
    if isinstance(data, dict):
        bound = data.get("merge_commit_sha")
        if bound != merge:
            return [], (f"{file} is about merge {str(bound)[:12] if bound else '(none named: merge_commit_sha)'}, "
                        f"not {merge[:12]}")
        reviews = data.get("approvals") or []
    elif isinstance(data, list):
        reviews = [r for r in data if isinstance(r, dict) and r.get("commit_id") == head]
        if data and not reviews:
            return [], f"{file}: no review is of {head[:12]}, the head this merge brought in (commit_id)"
    else:
        return [], f"{file}: expected an object with merge_commit_sha and approvals, or GitHub's review list"
    out = []
    for r in reviews:
        if isinstance(r, dict):
            login = r.get("login") or (r.get("user") or {}).get("login")
            if login:
                out.append((str(login), str(r.get("state", "")).upper()))
    return out, None


def approvals(message: str, reviews: list[tuple[str, str]], people: People, excluded: dict[str, str]) -> Approvals:
    """Distinct people approving: `Approved-by:` trailers of the merge, plus the forge's APPROVED reviews of it.

    Each identity is resolved through audit/people.yaml; unknown identities, and the people in `excluded` (the
    proposer and the signer, person name -> role), do not count."""
    latest: dict[str, str] = {}
    for login, state in reviews:  # a later review by the same person (changes requested, dismissed) replaces it
        if state not in ("COMMENTED", "PENDING"):
            latest[login] = state
    raw = [(v, "trailer") for v in trailers(message).get("approved-by", [])]
    raw += [(login, "review") for login, state in latest.items() if state == "APPROVED"]
    counted: dict[str, dict[str, str]] = {}
    ignored = []
    for who, via in raw:
        person = people.resolve(who)
        if person is None:
            ignored.append(f"{who!r} ({via}) is not a person in {PEOPLE}")
        elif person.name in excluded:
            ignored.append(f"{who!r} ({via}) is {person.name}, the {excluded[person.name]}: never an approver")
        else:
            counted.setdefault(person.name, {"person": person.name, "via": via, "as": who})
    return Approvals(sorted(counted.values(), key=lambda a: a["person"]), ignored)


def excluded_people(people: People, proposer: str, signer: signatures.Signature) -> dict[str, str]:
    """person name -> role, for the proposer (the proposal commit's author) and the merge's signer."""
    out = {}
    p = people.resolve(proposer)
    if p:
        out[p.name] = "proposer"
    s = people.by_key(signer.fingerprint, signer.primary) or (people.resolve(signer.signer) if signer.signer else None)
    if s:
        out.setdefault(s.name, "signer")
    return out
