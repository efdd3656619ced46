"""Record format v1: the interaction, feedback and preference schemas, the documented examples, the example data."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from conftest import undocumented_fields
from jsonschema import Draft202012Validator

from rlops.extract.validators import schema_problems
from rlops.spec import schema
from rlops.spec.validate import validate_paths

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "rlops/spec/schemas"
DOC = ROOT / "docs/records.md"
KINDS = ["rating", "pairwise", "ranking", "edit", "implicit", "outcome", "judge", "comment"]
RULES = ["edit", "pairwise", "ranking", "rating", "implicit", "outcome", "judge"]


def load(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def messages(record: dict, name: str) -> list[str]:
    """What `rlops validate` says about one record (field: message)."""
    return [f"{p.field}: {p.message}" for p in schema.check(record, name, "", lambda _path: None)]


def doc_examples() -> list[dict]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    return [json.loads(block) for block in blocks]


def examples_of(family: str) -> list[dict]:
    return [r for r in doc_examples() if r["schema"] == f"rlops.{family}/v1"]


def feedback_example(kind: str) -> dict:
    return copy.deepcopy(next(r for r in examples_of("feedback") if r["kind"] == kind))


def interaction_example() -> dict:
    return copy.deepcopy(next(r for r in examples_of("interaction") if "tool_definitions" in r))


# -- the schemas themselves ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["interaction", "feedback", "preference"])
def test_schemas_are_2020_12_and_document_every_field(name):
    document = load(name)
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == f"urn:rlops:schema:{name}:v1"
    assert undocumented_fields(document, name) == []


def test_the_three_schemas_share_one_message_format():
    defs = [load(name)["$defs"] for name in ("interaction", "feedback", "preference")]
    assert defs[0]["message"] == defs[1]["message"] == defs[2]["message"]
    assert defs[0]["tool_call"] == defs[1]["tool_call"] == defs[2]["tool_call"]
    assert defs[0]["id"] == defs[1]["id"]


def test_feedback_kinds_and_preference_rules_are_the_contract():
    feedback = load("feedback")
    assert feedback["properties"]["kind"]["enum"] == KINDS
    assert all(kind in feedback["properties"] for kind in KINDS)
    assert load("preference")["properties"]["meta"]["properties"]["rule"]["enum"] == RULES


# -- documented examples ---------------------------------------------------------------------------------------


def test_every_documented_example_is_valid_and_every_kind_has_one():
    found = doc_examples()
    assert len(found) >= 2 + len(KINDS)
    for record in found:
        name = record["schema"].removeprefix("rlops.").removesuffix("/v1")
        assert messages(record, name) == [], record
    assert sorted(r["kind"] for r in examples_of("feedback")) == sorted(KINDS)
    full = interaction_example()
    for field in load("interaction")["properties"]:
        assert field in full or field in ("regenerates", "shadow_of"), f"the full example lacks {field}"
    assert any("regenerates" in r for r in examples_of("interaction"))
    assert any("shadow_of" in r for r in examples_of("interaction"))


def test_documented_examples_pass_rlops_validate(tmp_path):
    (tmp_path / "interactions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in examples_of("interaction")))
    (tmp_path / "feedback.jsonl").write_text("".join(json.dumps(r) + "\n" for r in examples_of("feedback")))
    assert validate_paths([tmp_path], tmp_path) == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_kind_without_its_details_is_refused_naming_them(kind):
    record = feedback_example(kind)
    del record[kind]
    said = messages(record, "feedback")
    assert said == [f"{kind}: missing required key '{kind}' (kind {kind} carries its details in an object named "
                    f"{kind})"]
    assert f"{kind}: missing" in schema_problems("feedback", record)  # what extraction's quarantine says


@pytest.mark.parametrize("kind, change, field, words", [
    ("rating", lambda d: d.pop("scale"), "rating.scale", "missing required key 'scale'"),
    ("pairwise", lambda d: d.update(shown_order=["a"]), "pairwise.shown_order", "too short"),
    ("ranking", lambda d: d.update(ranked_ids=["i-1"]), "ranking.ranked_ids", "too short"),
    ("ranking", lambda d: d.update(ranked_ids=["i-1", "i-1"]), "ranking.ranked_ids", "non-unique"),
    ("edit", lambda d: d.update(output_messages=[]), "edit.output_messages", "must not be empty"),
    ("implicit", lambda d: d.update(action="like"), "implicit.action", "use one of: copy, regenerate, abandon"),
    ("outcome", lambda d: d.update(success="yes"), "outcome.success", "expected boolean"),
    ("judge", lambda d: d.pop("rubric"), "judge.rubric", "missing required key 'rubric'"),
    ("judge", lambda d: d.update(scale=[1]), "judge.scale", "too short"),
    ("comment", lambda d: d.update(text=None), "comment.text", "expected string"),
])
def test_bad_details_name_their_field(kind, change, field, words):
    record = feedback_example(kind)
    change(record[kind])
    said = messages(record, "feedback")
    assert len(said) == 1 and said[0].startswith(f"{field}: ") and words in said[0], said


def test_idempotency_key_and_actor_are_checked():
    record = feedback_example("rating")
    record.update(idempotency_key="", actor="alice")
    said = messages(record, "feedback")
    assert any(m.startswith("idempotency_key: must not be empty") for m in said), said
    assert any(m.startswith("actor: 'alice' does not match") for m in said), said


# -- messages with tool calls ----------------------------------------------------------------------------------


def test_tool_call_messages_are_valid_and_null_content_needs_them():
    record = interaction_example()
    call = record["output_messages"][0]
    assert call["content"] is None and call["tool_calls"]
    assert messages(record, "interaction") == []

    del call["tool_calls"]
    assert messages(record, "interaction") == ["output_messages[0].tool_calls: missing required key 'tool_calls' "
                                               "(content may be null only in an assistant message with tool_calls)"]


@pytest.mark.parametrize("change, field, words", [
    (lambda r: r["input_messages"][0].update(tool_calls=[{"id": "c", "type": "function",
                                                          "function": {"name": "f", "arguments": "{}"}}]),
     "input_messages[0].role", "'user' is not allowed; use one of: assistant"),
    (lambda r: r["output_messages"][0]["tool_calls"][0]["function"].update(arguments={"a": 1}),
     "output_messages[0].tool_calls[0].function.arguments", "expected string"),
    (lambda r: r["output_messages"][0]["tool_calls"][0].update(type="retrieval"),
     "output_messages[0].tool_calls[0].type", "'function'"),
    (lambda r: r["output_messages"][1].update(tool_call="call_1"), "output_messages[1].tool_call",
     "unknown key 'tool_call'"),
    (lambda r: r.update(trace_id="4BF92F3577B34DA6A3CE929D0E0E4736"), "trace_id", "does not match"),
    (lambda r: r.update(span_id="00f067aa"), "span_id", "does not match"),
    (lambda r: r["agent"].update(stage="staging"), "agent.stage", "use one of: production, shadow, canary"),
    (lambda r: r["outcome"].update(task_success=1), "outcome.task_success", "expected boolean"),
    (lambda r: r["outcome"].update(latency_ms=-1), "outcome.latency_ms", "less than the minimum of 0"),
    (lambda r: r["steps"][0].update(duration_ms="fast"), "steps[0].duration_ms", "expected number"),
    (lambda r: r["tool_definitions"][0]["function"].pop("name"), "tool_definitions[0].function.name",
     "missing required key 'name'"),
    (lambda r: r.update(regenerates="not an id"), "regenerates", "does not match"),
])
def test_bad_interaction_fields_are_named(change, field, words):
    record = interaction_example()
    change(record)
    said = messages(record, "interaction")
    assert len(said) == 1 and said[0].startswith(f"{field}: ") and words in said[0], said


def test_preference_rows_may_carry_tool_calls_and_every_rule():
    interaction = interaction_example()
    for rule in RULES:
        row = {"prompt": [{"role": "system", "content": "Be brief."}, *interaction["input_messages"]],
               "chosen": interaction["output_messages"], "rejected": [{"role": "assistant", "content": "No idea."}],
               "meta": {"rule": rule, "interaction_ids": ["i-1", "i-2"], "event_ids": ["f-1"]}}
        assert messages(row, "preference") == []
    row["meta"]["rule"] = "thumbs"
    assert messages(row, "preference") == [f"meta.rule: 'thumbs' is not allowed; use one of: {', '.join(RULES)}"]


# -- the committed example data --------------------------------------------------------------------------------


def test_example_data_is_valid_except_the_planted_lines():
    """Every example record stays valid under v1; only the deliberately broken lines fail, for their planted reason."""
    failing = {}
    for file, name in (("interactions.jsonl", "interaction"), ("feedback.jsonl", "feedback")):
        lines = (ROOT / "data/example" / file).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                failing[(file, number)] = "not JSON"
                continue
            problems = schema_problems(name, record)
            if problems:
                failing[(file, number)] = "; ".join(problems)
    reasons = sorted(failing.values())
    assert reasons == sorted([
        "not JSON", "not JSON", "interaction_id: missing", "interaction_id: missing",
        "input_messages[0].role: 'customer' is not one of ['system', 'user', 'assistant', 'tool']",
        f"kind: 'thumbs_up' is not one of {KINDS}",
        # the planted naive time: the schema's timestamp rule (rlops.records) refuses it, as extraction does
        "timestamp: '2026-11-14 09:12:44' is not an RFC 3339 date-time with a time-zone offset; "
        "write e.g. 2026-11-03T10:15:00Z",
    ]), failing
