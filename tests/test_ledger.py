"""The ledger's hash chain: every edit, deletion, reordering or insertion of a past line is found, with its line."""

from __future__ import annotations

import json

import pytest

from rlops.audit import ledger
from rlops.errors import InvalidInput


def chain(n: int) -> list[str]:
    entries: list[ledger.Entry] = []
    for i in range(n):
        entries.append(ledger.make_event(entries, "proposed", policy="p", actor="a", ts=f"2026-11-0{1 + i % 9}T00:00:00Z",
                                         subjects=[{"name": f"p@v{i + 1}", "digest": "md5:x"}], data={"i": i}))
    return [e.line for e in entries]


def problems(lines: list[str]) -> list[tuple[int, str]]:
    return [(p.line, p.field) for p in ledger.parse("".join(l + "\n" for l in lines))[1]]


def test_an_intact_chain_has_no_problems_and_is_canonical():
    lines = chain(5)
    assert problems(lines) == []
    assert all(ledger.canonical(json.loads(l)) == l for l in lines)
    assert json.loads(lines[0])["prev"] == ledger.GENESIS
    assert json.loads(lines[1])["prev"] == ledger.line_hash(lines[0])


def test_an_edited_line_breaks_the_chain_at_the_next_line():
    lines = chain(5)
    event = json.loads(lines[1])
    event["actor"] = "mallory"
    lines[1] = ledger.canonical(event)
    assert problems(lines) == [(3, "prev")]


def test_a_hand_edit_that_is_not_canonical_is_named():
    lines = chain(3)
    lines[1] = json.dumps(json.loads(lines[1]), indent=1).replace("\n", "")
    assert (2, "") in problems(lines)


@pytest.mark.parametrize("change, expected", [
    (lambda ls: ls[:2] + ls[3:], [(3, "seq")]),  # a deleted line
    (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], [(2, "seq"), (3, "seq"), (4, "seq")]),  # two lines swapped
    (lambda ls: ls[:2] + [ls[1]] + ls[2:], [(3, "seq")]),  # a line inserted (a copy)
])
def test_deletion_reordering_and_insertion_are_found(change, expected):
    assert problems(change(chain(5))) == expected


def test_a_torn_last_line_is_reported():
    lines = chain(2)
    text = lines[0] + "\n" + lines[1][:20]
    assert any("cut short" in p.message for p in ledger.parse(text)[1])


def test_append_is_atomic_and_refuses_a_damaged_ledger(tmp_path):
    (tmp_path / "audit").mkdir()
    entries = ledger.append(tmp_path, [ledger.make_event([], "proposed", policy="p", actor="a")])
    second = ledger.make_event(entries, "evaluated", policy="p", actor="a")
    ledger.append(tmp_path, [second])
    assert ledger.read(tmp_path)[1] == [] and len(ledger.read(tmp_path)[0]) == 2
    assert not [p for p in (tmp_path / "audit").iterdir() if p.name != "ledger.jsonl"]  # no temporaries left
    path = tmp_path / ledger.LEDGER
    path.write_text(path.read_text().replace('"actor":"a"', '"actor":"b"', 1))
    with pytest.raises(InvalidInput, match="ledger.jsonl:2"):
        ledger.append(tmp_path, [ledger.make_event(ledger.read(tmp_path)[0], "gate_decided", policy="p", actor="a")])
