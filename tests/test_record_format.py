"""One record format: the recorder, `rlops validate`, the extract stage and the shipped JSON Schemas all apply the
rules of rlops.records, and agree on the same edge-case records (timestamps and ids)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_extract import interaction, lines, params, rating

from rlops import records
from rlops.errors import InvalidInput
from rlops.extract import run as extract_run
from rlops.observe.recorder import Recorder
from rlops.spec.schema import load_schema
from rlops.spec.validate import validate_paths

GOOD_TIMES = ["2026-11-03T10:15:00Z", "2026-11-03t10:15:00z", "2026-11-03T10:15:00.5+01:00",
              "2026-11-03T10:15:00.123456789-05:30", "2026-12-31T23:59:59.000Z", "2024-02-29T00:00:00+00:00"]
BAD_TIMES = ["2026-11-03 10:15:00Z",  # a space for the T: DuckDB and fromisoformat read it, RFC 3339 does not
             "2026-11-03T10:15:00+0100",  # offset without its colon
             "2026-11-03T10:15:00",  # no offset
             "2026-11-03T10:15Z",  # no seconds
             "2026-11-03", "2026-13-03T10:15:00Z", "2026-02-30T10:15:00Z", "2025-02-29T10:15:00Z",
             "2026-11-03T24:00:00Z", "2026-11-03T10:60:00Z", "2026-11-03T10:15:00+25:00", " 2026-11-03T10:15:00Z",
             "2026-11-03T10:15:00Z ", "2026-11-03T10:15:00.Z", "yesterday"]
GOOD_IDS = ["a", "A.b_c:d-1", "9" * records.ID_MAX]
BAD_IDS = ["-a", ".a", "a b", "a/b", "é", "x" * (records.ID_MAX + 1)]


def test_the_rule_itself():
    assert all(records.is_timestamp(t) for t in GOOD_TIMES)
    assert not any(records.is_timestamp(t) for t in BAD_TIMES)
    assert all(records.is_id(i) for i in GOOD_IDS)
    assert not any(records.is_id(i) for i in BAD_IDS)


def _recorder_refuses(tmp_path: Path, record: dict, stream: str) -> set[str]:
    with Recorder(tmp_path / "rec") as rec:
        try:
            (rec.record_interaction if stream == "interactions" else rec.record_feedback)(record)
        except InvalidInput as e:
            return {p.field for p in e.problems}
    return set()


def _cases() -> tuple[list[dict], list[dict], dict[str, tuple[str, str, bool]]]:
    """Interactions and feedback, one edge case each; key: id -> (field, value, expected to be valid)."""
    ixs, fbs, cases = [], [], {}
    for n, ts in enumerate(GOOD_TIMES + BAD_TIMES):
        iid = f"i-ts-{n}"
        ixs.append({**interaction(iid, text=f"question {n}"), "timestamp": ts})
        fbs.append(rating(f"f-ts-{n}", iid, 5))
        cases[iid] = ("timestamp", ts, ts in GOOD_TIMES)
    for n, ts in enumerate(GOOD_TIMES + BAD_TIMES):
        iid = f"i-fts-{n}"
        ixs.append(interaction(iid, text=f"other question {n}"))
        fbs.append(rating(f"f-fts-{n}", iid, 4, ts=ts))
        cases[f"f-fts-{n}"] = ("timestamp", ts, ts in GOOD_TIMES)
    for n, iid in enumerate(GOOD_IDS + BAD_IDS):
        ixs.append(interaction(iid, text=f"third question {n}"))
        cases[iid] = ("interaction_id", iid, iid in GOOD_IDS)
    return ixs, fbs, cases


def test_recorder_validator_and_extraction_agree_on_edge_cases(tmp_path):
    ixs, fbs, cases = _cases()
    # the recorder: refuses the record, naming the field
    by_recorder = {}
    for stream, recs, key in (("interactions", ixs, "interaction_id"), ("feedback", fbs, "event_id")):
        for r in recs:
            if r[key] in cases:
                field = cases[r[key]][0]
                by_recorder[r[key]] = field not in _recorder_refuses(tmp_path, r, stream)
    # rlops validate: a problem on the field, at the record's line
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/interactions.jsonl").write_text(lines(ixs))
    (tmp_path / "logs/feedback.jsonl").write_text(lines(fbs))
    problems = validate_paths([tmp_path / "logs"], tmp_path)
    flagged = {(Path(p.file).name, p.line, p.field) for p in problems}
    by_validator = {}
    for file, recs, key in (("interactions.jsonl", ixs, "interaction_id"), ("feedback.jsonl", fbs, "event_id")):
        for number, r in enumerate(recs, 1):
            if r[key] in cases:
                by_validator[r[key]] = (file, number, cases[r[key]][0]) not in flagged
    # the extract stage: quarantined for the field
    (tmp_path / "evals/heldout").mkdir(parents=True)
    (tmp_path / "evals/heldout/prompts.jsonl").write_text(json.dumps({"id": "h", "prompt": "opening hours?"}) + "\n")
    extract_run.run(params(signals=["rating"]), tmp_path, tmp_path / "out")
    quarantined = [json.loads(x) for x in (tmp_path / "out/quarantine.jsonl").read_text().splitlines()]
    by_extraction = {}
    for file, recs, key in (("interactions.jsonl", ixs, "interaction_id"), ("feedback.jsonl", fbs, "event_id")):
        for number, r in enumerate(recs, 1):
            if r[key] in cases:
                field = cases[r[key]][0]
                by_extraction[r[key]] = not any(q["file"].endswith(file) and q["line"] == number
                                                and q["reason"].startswith(f"{field}:") for q in quarantined)
    expected = {key: valid for key, (_, _, valid) in cases.items()}
    assert by_recorder == expected
    assert by_validator == expected
    assert by_extraction == expected


@pytest.mark.parametrize("name", ["interaction", "feedback"])
def test_the_shipped_schemas_hold_the_record_modules_rules(name):
    """The JSON Schemas editors read say what rlops.records says (a change to one side fails here)."""
    schema = load_schema(name)
    assert tuple(schema["required"]) == records.REQUIRED[name]
    assert schema["properties"]["schema"]["const"] == records.SCHEMAS[name]
    ident = schema["$defs"]["id"]
    assert (ident["pattern"], ident["maxLength"]) == (records.ID_PATTERN, records.ID_MAX)
    stamp = schema["properties"]["timestamp"]
    assert (stamp["format"], stamp["pattern"]) == ("date-time", records.TIMESTAMP_PATTERN)
    assert tuple(schema["$defs"]["message"]["properties"]["role"]["enum"]) == records.ROLES
    if name == "feedback":
        assert tuple(schema["properties"]["kind"]["enum"]) == records.KINDS
        assert schema["properties"]["actor"]["pattern"] == records.ACTOR_PATTERN
        assert set(schema["properties"]["implicit"]["properties"]["action"]["enum"]) == set(records.IMPLICIT_ACTIONS)
        # every kind carries its details in an object of its name
        assert {rule["if"]["properties"]["kind"]["const"] for rule in schema["allOf"]} == set(records.KINDS)


def test_the_extract_stage_checks_with_the_record_modules_patterns():
    """The SQL macros are built from rlops.records, not from a copy."""
    from rlops.extract import load

    class Capture:
        sql = ""

        def execute(self, sql):
            self.sql += sql

    con = Capture()
    load.create_macros(con)
    assert records.TIMESTAMP_PATTERN in con.sql and records.ID_PATTERN in con.sql
    assert f"length(x) <= {records.ID_MAX}" in con.sql


def test_the_timestamp_table_in_docs_is_the_rule():
    """docs/records.md's table of accepted and refused timestamps is what rlops.records decides."""
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs/records.md").read_text(encoding="utf-8")
    table = doc.split("## Timestamps", 1)[1].split("\n\n")[2]
    accepted, refused = [], []
    for row in table.splitlines()[2:]:
        left, right = row.strip("|").split("|")
        accepted += re.findall(r"`(\d[^`]*)`", left)
        refused += re.findall(r"`(\d[^`]*)`", right)
    assert len(accepted) >= 4 and len(refused) >= 7
    assert [t for t in accepted if not records.is_timestamp(t)] == []
    assert [t for t in refused if records.is_timestamp(t)] == []


# -- the extract stage's recipe: steps and rules name the tables they read and make ------------------------------


def test_every_signal_is_a_registered_rule_that_declares_its_tables():
    from rlops.extract import rules
    from rlops.extract.params import SIGNALS

    assert tuple(rules.RULES) == SIGNALS
    made_before_rules = {"fb", "fb_dup", "ix", "ix_dup", "ih", "quarantine", "good_ix", "good_fb", "ev", "ev_drop",
                         "prompts", "ans", "texts", "contam", "cand", "notes"}
    for rule in rules.RULES.values():
        assert rule.reads and set(rule.reads) <= made_before_rules, rule.name
        assert "cand" in rule.writes and set(rule.writes) <= {"cand", "notes"}, rule.name


def test_a_step_that_reads_or_makes_undeclared_tables_stops_the_stage():
    import duckdb

    from rlops.errors import StageFailed

    con = duckdb.connect(":memory:")
    step = extract_run.Steps(con)
    step(lambda c: c.execute("CREATE TABLE a (x INT)"), reads=(), makes=("a",))
    with pytest.raises(StageFailed, match="reads b, which no earlier step made"):
        step(lambda c: None, reads=("a", "b"), makes=())
    with pytest.raises(StageFailed, match="did not make c"):
        step(lambda c: c.execute("CREATE TABLE d (x INT)"), reads=("a",), makes=("c",))


def test_a_rule_inserts_by_column_name(tmp_path):
    """A rule registered in a test names its columns; the row is written with the values where it put them."""
    from rlops.extract import rules

    original = rules.RULES["pairwise"]  # restored below: the registry is the process's

    @rules.register("pairwise", "chosen over rejected, columns in another order", reads=("ev",), writes=("cand",))
    def reordered(con, params):
        con.execute("""INSERT INTO cand BY NAME SELECT [e.iid, e.pairwise.rejected_id] AS iids, [e.eid] AS eids,
            1.0 AS weight, 'i:' || e.pairwise.rejected_id AS b, 'i:' || e.iid AS a, e.iid AS prompt_iid,
            'pairwise' AS rule, 'pairs' AS set FROM ev e WHERE e.kind = 'pairwise'""")

    try:
        assert rules.RULES["pairwise"].function is reordered
        root = tmp_path
        ixs = [interaction("i-1", answer="Good answer here."), interaction("i-2", answer="Bad answer there.")]
        fbs = [{"schema": "rlops.feedback/v1", "event_id": "f-1", "interaction_id": "i-1",
                "timestamp": "2026-11-03T10:20:00Z", "actor": "staff:alice", "kind": "pairwise",
                "pairwise": {"chosen_id": "i-1", "rejected_id": "i-2"}}]
        (root / "logs").mkdir()
        (root / "logs/interactions.jsonl").write_text(lines(ixs))
        (root / "logs/feedback.jsonl").write_text(lines(fbs))
        (root / "evals/heldout").mkdir(parents=True)
        (root / "evals/heldout/prompts.jsonl").write_text(json.dumps({"id": "h", "prompt": "opening hours?"}) + "\n")
        extract_run.run(params(signals=["pairwise"]), root, root / "out")
    finally:
        rules.RULES["pairwise"] = original
    (pair,) = [json.loads(x) for x in (root / "out/pairs.jsonl").read_text().splitlines()]
    assert pair["chosen"][-1]["content"] == "Good answer here."
    assert pair["rejected"][-1]["content"] == "Bad answer there."
    assert pair["meta"]["event_ids"] == ["f-1"] and pair["meta"]["interaction_ids"] == ["i-1", "i-2"]


def test_the_importers_write_what_the_record_rules_accept():
    from rlops.observe.importers.builders import safe_id, timestamp

    for value in ["2026-11-03 10:15:00", "2026-11-03T10:15:00+0100", "2026-11-03T10:15:00.123456789Z",
                  "2026-11-03T10:15:00-05:30", 1_762_164_900, 1_762_164_900_123, 1_762_164_900_123_456_789]:
        assert records.is_timestamp(timestamp(value)), value
    for parts in (("run", "a b/c"), ("-x",), ("é" * 300,), ("ok.id",), ("x" * records.ID_MAX, "y")):
        assert records.is_id(safe_id(*parts)), parts


def test_the_implicit_weights_cover_exactly_the_recorded_implicit_actions():
    """A new implicit action in rlops/records.py needs its weight in settings.ImplicitWeights (and the reverse)."""
    from rlops.extract import params

    assert set(params.IMPLICIT_ACTIONS) == set(records.IMPLICIT_ACTIONS)
    assert params.KINDS is records.KINDS
