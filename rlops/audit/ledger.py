"""The ledger, `audit/ledger.jsonl`: one canonical-JSON event per line, each holding the SHA-256 of the line before.

Editing, deleting, reordering or inserting a past line breaks the chain at the next line; the last lines are
anchored outside the file (the proposal commit's `Rlops-Ledger:` trailer and the promotion tags record the
sequence number and hash of the line they confirm), so `rlops audit verify` catches a changed tail too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rlops.errors import Problem
from rlops.io import atomic_write_text

LEDGER = "audit/ledger.jsonl"
GENESIS = "sha256:" + "0" * 64
EVENTS = (
    "genesis",  # written by `rlops audit genesis`: the trust roots and the manifest the history starts from
    "trust_changed",  # appended by `rlops trust propose` in the pull request that changes a trust root
    "proposed", "evaluated", "gate_decided",  # appended by `rlops propose` in the pull request
    "rolled_back",  # appended by `rlops rollback` in the pull request
    "approved", "promoted",  # appended by `rlops promote` after the signed merge
    "shadow_started", "shadow_ended", "canary_started", "canary_ended",
)
FIELDS = ("seq", "ts", "event", "policy", "actor", "subjects", "evidence", "data", "prev")


def canonical(obj: Any) -> str:
    """The one serialisation whose bytes are hashed: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def line_hash(line: str) -> str:
    return "sha256:" + hashlib.sha256(line.encode("utf-8")).hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Entry:
    seq: int
    line: str
    event: dict[str, Any]

    @property
    def hash(self) -> str:
        return line_hash(self.line)


def parse(text: str, file: str = LEDGER) -> tuple[list[Entry], list[Problem]]:
    """Every line of a ledger with the chain checked; a problem names the line and what broke there."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    prev = GENESIS
    expected = 1
    if text and not text.endswith("\n"):
        problems.append(Problem(file, text.count("\n") + 1, "", "the last line has no newline: a write was cut short"))
    for n, line in enumerate(text.splitlines(), 1):
        try:
            event = json.loads(line)
        except ValueError as e:
            problems.append(Problem(file, n, "", f"not JSON ({e.msg}); the ledger was edited by hand"))
            prev = line_hash(line)
            expected += 1
            continue
        if not isinstance(event, dict) or sorted(event) != sorted(FIELDS):
            problems.append(Problem(file, n, "", f"an event has exactly the fields {', '.join(FIELDS)}"))
        elif canonical(event) != line:
            problems.append(Problem(file, n, "", "not in canonical form: the line was rewritten after it was appended"))
        elif event["seq"] != expected:
            problems.append(Problem(file, n, "seq", f"is {event['seq']}, expected {expected}: a line was deleted, "
                                                    "inserted or moved"))
        elif event["prev"] != prev:
            problems.append(Problem(file, n, "prev", "does not match the line before: that line was edited, or lines "
                                                     "were deleted, inserted or reordered"))
        elif event["event"] not in EVENTS:
            problems.append(Problem(file, n, "event", f"unknown event {event['event']!r}"))
        if isinstance(event, dict):
            entries.append(Entry(n, line, event))
            if isinstance(event.get("seq"), int):
                expected = event["seq"]  # resynchronise, so one deleted line is one break, not one per later line
        expected += 1
        prev = line_hash(line)
    return entries, problems


def read(root: Path) -> tuple[list[Entry], list[Problem]]:
    path = root / LEDGER
    if not path.is_file():
        return [], []
    return parse(path.read_text(encoding="utf-8"))


def make_event(entries: list[Entry], event: str, *, policy: str, actor: str, subjects: list[dict[str, str]] | None = None,
               evidence: dict[str, str] | None = None, data: dict[str, Any] | None = None, ts: str | None = None) -> Entry:
    """The next event after `entries` (not yet written)."""
    if event not in EVENTS:
        raise ValueError(f"unknown ledger event {event!r}")
    body = {
        "seq": len(entries) + 1, "ts": ts or now(), "event": event, "policy": policy, "actor": actor,
        "subjects": subjects or [], "evidence": evidence or {}, "data": data or {},
        "prev": entries[-1].hash if entries else GENESIS,
    }
    line = canonical(body)
    return Entry(body["seq"], line, body)


def append(root: Path, new: list[Entry]) -> list[Entry]:
    """Append events atomically (the whole file is rewritten through a rename), after re-checking the chain."""
    from rlops.errors import InvalidInput

    entries, problems = read(root)
    if problems:
        raise InvalidInput(problems, hint="the ledger is damaged; `rlops audit verify` lists every break")
    if new and (new[0].seq != len(entries) + 1 or new[0].event["prev"] != (entries[-1].hash if entries else GENESIS)):
        raise ValueError("events were made against another state of the ledger")
    text = "".join(e.line + "\n" for e in entries + new)
    atomic_write_text(root / LEDGER, text)
    return entries + new
