"""`rlops import`: other tools' logs and preference datasets become valid v1 records, without losing what trains.

Samples under tests/data/import/<format>/ follow the real export formats (OTLP/JSON, Langfuse API objects, LangSmith
runs and feedback, HH-RLHF lines ...) and each holds malformed records that must be quarantined with a reason.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from rlops.errors import InvalidInput
from rlops.observe.importers import names
from rlops.observe.importers.builders import Options
from rlops.observe.importers.driver import OUTPUTS, import_logs
from rlops.observe.importers.source import records as source_records
from rlops.spec.schema import load_schema

FORMATS = names()
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "import"
VALIDATORS = {name: Draft202012Validator(load_schema(name)) for name in ("interaction", "feedback")}


def run_import(fmt: str, out: Path, source: Path | None = None, **options) -> tuple[list[dict], list[dict], list[dict], dict]:
    import_logs(fmt, source or DATA / fmt, out, Options(**options))
    read = [[json.loads(line) for line in (out / name).read_text(encoding="utf-8").splitlines()] for name in OUTPUTS[:3]]
    return read[0], read[1], read[2], json.loads((out / OUTPUTS[3]).read_text(encoding="utf-8"))


def rfc3339_utc(value: str) -> bool:
    return value.endswith("Z") and dt.datetime.fromisoformat(value[:-1]).tzinfo is None


def by_id(records: list[dict], key: str = "interaction_id") -> dict[str, dict]:
    return {r[key]: r for r in records}


def reasons(quarantined: list[dict]) -> str:
    return "\n".join(f"{q['file']}:{q['line']}: {q['reason']}" for q in quarantined)


# ---- every format -------------------------------------------------------------------------------------------------


def test_a_langfuse_list_that_is_not_a_list_is_quarantined_not_a_crash(tmp_path):
    """Found by the property test below: `"observations": true` on a trace made the importer iterate a bool."""
    (tmp_path / "src").mkdir()
    trace = {"id": "t-1", "name": "support", "input": "Hi", "output": "Hello", "observations": True}
    (tmp_path / "src/traces.json").write_text(json.dumps({"traces": [trace], "scores": False}), encoding="utf-8")
    _, _, quarantined, _ = run_import("langfuse", tmp_path / "out", source=tmp_path / "src")
    assert "observations: must be a list or an API page {\"data\": [...]}, not bool" in reasons(quarantined)
    assert "scores: must be a list or an API page {\"data\": [...]}, not bool" in reasons(quarantined)


@pytest.mark.parametrize("fmt, file", [("langsmith", "runs.jsonl"), ("langfuse", "traces.json")])
def test_a_tool_name_that_is_not_text_gives_the_default_name(fmt, file, tmp_path):
    """Found by the property test below: a tool run named `true` gave a step whose name was not a string."""
    src = tmp_path / "src"
    shutil.copytree(DATA / fmt, src)
    text = (src / file).read_text(encoding="utf-8")
    assert text.count('"name": "lookup_order", "run_type": "tool"' if fmt == "langsmith" else '"type": "TOOL",\n        "name": "lookup_order"') == 1
    (src / file).write_text(text.replace('"name": "lookup_order", "run_type": "tool"', '"name": true, "run_type": "tool"')
                            .replace('"type": "TOOL",\n        "name": "lookup_order"', '"type": "TOOL",\n        "name": true'),
                            encoding="utf-8")
    interactions, _, _, _ = run_import(fmt, tmp_path / "out", source=src)
    steps = [s for i in interactions for s in i.get("steps", [])]
    assert steps and all(s["name"] == "tool" for s in steps)
    for record in interactions:
        assert list(VALIDATORS["interaction"].iter_errors(record)) == []

@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_record_is_valid_v1_and_malformed_input_is_quarantined(fmt, tmp_path):
    interactions, events, quarantined, report = run_import(fmt, tmp_path / "out")
    assert interactions and events or fmt == "openai"  # the OpenAI logs carry no feedback
    for name, records in (("interaction", interactions), ("feedback", events)):
        for record in records:
            errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATORS[name].iter_errors(record)]
            assert errors == [], (name, record)
            assert record["schema"] == f"rlops.{name}/v1" and rfc3339_utc(record["timestamp"])
    known = {r["interaction_id"] for r in interactions}
    for event in events:  # every event is about an interaction of the same import
        assert event["interaction_id"] in known
        for key in ("chosen_id", "rejected_id"):
            assert event.get("pairwise", {}).get(key, event["interaction_id"]) in known
    assert quarantined, "every sample holds malformed records"
    for q in quarantined:
        assert q["file"].startswith(str(DATA / fmt)) and isinstance(q["line"], int) and q["reason"]
    assert report["read"] > 0 and report["quarantined"] == len(quarantined)
    assert report["interactions"] == len(interactions) and report["feedback"]["total"] == len(events)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_importing_twice_gives_identical_bytes(fmt, tmp_path):
    for out in ("a", "b"):
        import_logs(fmt, DATA / fmt, tmp_path / out, Options())
    for name in OUTPUTS:
        first, second = (tmp_path / "a" / name).read_bytes(), (tmp_path / "b" / name).read_bytes()
        assert first == second, name
    assert (tmp_path / "a" / OUTPUTS[0]).stat().st_size > 0


# ---- field fidelity, per format -----------------------------------------------------------------------------------

def test_otel_keeps_tool_calls_results_usage_ids_and_evaluations(tmp_path):
    interactions, events, quarantined, report = run_import("otel", tmp_path / "out")
    got = by_id(interactions)
    first = got["otel-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331"]
    assert first["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and first["span_id"] == "b7ad6b7169203331"
    assert first["agent"] == {"name": "support-agent", "version": "v3"}  # from the parent invoke_agent span
    assert first["conversation_id"] == "conv_5j66UpCpwteGg4YSxUnt7lPY" and first["user"] == "customer-4821"
    assert first["system_instructions"] == "You are Northwind's support agent. Be brief and kind."
    assert first["tool_definitions"][0]["function"]["name"] == "lookup_order"
    assert first["tool_definitions"][0]["function"]["parameters"]["required"] == ["order_number"]
    call = first["output_messages"][0]
    assert call["content"] is None
    assert call["tool_calls"][0]["id"] == "call_8Zq1"
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == {"order_number": "NW-88102"}
    assert first["usage"] == {"input_tokens": 182, "output_tokens": 19}
    assert first["outcome"] == {"status": "ok", "latency_ms": 890.0}
    # the execute_tool span is a sibling: its call id ties it to the answer that asked for it
    assert first["steps"] == [{"type": "tool_call", "name": "lookup_order", "call_id": "call_8Zq1",
                               "arguments": {"order_number": "NW-88102"},
                               "result": {"status": "at_depot", "eta": "2025-11-04"}, "duration_ms": 220.0}]
    second = got["otel-4bf92f3577b34da6a3ce929d0e0e4736-d4e5f60718293a4b"]
    tool_msg = second["input_messages"][2]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_8Zq1"
    assert json.loads(tool_msg["content"]) == {"status": "at_depot", "eta": "2025-11-04"}
    assert second["output_messages"][0]["content"].startswith("Your order NW-88102 is at the local depot")
    # an agent span with messages is the interaction: the model call inside is folded, its usage summed
    agent = got["otel-0af7651916cd43dd8448eb211c80319c-53995c3f42cd8ad8"]
    assert agent["usage"] == {"input_tokens": 120, "output_tokens": 14}
    assert agent["steps"][0]["name"] == "cancel_order"
    assert agent["steps"][0]["error"] == "payment service timed out; retried once"
    judged = by_id(events, "event_id")
    relevance = next(e for e in events if e["kind"] == "judge" and e["judge"]["rubric"] == "Relevance")
    assert relevance["interaction_id"] == second["interaction_id"] and relevance["judge"]["score"] == 4.0
    assert relevance["judge"]["explanation"] == "relevant: Answers the question with the delivery date."
    assert relevance["actor"] == "judge:Relevance" and relevance["timestamp"] == "2025-11-01T10:00:05Z"
    # an evaluator's own trace finds the evaluated answer by gen_ai.response.id
    grounded = next(e for e in events if e.get("judge", {}).get("rubric") == "Groundedness")
    assert grounded["interaction_id"] == second["interaction_id"] and grounded["judge"]["model"] == "gpt-4.1"
    # the same event sent as an OTLP log record names its span by traceId/spanId
    logged = next(e for e in events if e.get("judge", {}).get("rubric") == "ToolCallAccuracy")
    assert logged["interaction_id"] == first["interaction_id"] and logged["timestamp"] == "2025-11-01T12:00:00Z"
    label_only = next(e for e in judged.values() if e["kind"] == "comment")
    assert label_only["comment"]["text"] == "IntentResolution: resolved"
    text = reasons(quarantined)
    assert "traces.jsonl:4: not JSON" in text
    assert "traceId: 'not-a-trace-id' is not a 32-hex-digit trace id" in text
    assert "attributes.gen_ai.input.messages: not JSON" in text
    assert "gen_ai.evaluation.result: about no imported interaction" in text
    assert report["unmapped"]["attributes.gen_ai.request.model"] == 2
    assert report["unmapped"]["message.parts.reasoning"] == 1
    assert report["read_unit"] == "spans and log records" and report["read"] == 14
    assert report["skipped"]["span without GenAI messages (POST /payments/refund)"] == 1


def test_openai_logs_and_batch_files(tmp_path):
    interactions, _, quarantined, report = run_import("openai", tmp_path / "out")
    got = by_id(interactions)
    first = got["openai-chatcmpl-BDx1aZ"]
    assert first["timestamp"] == "2025-11-01T10:00:00Z" and first["user"] == "customer-4821"
    assert first["input_messages"][0] == {"role": "system", "content": "You are Northwind's support agent. Be brief and kind."}
    assert first["output_messages"][0]["tool_calls"][0]["function"] == {"name": "lookup_order",
                                                                       "arguments": '{"order_number":"NW-88102"}'}
    assert first["tool_definitions"][0]["function"]["strict"] is True
    assert first["usage"] == {"input_tokens": 96, "output_tokens": 18} and first["outcome"]["latency_ms"] == 812
    follow_up = got["openai-chatcmpl-BDx1bQ"]
    assert follow_up["input_messages"][3] == {"role": "tool", "content": '{"status":"at_depot","eta":"2025-11-04"}',
                                              "tool_call_id": "call_Q1kd"}
    # n=2: one interaction per choice; a truncated choice says so
    assert got["openai-chatcmpl-BDx2cc.0"]["input_messages"][0]["content"] == "Write a one-line apology for a late parcel."
    assert got["openai-chatcmpl-BDx2cc.1"]["outcome"]["detail"] == "finish_reason: length"
    # Batch API: output lines joined to their requests on custom_id
    batch = got["openai-chatcmpl-CB1001"]
    assert batch["input_messages"][1]["content"] == "Can I return a lamp after 30 days?"
    text = reasons(quarantined)
    assert "response.error: the call failed: Rate limit reached" in text
    assert "custom_id: 'ticket-9999' has no request line" in text
    assert "response.status_code: 500" in text
    assert "request.messages[0].role: 'narrator' is not a chat role" in text
    assert report["unmapped"]["request.model"] == 5 and report["unmapped"]["response.system_fingerprint"] == 1


def test_langfuse_generations_tools_and_scores(tmp_path):
    interactions, events, quarantined, report = run_import("langfuse", tmp_path / "out")
    got = by_id(interactions)
    caller, answer = got["langfuse-a1b2c3d4e5f60718"], got["langfuse-c3d4e5f607182930"]
    assert caller["trace_id"] == "7e2d4a1bc3f94e8d9a0b1c2d3e4f5061" and caller["span_id"] == "a1b2c3d4e5f60718"
    assert caller["conversation_id"] == "sess-20251101-4821" and caller["user"] == "customer-4821"
    assert caller["agent"] == {"name": "support-chat", "version": "v3"}
    assert caller["tool_definitions"][0]["function"]["name"] == "lookup_order"
    assert caller["output_messages"][0]["tool_calls"][0]["id"] == "call_lf1"
    assert caller["usage"] == {"input_tokens": 88, "output_tokens": 17}
    assert caller["steps"][0]["result"] == {"item": "brass desk lamp", "delivered": "2025-10-30"}
    assert answer["input_messages"][3]["role"] == "tool" and answer["usage"] == {"input_tokens": 130, "output_tokens": 22}
    assert got["langfuse-gen-t2-1"]["trace_id"] == "9f8e7d6c5b4a439281706f5e4d3c2b1a"  # a UUID trace id as hex
    kinds = {e["event_id"]: e for e in events}
    correction = kinds["langfuse-score-corr-1"]
    assert correction["kind"] == "edit" and correction["interaction_id"] == answer["interaction_id"]
    assert correction["edit"]["output_messages"][0]["content"].startswith("I'm so sorry your brass desk lamp")
    assert kinds["langfuse-score-thumb-1"]["rating"] == {"value": 1, "scale": [0, 1]}
    # numeric scores: the scale is the smallest usual one holding every value of that name (2, 4, 5)
    assert kinds["langfuse-score-helpful-1"]["rating"] == {"value": 4, "scale": [1, 5]}
    assert kinds["langfuse-score-helpful-1"]["interaction_id"] == answer["interaction_id"]  # trace score: final answer
    assert kinds["langfuse-score-helpful-1:comment"]["comment"]["text"].startswith("Good, but")
    assert kinds["langfuse-score-tone-1"]["comment"]["text"] == "tone: too casual"
    assert kinds["langfuse-score-faith-1"]["judge"]["score"] == 0.82 and kinds["langfuse-score-faith-1"]["actor"] == "judge:faithfulness"
    assert report["rating_scales"] == {"helpfulness": [1, 5]}
    text = reasons(quarantined)
    assert "output: missing (the generation failed: Request timed out)" in text
    assert "traceId: 00000000000000000000000000000bad is not an imported trace" in text
    assert "scores.jsonl:4: not JSON" in text
    assert report["skipped"]["score about a session, not a trace or observation"] == 1


def test_langfuse_exports_from_either_api_version_give_the_same_records_and_the_correction_trains(tmp_path):
    """tests/data/import/langfuse-v3 is the export of tests/data/import/langfuse read through the newer API: a
    GET /api/public/traces page (observation and score ids only), GET /api/public/v2/observations cursor pages
    (input/output as raw JSON text) and GET /api/public/v3/scores cursor pages (`subject`, polymorphic `value`)."""
    from tests.test_extract import extract, params  # noqa: F401  (the extract stage's own test harness)

    v1 = run_import("langfuse", tmp_path / "v1")
    v3 = run_import("langfuse", tmp_path / "v3", source=DATA / "langfuse-v3")
    assert v3[0] == v1[0] and len(v1[0]) == 3
    assert v3[1] == v1[1] and len(v1[1]) == 8
    edit = by_id(v3[1], "event_id")["langfuse-score-corr-1"]
    assert edit["kind"] == "edit" and edit["interaction_id"] == "langfuse-c3d4e5f607182930"
    assert v3[3]["skipped"]["score about a session, not a trace or observation"] == 1
    assert "subject.id: 00000000000000000000000000000bad is not an imported trace" in reasons(v3[2])
    # extraction turns the correction into a preference pair: the corrected answer over the original
    root = tmp_path / "cycle"
    (root / "logs").mkdir(parents=True)
    for name in ("interactions.jsonl", "feedback.jsonl"):
        shutil.copy(tmp_path / "v3" / name, root / "logs" / name)
    (root / "evals/heldout").mkdir(parents=True)
    (root / "evals/heldout/prompts.jsonl").write_text('{"id": "h-0", "prompt": "What are your opening hours?"}\n')
    _, rows, _ = extract(root, signals=["edit"])
    (pair,) = rows["pairs"]
    assert pair["meta"]["rule"] == "edit" and pair["meta"]["event_ids"] == ["langfuse-score-corr-1"]
    assert pair["chosen"][0]["content"] == edit["edit"]["output_messages"][0]["content"]
    assert pair["rejected"][0]["content"].startswith("Sorry about that!")


def test_langfuse_pages_inside_an_export_wrapper_are_read(tmp_path):
    """A wrapper whose `scores` is an API page (as saved from GET /api/public/v2/scores) was quarantined whole."""
    (tmp_path / "src").mkdir()
    traces = json.loads((DATA / "langfuse" / "traces.json").read_text(encoding="utf-8"))
    nested = [{"traceId": t["id"], **s} for t in traces for s in t.pop("scores")]
    wrapper = {"traces": {"data": traces, "meta": {"page": 1, "limit": 50, "totalItems": 3, "totalPages": 1}},
               "scores": {"data": nested, "meta": {"cursor": "eyJwYWdlIjoyfQ"}}}
    (tmp_path / "src/export.json").write_text(json.dumps(wrapper), encoding="utf-8")
    interactions, events, quarantined, _ = run_import("langfuse", tmp_path / "out", source=tmp_path / "src")
    assert len(interactions) == 3 and {e["kind"] for e in events} == {"edit", "rating", "comment", "judge"}
    assert len(events) == len(nested) + 1  # the rating's comment is its own event
    assert quarantined[0]["path"] == "traces.data[2].observations[0]" and "output: missing" in quarantined[0]["reason"]


def test_langfuse_v3_scores_about_sessions_and_experiments_are_skipped_and_said_so(tmp_path):
    scores = [{"id": f"s-{kind}", "name": "csat", "value": True, "dataType": "BOOLEAN", "source": "API",
               "timestamp": "2026-01-01T00:00:00Z", "subject": {"kind": kind, "id": f"{kind}-1"}}
              for kind in ("session", "experiment")]
    (tmp_path / "scores.json").write_text(json.dumps({"data": scores, "meta": {}}), encoding="utf-8")
    p = rlops("import", "langfuse", str(tmp_path / "scores.json"), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr  # nothing is wrong with the input: there is nothing to train on in it
    skipped = next(line for line in p.stdout.splitlines() if line.lstrip().startswith("skipped"))
    assert skipped.split()[:2] == ["skipped", "2"]
    assert "score about a session, not a trace or observation (1)" in skipped
    assert "score about an experiment (dataset run), not a trace or observation (1)" in skipped
    assert "nothing to import" in p.stderr and "quarantine.jsonl" not in p.stderr
    assert (tmp_path / "o" / "quarantine.jsonl").read_text(encoding="utf-8") == ""


def test_langfuse_scale_option_widens_the_rating_scale(tmp_path):
    _, events, _, report = run_import("langfuse", tmp_path / "out", scales={"helpfulness": (0, 10)})
    assert by_id(events, "event_id")["langfuse-score-helpful-2"]["rating"] == {"value": 2, "scale": [0, 10]}
    assert report["rating_scales"]["helpfulness"] == [0, 10]


def test_langsmith_runs_and_feedback(tmp_path):
    interactions, events, quarantined, report = run_import("langsmith", tmp_path / "out")
    got = by_id(interactions)
    first = got["langsmith-809ed3a2-0172-4f4d-8a02-a64e9b7a0f8a"]
    assert first["input_messages"] == [{"role": "system", "content": "You are Northwind's support agent. Be brief and kind."},
                                       {"role": "user", "content": "The mug I ordered (NW-55120) came chipped."}]
    assert first["output_messages"][0]["tool_calls"][0] == {
        "id": "call_ls1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order_number": "NW-55120"}'}}
    assert first["usage"] == {"input_tokens": 97, "output_tokens": 18}
    assert first["agent"] == {"name": "support-agent", "version": "v3"} and first["conversation_id"] == "thread-4821-01"
    assert first["trace_id"] == "1b64098b4ab743f6afee992304f198d8"
    assert first["steps"][0]["name"] == "lookup_order" and first["steps"][0]["result"]["item"] == "stoneware mug"
    assert first["tool_definitions"][0]["function"]["name"] == "lookup_order"
    final = got["langsmith-2e4f6a8c-1b3d-4e5f-8a9b-0c1d2e3f4a5b"]
    assert final["input_messages"][3] == {"role": "tool", "content": '{"item": "stoneware mug", "delivered": "2025-11-02"}',
                                          "name": "lookup_order", "tool_call_id": "call_ls1"}
    assert final["usage"] == {"input_tokens": 141, "output_tokens": 21}  # from the message's usage_metadata
    wrapped = got["langsmith-3c5e7a9b-2d4f-4a6c-8e0a-1b2c3d4e5f60"]  # a wrap_openai run: OpenAI shapes
    assert wrapped["output_messages"][0]["content"].startswith("Yes - open the order")
    assert wrapped["usage"] == {"input_tokens": 31, "output_tokens": 20}
    ev = by_id(events, "event_id")
    edit = ev["langsmith-f0a1b2c3-0001-4000-8000-000000000001"]
    assert edit["kind"] == "edit" and edit["actor"] == "user:staff-alice"
    assert edit["edit"]["output_messages"][0]["content"].startswith("I'm so sorry your stoneware mug")
    thumbs = ev["langsmith-f0a1b2c3-0002-4000-8000-000000000002:score"]
    assert thumbs["interaction_id"] == final["interaction_id"]  # feedback on the root run: the final answer
    assert thumbs["rating"] == {"value": 1, "scale": [0, 1]}
    assert ev["langsmith-f0a1b2c3-0003-4000-8000-000000000003:score"]["rating"] == {"value": 0.9, "scale": [0, 1]}
    judge = ev["langsmith-f0a1b2c3-0004-4000-8000-000000000004"]["judge"]
    assert judge == {"model": "gpt-4.1", "rubric": "correctness", "score": 1, "scale": [0, 1],
                     "explanation": "Matches the order record."}
    assert ev["langsmith-f0a1b2c3-0005-4000-8000-000000000005:value"]["comment"]["text"] == "tone: warm"
    pair = next(e for e in events if e["kind"] == "pairwise")
    assert pair["pairwise"] == {"chosen_id": wrapped["interaction_id"],
                                "rejected_id": "langsmith-4d6f8b0c-3e5a-4b7d-9f1b-2c3d4e5f6071"}
    text = reasons(quarantined)
    assert "outputs: missing (the run failed: APITimeoutError('Request timed out.'))" in text
    assert "run_id: 99999999-9999-4999-8999-999999999999 is not an imported run" in text
    assert "runs.jsonl:8: not JSON" in text
    assert report["unmapped"]["run.inputs.temperature"] == 2


def test_hh_rlhf_transcripts_become_a_pair_with_a_shared_prompt(tmp_path):
    interactions, events, quarantined, _ = run_import("hh-rlhf", tmp_path / "out")
    got = by_id(interactions)
    basil = [e for e in events if len(got[e["pairwise"]["chosen_id"]]["input_messages"]) == 3]
    assert len(basil) == 1
    chosen, rejected = got[basil[0]["pairwise"]["chosen_id"]], got[basil[0]["pairwise"]["rejected_id"]]
    assert chosen["input_messages"] == rejected["input_messages"] == [
        {"role": "user", "content": "How do I keep basil alive indoors?"},
        {"role": "assistant", "content": "Give it a sunny window, at least six hours of light a day."},
        {"role": "user", "content": "And watering?"}]
    assert chosen["output_messages"] == [{"role": "assistant", "content": "Water when the top inch of soil is dry, and make sure the pot drains."}]
    assert rejected["output_messages"] == [{"role": "assistant", "content": "Every day, a lot."}]
    assert chosen["agent"] == {"name": "hh-rlhf", "version": "imported"} and chosen["timestamp"] == "1970-01-01T00:00:00Z"
    assert basil[0]["actor"] == "dataset:hh-rlhf"
    text = reasons(quarantined)
    assert "train.jsonl:2: not JSON" in text
    assert "train.jsonl:5: chosen/rejected: the transcripts differ before their last Assistant turn (at turn 1)" in text
    assert "train.jsonl:6: chosen: does not end with an '\\n\\nAssistant:' turn" in text


def test_dataset_options_set_agent_and_time(tmp_path):
    interactions, events, _, report = run_import("hh-rlhf", tmp_path / "out", policy="support-agent",
                                                 agent_version="base", timestamp="2026-01-31T00:00:00Z")
    assert {json.dumps(r["agent"]) for r in interactions} == {'{"name": "support-agent", "version": "base"}'}
    assert {r["timestamp"] for r in interactions + events} == {"2026-01-31T00:00:00Z"}
    assert report["options"]["policy"] == "support-agent"


def test_ultrafeedback_scores_become_ratings(tmp_path):
    interactions, events, quarantined, report = run_import("ultrafeedback", tmp_path / "out")
    got = by_id(interactions)
    pair = next(e for e in events if e["kind"] == "pairwise")
    assert got[pair["pairwise"]["chosen_id"]]["input_messages"] == [
        {"role": "user", "content": "How many helicopters can a human eat in one sitting?"}]
    ratings = {got[e["interaction_id"]]["output_messages"][0]["content"]: e["rating"] for e in events if e["kind"] == "rating"}
    assert ratings["None: helicopters are machines, not food."] == {"value": 10.0, "scale": [1, 10]}
    assert ratings["About two, if they are small ones."] == {"value": 1.0, "scale": [1, 10]}
    assert "score_chosen: 11 is outside the scale [1, 10] (set --scale score=LO,HI)" in reasons(quarantined)
    assert report["unmapped"] == {"prompt_id": 2, "source": 1}  # counted only for rows that were imported
    _, _, quarantined, _ = run_import("ultrafeedback", tmp_path / "wide", scales={"score": (0, 20)})
    assert "outside the scale" not in reasons(quarantined)


def test_openai_dpo_keeps_tools_and_tool_calls(tmp_path):
    interactions, events, quarantined, report = run_import("openai-dpo", tmp_path / "out")
    got = by_id(interactions)
    booking = next(e for e in events if got[e["interaction_id"]].get("tool_definitions"))
    chosen = got[booking["pairwise"]["chosen_id"]]
    assert chosen["tool_definitions"][0]["function"]["name"] == "book_table"
    assert chosen["output_messages"][0]["tool_calls"][0]["function"]["name"] == "book_table"
    assert got[booking["pairwise"]["rejected_id"]]["output_messages"] == [{"role": "assistant", "content": "Done! Your table is booked."}]
    assert "dpo.jsonl:3: non_preferred_output: missing" in reasons(quarantined)
    assert report["unmapped"] == {"input.parallel_tool_calls": 1}


def test_trl_preference_standard_conversational_and_implicit_prompt(tmp_path):
    interactions, events, quarantined, report = run_import("trl-preference", tmp_path / "out")
    got = by_id(interactions)
    prompts = [got[e["pairwise"]["chosen_id"]]["input_messages"] for e in events]
    assert prompts == [[{"role": "user", "content": "The sky is"}],
                       [{"role": "user", "content": "What color is the sky?"}],
                       [{"role": "user", "content": "What color is the sky?"}]]  # the implicit prompt, split off
    assert got[events[2]["pairwise"]["chosen_id"]]["output_messages"] == [{"role": "assistant", "content": "It is blue."}]
    text = reasons(quarantined)
    assert "preference.jsonl:4: prompt: missing" in text
    assert "preference.jsonl:6: chosen: the answer starts with a user message" in text
    assert report["skipped"] == {"chosen and rejected are the same answer": 1}


def test_trl_unpaired_labels_become_binary_ratings(tmp_path):
    interactions, events, quarantined, _ = run_import("trl-unpaired", tmp_path / "out")
    got = by_id(interactions)
    labels = [(got[e["interaction_id"]]["output_messages"][0]["content"], e["rating"]["value"]) for e in events]
    assert labels == [(" blue.", 1), (" green.", 0), ("It is green.", 0)]
    assert all(e["rating"]["scale"] == [0, 1] for e in events)
    assert "unpaired.jsonl:4: label: must be true or false, not 'yes'" in reasons(quarantined)


# ---- random and corrupted input ---------------------------------------------------------------------------------

KEYS = ["role", "content", "parts", "prompt", "chosen", "rejected", "completion", "label", "messages", "tool_calls",
        "input", "output", "score", "value", "traceId", "spanId", "attributes", "id", "type", "run_id", "stringValue"]
JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 12) | st.floats(-1, 12) | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4),
                                                                                  inner, max_size=3), max_leaves=6)
PAIRED = {"hh-rlhf": 2, "ultrafeedback": 2, "openai-dpo": 2, "trl-preference": 2, "trl-unpaired": 1}


def corrupt(value, data, depth: int = 0):
    """A copy of `value` with one place (drawn by hypothesis) replaced by random JSON, or removed."""
    if depth > 6 or not isinstance(value, (dict, list)) or not value or data.draw(st.integers(0, 3)) == 0:
        return data.draw(JSON)
    copy = dict(value) if isinstance(value, dict) else list(value)
    key = data.draw(st.sampled_from(sorted(copy) if isinstance(copy, dict) else range(len(copy))))
    if data.draw(st.booleans()) and isinstance(copy, dict):
        del copy[key]
    else:
        copy[key] = corrupt(copy[key], data, depth + 1)
    return copy


@pytest.mark.parametrize("fmt, folder", [(f, f) for f in FORMATS] + [("langfuse", "langfuse-v3")])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_and_corrupted_records_never_crash_and_are_accounted_for(fmt, folder, data, tmp_path_factory):
    """Every output stays valid; for row datasets, read = imported rows + quarantined + skipped."""
    src = tmp_path_factory.mktemp("src")
    for f in sorted((DATA / folder).iterdir()):
        if f.suffix == ".json":
            doc = json.loads(f.read_text(encoding="utf-8"))
            text = json.dumps(corrupt(doc, data) if data.draw(st.booleans()) else doc)
        else:
            lines = []
            for line in f.read_text(encoding="utf-8").splitlines():
                choice = data.draw(st.sampled_from(["keep", "corrupt", "random", "cut"]))
                try:
                    row = json.loads(line)
                except ValueError:
                    choice = "keep"
                lines.append(line if choice == "keep" else line[: len(line) // 2] if choice == "cut" else
                             json.dumps(corrupt(row, data) if choice == "corrupt" else data.draw(JSON)))
            text = "\n".join(lines) + "\n"
        (src / f.name).write_text(text, encoding="utf-8")
    interactions, events, quarantined, report = run_import(fmt, src.parent / (src.name + "-out"), source=src)
    for name, records in (("interaction", interactions), ("feedback", events)):
        for record in records:
            assert list(VALIDATORS[name].iter_errors(record)) == [], record
    if fmt in PAIRED:
        imported = len(interactions) // PAIRED[fmt]
        assert report["read"] == imported + len(quarantined) + sum(report["skipped"].values())


# ---- inputs and outputs -------------------------------------------------------------------------------------------

def test_a_json_array_with_a_broken_element_keeps_what_came_before(tmp_path):
    rows = [{"prompt": "a", "completion": "b", "label": True}, {"prompt": "c", "completion": "d", "label": False}]
    text = "[\n" + ",\n".join(json.dumps(r) for r in rows) + ',\n{"prompt": oops}\n]\n'
    (tmp_path / "rows.json").write_text(text, encoding="utf-8")
    interactions, _, quarantined, _ = run_import("trl-unpaired", tmp_path / "out", source=tmp_path / "rows.json")
    assert len(interactions) == 2
    assert quarantined[0]["line"] == 4 and quarantined[0]["path"] == "[2]"
    assert "the rest of this file was not read" in quarantined[0]["reason"]


def test_duplicate_ids_are_quarantined_not_written_twice(tmp_path):
    line = (DATA / "openai" / "calls.jsonl").read_text(encoding="utf-8").splitlines()[0]
    (tmp_path / "twice.jsonl").write_text(line + "\n" + line + "\n", encoding="utf-8")
    interactions, _, quarantined, _ = run_import("openai", tmp_path / "out", source=tmp_path / "twice.jsonl")
    assert len(interactions) == 1
    assert quarantined == [{"file": str(tmp_path / "twice.jsonl"), "line": 2,
                            "reason": "interaction_id: openai-chatcmpl-BDx1aZ repeats the interaction from "
                                      f"{tmp_path / 'twice.jsonl'}:1"}]


ID_FORMATS = ("otel", "openai", "langfuse", "langsmith")  # records that carry their own ids; the datasets derive them


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_an_export_read_twice_writes_no_id_twice_and_quarantines_every_repeat(fmt, tmp_path):
    """The same export in two folders: a source id seen again is quarantined with its place and the first one's;
    rows of a dataset have no id of their own, so their ids come from file and line and never collide."""
    for copy in ("a", "b"):
        shutil.copytree(DATA / fmt, tmp_path / "src" / copy)
    once = run_import(fmt, tmp_path / "once", source=tmp_path / "src" / "a")
    twice = run_import(fmt, tmp_path / "twice", source=tmp_path / "src")
    for records, key in ((twice[0], "interaction_id"), (twice[1], "event_id")):
        ids = [r[key] for r in records]
        assert len(ids) == len(set(ids)), key
    if fmt not in ID_FORMATS:
        assert len(twice[0]) == 2 * len(once[0])
        return
    assert twice[0] == once[0] and twice[1] == once[1]
    repeats = [q for q in twice[2] if "repeats the" in q["reason"]]
    assert repeats and all(q["file"].startswith(str(tmp_path / "src" / "b")) and isinstance(q["line"], int)
                           for q in repeats)
    assert all(str(tmp_path / "src" / "a") in q["reason"] for q in repeats)  # the first copy is named
    for path in sorted((tmp_path / "src" / "b").iterdir()):  # every record of the second copy is a repeat
        first_bad = {q["line"] for q in once[2] if Path(q["file"]).name == path.name}
        starts = {w.line for w, _ in source_records(path, str(path), path.name, lambda w, r: None)} - first_bad
        assert starts <= {q["line"] for q in twice[2] if q["file"] == str(path) and "repeats the" in q["reason"]}, \
            path.name


def test_a_langfuse_or_langsmith_record_repeated_in_one_file_is_quarantined(tmp_path):
    """Langfuse kept the first copy of a repeated id silently; LangSmith did so for runs."""
    for fmt, file, first in (("langfuse", "scores.jsonl", 2), ("langsmith", "runs.jsonl", 1)):
        src = tmp_path / fmt
        shutil.copytree(DATA / fmt, src)
        text = (src / file).read_text(encoding="utf-8")
        line = text.splitlines()[first - 1]
        (src / file).write_text(text + line + "\n", encoding="utf-8")
        _, _, quarantined, _ = run_import(fmt, tmp_path / f"{fmt}-out", source=src)
        last = len(text.splitlines()) + 1
        (repeat,) = [q for q in quarantined if q["line"] == last]
        assert repeat["file"] == str(src / file)
        assert repeat["reason"] == f"id: {json.loads(line)['id']} repeats the {'score' if fmt == 'langfuse' else 'run'} " \
                                   f"from {src / file}:{first}"


DEEP = "[" * 200_000 + "]" * 200_000  # deeper than Python's stack: json.loads raises RecursionError on it


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_deeply_nested_line_is_quarantined_and_the_rest_imported(fmt, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(DATA / fmt, src)
    (src / "deep.jsonl").write_text(DEEP + "\n" + '{"a": ' * 300 + "1" + "}" * 300 + "\n", encoding="utf-8")
    plain = run_import(fmt, tmp_path / "plain")
    interactions, events, quarantined, _ = run_import(fmt, tmp_path / "out", source=src)
    assert (interactions, events) == (plain[0], plain[1])
    deep = [q for q in quarantined if q["file"] == str(src / "deep.jsonl")]
    assert [q["line"] for q in deep] == [1, 2]
    assert all(q["reason"].startswith("nested more than 200 levels deep") for q in deep)


def test_a_deeply_nested_array_element_is_skipped_and_the_elements_after_it_read(tmp_path):
    rows = [{"prompt": "a", "completion": "b", "label": True}, {"prompt": "c", "completion": "d", "label": False}]
    text = "[\n" + json.dumps(rows[0]) + ",\n" + DEEP + ",\n" + json.dumps(rows[1]) + "\n]\n"
    (tmp_path / "rows.json").write_text(text, encoding="utf-8")
    interactions, _, quarantined, _ = run_import("trl-unpaired", tmp_path / "out", source=tmp_path / "rows.json")
    assert [i["output_messages"][0]["content"] for i in interactions] == ["b", "d"]
    assert [(q["line"], q["path"]) for q in quarantined] == [(3, "[1]")]
    assert quarantined[0]["reason"].startswith("nested more than 200 levels deep")


def test_unicode_line_separators_stay_inside_their_record(tmp_path):
    row = {"prompt": "Zeile\u2028eins", "completion": "caf\u00e9\x85 ok\u2029", "label": True}
    (tmp_path / "rows.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    interactions, _, _, _ = run_import("trl-unpaired", tmp_path / "out", source=tmp_path / "rows.jsonl")
    text = (tmp_path / "out" / "interactions.jsonl").read_text(encoding="utf-8")
    assert len(text.splitlines()) == 1 and "café" in text  # readable UTF-8, but str.splitlines() cannot split it
    assert interactions[0]["output_messages"][0]["content"] == "caf\u00e9\x85 ok\u2029"


def test_output_folder_is_replaced_whole_and_foreign_files_are_refused(tmp_path):
    out = tmp_path / "out"
    run_import("trl-unpaired", out)
    run_import("trl-unpaired", out)  # a previous import is replaced
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InvalidInput, match="notes.txt"):
        import_logs("trl-unpaired", DATA / "trl-unpaired", out, Options())
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_an_output_folder_inside_the_source_is_not_read_back(tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "train.jsonl").write_bytes((DATA / "hh-rlhf" / "train.jsonl").read_bytes())
    first = run_import("hh-rlhf", src / "imported", source=src)
    second = run_import("hh-rlhf", src / "imported", source=src)
    assert first == second and second[3]["files"] == ["train.jsonl"]


def test_unknown_format_and_missing_path_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="unknown format 'csv'; formats: otel, openai, langfuse"):
        import_logs("csv", DATA / "otel", tmp_path / "out")
    with pytest.raises(InvalidInput, match="no such file or folder"):
        import_logs("otel", tmp_path / "missing.jsonl", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---- the command --------------------------------------------------------------------------------------------------

def rlops(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rlops.cli", *args], cwd=cwd, text=True, capture_output=True)


def test_cli_imports_prints_the_summary_and_writes_the_default_folder(tmp_path):
    p = rlops("import", "langsmith", str(DATA / "langsmith"), "--root", str(tmp_path), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "data" / "imported" / "langsmith"
    lines = p.stdout.splitlines()
    assert lines[0] == f"rlops import langsmith: read 16 records from {DATA / 'langsmith'}"
    assert lines[1].split()[:2] == ["interactions", "4"] and lines[1].endswith(str(out / "interactions.jsonl"))
    assert lines[2].split()[:2] == ["feedback", "7"] and "(comment 2, edit 1, judge 1, pairwise 1, rating 2)" in lines[2]
    assert lines[3].split()[:2] == ["quarantined", "3"]
    assert lines[4] == "  skipped       0"
    assert lines[5].startswith("  unmapped keys 3") and "run.inputs.model (2)" in lines[5]
    assert sorted(x.name for x in out.iterdir()) == sorted(OUTPUTS)
    # what the importer wrote passes `rlops validate`
    v = rlops("validate", str(out / "interactions.jsonl"), str(out / "feedback.jsonl"), cwd=tmp_path)
    assert v.returncode == 0, v.stdout + v.stderr


def test_cli_refuses_bad_arguments_with_exit_2(tmp_path):
    p = rlops("import", "csv", str(DATA / "otel"), cwd=tmp_path)
    assert p.returncode == 2 and "unknown format 'csv'; formats: otel, openai, langfuse, langsmith, hh-rlhf" in p.stderr
    p = rlops("import", "otel", str(DATA / "otel"), "--timestamp", "2026-01-31T00:00:00", "--scale", "x=5,1",
              "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert p.returncode == 2
    assert "--timestamp: '2026-01-31T00:00:00' is not an RFC 3339 date-time with an offset" in p.stderr
    assert "--scale: 'x=5,1' is not NAME=LO,HI with LO < HI" in p.stderr
    p = rlops("import", "otel", str(tmp_path / "nope"), cwd=tmp_path)
    assert p.returncode == 2 and "nope: PATH: no such file or folder" in p.stderr


def test_cli_exits_2_when_nothing_could_be_imported(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"chosen": 1}\nnot json\n', encoding="utf-8")
    p = rlops("import", "hh-rlhf", str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert p.returncode == 2 and "nothing imported" in p.stderr and "2 records quarantined" in p.stderr
    assert len((tmp_path / "o" / "quarantine.jsonl").read_text(encoding="utf-8").splitlines()) == 2


def test_importers_stay_light():
    """The importers use the standard library, plus pydantic for the component registry they register in (the CLI
    imports them for `rlops import`): no torch, no duckdb, no datasets."""
    probe = ("import json, sys\n"
             "before = set(sys.modules)\n"
             "import rlops.observe.importers.driver, rlops.observe.importers.cli\n"
             "from rlops.observe.importers import load, names\n"
             "[load(f) for f in names()]\n"
             "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
             "print(json.dumps(sorted(new - set(sys.stdlib_module_names) - {'rlops'})))")
    p = subprocess.run([sys.executable, "-c", probe], text=True, capture_output=True)
    assert p.returncode == 0, p.stderr
    registry = {"pydantic", "pydantic_core", "typing_extensions", "annotated_types", "typing_inspection"}
    new = {m for m in json.loads(p.stdout) if not m.startswith("_sysconfigdata")}  # stdlib data pydantic reads
    assert new <= registry, p.stdout
